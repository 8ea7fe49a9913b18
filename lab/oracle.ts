/**
 * The kernel's own listener as the oracle: `conntrack -E -o extended,id` (conntrack-tools) run
 * beside the collector sees the same multicast events; its text is parsed here so tests compare
 * ctpipe's decoding with it field by field.
 *
 *   [NEW] ipv4 2 tcp 6 120 SYN_SENT src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. ... id=N
 *   [DESTROY] ... src=.. dst=.. sport=.. dport=.. packets=P bytes=B src=.. ... packets=P bytes=B ... id=N
 */
export interface OracleTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  id?: number;
  packets?: number;
  bytes?: number;
}

export interface OracleEvent {
  type: 'new' | 'update' | 'destroy';
  family: string;
  proto: number;
  state?: string;
  orig: OracleTuple;
  reply: OracleTuple;
  flags: string[];
  mark?: number;
  zone?: number;
  helper?: string;
  id: number;
}

function tuple(tokens: string[]): OracleTuple {
  const t: Record<string, string | number> = {};
  for (const tok of tokens) {
    const m = /^(src|dst|sport|dport|type|code|id|packets|bytes)=(.*)$/.exec(tok);
    if (m && !(m[1]! in t)) t[m[1]!] = m[1] === 'src' || m[1] === 'dst' ? m[2]! : Number(m[2]);
  }
  return t as unknown as OracleTuple;
}

export function parseConntrackEvent(line: string): OracleEvent | undefined {
  const m = /^\s*\[(NEW|UPDATE|DESTROY)\]\s+(.*)$/.exec(line);
  if (!m) return undefined;
  const tokens = m[2]!.trim().split(/\s+/);
  const [family, , , protoNum] = tokens;
  const rest = tokens.slice(4);
  const firstSrc = rest.findIndex((t) => t.startsWith('src='));
  const secondSrc = rest.findIndex((t, i) => i > firstSrc && t.startsWith('src='));
  const head = rest.slice(0, firstSrc);
  const state = head.find((t) => /^[A-Z_]+$/.test(t) && !/^\d+$/.test(t));
  const flags = rest.filter((t) => /^\[[A-Z_]+\]$/.test(t)).map((t) => t.slice(1, -1));
  const kv = (k: string) => {
    const all = rest.filter((t) => t.startsWith(`${k}=`));
    return all.length ? all[all.length - 1]!.slice(k.length + 1) : undefined;
  };
  const mark = kv('mark');
  const zone = kv('zone');
  return {
    type: m[1]!.toLowerCase() as OracleEvent['type'],
    family: family!,
    proto: Number(protoNum),
    state,
    orig: tuple(rest.slice(firstSrc, secondSrc)),
    reply: tuple(rest.slice(secondSrc)),
    flags,
    mark: mark === undefined ? undefined : Number(mark),
    zone: zone === undefined ? undefined : Number(zone),
    helper: kv('helper'),
    id: Number(kv('id')),
  };
}
