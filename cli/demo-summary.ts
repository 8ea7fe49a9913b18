/**
 * What `ctpipe demo` found, read back from the store: flows by protocol and conn_state and by final
 * TCP state, top talkers, RELATED flows with their master connection, anomalies. `summarize` runs
 * the queries (bound parameters only); `summaryText` is the pure rendering.
 */
import type { Store } from '../processor/store.js';

export interface DemoSummary {
  host: string;
  fromMs: number;
  toMs: number;
  flows: number;
  byConnState: { proto: string; conn_state: string; flows: number }[];
  byTcpState: { state: string; flows: number }[];
  talkers: { source: string; connections: number; bytes: number }[];
  related: { flow: string; master: string; helper: string }[];
  anomalies: { kind: string; severity: string; started_at: string; ended_at: string | null; observed: number; baseline: number; evidence: string }[];
  invalidPackets: number;
}

const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };
const TUPLE = (t: string) => `concat(${t}.orig_src_text, ':', toString(${t}.orig_sport), ' -> ', ${t}.orig_dst_text, ':', toString(${t}.orig_dport))`;

export async function summarize(store: Store, db: string, host: string, fromMs: number, toMs: number): Promise<DemoSummary> {
  const params = { host, from: fromMs / 1000, to: toMs / 1000 };
  const inRange = (col: string) => `host = {host:String} AND ${col} >= toDateTime64({from:Float64}, 3) AND ${col} <= toDateTime64({to:Float64}, 3)`;
  const q = <T>(sql: string) => store.query<T>(sql, params);
  const flows = `${db}.flows FINAL WHERE ${inRange('first_seen')}`;
  const byConnState = (await q<{ proto: number; conn_state: string; flows: string }>(
    `SELECT proto, conn_state, count() AS flows FROM ${flows} GROUP BY proto, conn_state ORDER BY flows DESC, proto, conn_state`))
    .map((r) => ({ proto: PROTO[r.proto] ?? String(r.proto), conn_state: r.conn_state, flows: Number(r.flows) }));
  const byTcpState = (await q<{ state: string; flows: string }>(
    `SELECT if(final_tcp_state = '', 'open', final_tcp_state) AS state, count() AS flows FROM ${flows} AND proto = 6 GROUP BY state ORDER BY flows DESC, state`))
    .map((r) => ({ state: r.state, flows: Number(r.flows) }));
  const talkers = (await q<{ source: string; connections: string; bytes: string }>(
    `SELECT orig_src_text AS source, count() AS connections, sum(orig_bytes + reply_bytes) AS bytes FROM ${flows}
     GROUP BY source ORDER BY bytes DESC, source LIMIT 5`))
    .map((r) => ({ source: r.source, connections: Number(r.connections), bytes: Number(r.bytes) }));
  const related = await q<{ flow: string; master: string; helper: string }>(
    `SELECT ${TUPLE('c')} AS flow, if(m.flow_id = '', 'master not seen', ${TUPLE('m')}) AS master, m.helper AS helper
     FROM ${db}.flows AS c FINAL
     LEFT JOIN (SELECT flow_id, helper, orig_sport, orig_dport, orig_src_text, orig_dst_text FROM ${db}.flows FINAL WHERE host = {host:String}) AS m
       ON c.master_flow_id = m.flow_id
     WHERE c.related AND c.host = {host:String} AND c.first_seen >= toDateTime64({from:Float64}, 3) AND c.first_seen <= toDateTime64({to:Float64}, 3)
     ORDER BY c.first_seen`);
  const anomalies = (await q<{ kind: string; severity: string; started: string; ended: string | null; observed: number; baseline: number; details: string }>(
    `SELECT kind, severity, toString(started_at) AS started, if(ended_at IS NULL, NULL, toString(ended_at)) AS ended, observed, baseline, details
     FROM ${db}.anomalies FINAL WHERE ${inRange('started_at')} ORDER BY started_at`))
    .map((a) => ({ kind: a.kind, severity: a.severity, started_at: a.started, ended_at: a.ended, observed: a.observed, baseline: a.baseline, evidence: evidence(a.details) }));
  const [inv] = await q<{ invalid: string }>(`SELECT sum(invalid) AS invalid FROM ${db}.host_stats WHERE ${inRange('ts')}`);
  return {
    host, fromMs, toMs, flows: byConnState.reduce((n, r) => n + r.flows, 0), byConnState, byTcpState, talkers, related, anomalies,
    invalidPackets: Number(inv?.invalid ?? 0),
  };
}

/** The most telling fields of an anomaly's details, on one line. */
function evidence(details: string): string {
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(details) as Record<string, unknown>;
  } catch {
    return '';
  }
  const parts: string[] = [];
  const first = (v: unknown) => (Array.isArray(v) && v.length ? (v[0] as Record<string, unknown>) : undefined);
  if (typeof d.likely_cause === 'string') parts.push(`likely cause ${d.likely_cause}`);
  for (const [key, label] of [['top_sources', 'top source'], ['top_dports', 'top port'], ['top_tcp_flags', 'flags']] as const) {
    const top = first(d[key]);
    if (top) parts.push(`${label} ${String(top.value)} (${String(top.packets)} packets)`);
  }
  const src = first(d.sources);
  if (src) parts.push(`source ${String(src.src)}: ${String(src.n)} in ${String(d.window_s)} s`);
  const ev = first(d.evidence);
  if (ev) parts.push(`master ${String(ev.master)}${ev.expected ? `, expected ${String(ev.expected)}` : ''}`);
  if (typeof d.fill === 'number') parts.push(`fill ${(d.fill * 100).toFixed(0)}% of ${String(d.max_entries)}`);
  return parts.join(', ');
}

const bytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const num = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(n >= 10 ? 1 : 2));

export function summaryText(s: DemoSummary): string {
  const out: string[] = [];
  const table = (title: string, rows: string[][], empty: string) => {
    out.push('', title);
    if (!rows.length) {
      out.push(`  ${empty}`);
      return;
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) out.push(`  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd());
  };
  out.push(`${s.flows} flows on ${s.host} from ${new Date(s.fromMs).toISOString()} to ${new Date(s.toMs).toISOString()}; ` +
    `${s.invalidPackets.toLocaleString('en')} INVALID packets counted by the kernel`);
  table('Flows by protocol and conn_state', s.byConnState.map((r) => [r.proto, r.conn_state, String(r.flows)]), 'none');
  table('TCP flows by final state', s.byTcpState.map((r) => [r.state, String(r.flows)]), 'none');
  table('Top talkers (bytes both ways)', s.talkers.map((r) => [r.source, `${r.connections} connections`, bytes(r.bytes)]), 'none');
  table('Related flows and their master connection',
    s.related.map((r) => [r.flow, 'related to', r.helper ? `${r.master} (helper ${r.helper})` : r.master]), 'none');
  table('Anomalies', s.anomalies.map((a) => [a.kind, a.severity, `${a.started_at} to ${a.ended_at ?? 'still open'}`,
    `observed ${num(a.observed)}, baseline ${num(a.baseline)}${a.evidence ? `; ${a.evidence}` : ''}`]), 'none');
  return `${out.join('\n')}\n`;
}
