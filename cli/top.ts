/**
 * What `ctpipe top` (and `ctpipe run --top`) shows: the busiest hosts, destination ports and
 * connection states of the flows active in the last `window` (open, or ended in it), from the
 * flows and host statistics in the store; an empty window says which one would show data.
 * `fetchTop` runs the queries (bound parameters); `renderTop` is the pure rendering.
 */
import type { Store } from '../processor/store.js';

import { asError } from '../common/errors.js';
export interface TopData {
  at: number;
  windowS: number;
  hosts: { host: string; new_per_s: number; active: number; failed: number; bytes: number; entries: number; max_entries: number; invalid_per_s: number }[];
  ports: { proto: number; port: number; flows: number; sources: number; bytes: number }[];
  states: { conn_state: string; flows: number }[];
  /** When the window holds no flow: the latest time any stored flow was active (ms), null if none is stored. */
  latest?: number | null;
}

/**
 * How long before the window a flow may have started and still be shown. It bounds FINAL to the
 * recent partitions and sorting-key ranges (first_seen leads both after the host); a flow open
 * longer than this before the window is left out.
 */
export const TOP_LOOKBACK_S = 3600;

export async function fetchTop(store: Store, db: string, windowS: number, now = Date.now(), lookbackS = TOP_LOOKBACK_S): Promise<TopData> {
  const params = { from: (now - windowS * 1000) / 1000, to: now / 1000, since: (now - (windowS + lookbackS) * 1000) / 1000, w: windowS };
  const q = <T>(sql: string) => store.query<T>(sql, params);
  // What was active in the window: started before its end, and still open or ended inside it. A
  // TCP connection's row comes when the kernel destroys it, 60-120 s after it closed (TIME_WAIT),
  // so filtering on first_seen alone showed almost none. Every version of a flow has the same
  // first_seen, so its bounds prune parts safely under FINAL; ended_at is tested after FINAL, on
  // the newest version (an open row superseded by its closed one is not counted twice).
  const active = `${db}.flows FINAL WHERE first_seen >= toDateTime64({since:Float64}, 3) AND first_seen <= toDateTime64({to:Float64}, 3)
    AND (ended_at IS NULL OR ended_at >= toDateTime64({from:Float64}, 3))`;
  // A host's table: its fullest network namespace's latest count (each namespace has its own table
  // against the one limit; with --netns all the latest row of a host is any namespace's).
  const hosts = await q<Record<string, string | number>>(`
    SELECT f.host AS host, f.n / {w:UInt32} AS new_per_s, f.active AS active, f.failed AS failed, f.bytes AS bytes,
           s.entries AS entries, s.max_entries AS max_entries, s.invalid / {w:UInt32} AS invalid_per_s
    FROM (SELECT host, countIf(first_seen >= toDateTime64({from:Float64}, 3)) AS n, count() AS active,
                 countIf(conn_state IN ('S0', 'REJ', 'RSTOS0', 'RSTR')) AS failed, sum(orig_bytes + reply_bytes) AS bytes
          FROM ${active} GROUP BY host) AS f
    LEFT JOIN (SELECT host, argMax(e, e / greatest(m, 1)) AS entries, argMax(m, e / greatest(m, 1)) AS max_entries, sum(i) AS invalid
               FROM (SELECT host, netns, argMax(entries, ts) AS e, argMax(max_entries, ts) AS m, sum(invalid) AS i
                     FROM ${db}.host_stats WHERE ts >= toDateTime64({from:Float64}, 3) GROUP BY host, netns)
               GROUP BY host) AS s ON f.host = s.host
    ORDER BY active DESC, new_per_s DESC, host LIMIT 10`);
  const ports = await q<Record<string, string | number>>(`
    SELECT proto, orig_dport AS port, count() AS flows, uniq(orig_src) AS sources, sum(orig_bytes + reply_bytes) AS bytes
    FROM ${active} GROUP BY proto, port ORDER BY flows DESC, port LIMIT 10`);
  const states = await q<Record<string, string | number>>(`SELECT conn_state, count() AS flows FROM ${active} GROUP BY conn_state ORDER BY flows DESC, conn_state`);
  const num = (v: string | number | undefined) => Number(v ?? 0);
  return {
    at: now, windowS,
    hosts: hosts.map((h) => ({ host: String(h.host), new_per_s: num(h.new_per_s), active: num(h.active), failed: num(h.failed), bytes: num(h.bytes), entries: num(h.entries), max_entries: num(h.max_entries), invalid_per_s: num(h.invalid_per_s) })),
    ports: ports.map((p) => ({ proto: num(p.proto), port: num(p.port), flows: num(p.flows), sources: num(p.sources), bytes: num(p.bytes) })),
    states: states.map((s) => ({ conn_state: String(s.conn_state), flows: num(s.flows) })),
    ...(hosts.length ? {} : { latest: await latestActivity(store, db, lookbackS) }),
  };
}

/**
 * The latest moment a stored flow was active (ms), for an empty window. max(first_seen) is read
 * from the parts' partition min/max (no scan); ended_at only over the lookback before it.
 */
async function latestActivity(store: Store, db: string, lookbackS: number): Promise<number | null> {
  const [first] = await store.query<{ t: string | number; n: string | number }>(`SELECT toUnixTimestamp64Milli(max(first_seen)) AS t, count() AS n FROM ${db}.flows`);
  if (!first || Number(first.n) === 0) return null;
  const [last] = await store.query<{ t: string | number }>(
    `SELECT toUnixTimestamp64Milli(max(greatest(first_seen, ifNull(ended_at, first_seen)))) AS t FROM ${db}.flows
     WHERE first_seen >= fromUnixTimestamp64Milli(toInt64({since:Int64}), 'UTC')`, { since: Number(first.t) - lookbackS * 1000 });
  return Math.max(Number(first.t), Number(last?.t ?? 0));
}

const WINDOWS: [number, string][] = [[300, '5m'], [600, '10m'], [1800, '30m'], [3600, '1h'], [3 * 3600, '3h'], [6 * 3600, '6h'], [12 * 3600, '12h'], [86_400, '1d'], [2 * 86_400, '2d'], [7 * 86_400, '7d'], [30 * 86_400, '30d']];

/** The smallest usual --window that reaches back to `latest`, for an empty view. */
export function suggestWindow(at: number, latest: number): string | undefined {
  const age = (at - latest) / 1000;
  return WINDOWS.find(([s]) => s > age + 1)?.[1];
}

const span = (s: number) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

function emptyWindow(d: TopData): string[] {
  if (d.latest === undefined) return ['  no flows in this window'];
  if (d.latest === null) return [`  nothing in the last ${span(d.windowS)}: no flows are stored yet`];
  const w = suggestWindow(d.at, d.latest);
  const when = new Date(d.latest).toISOString().replace('T', ' ').slice(0, 19);
  return [`  nothing in the last ${span(d.windowS)}; the latest flow was active at ${when} UTC${w ? `: try ctpipe top --window ${w}` : ''}`];
}

const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };
const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n)));
const rate = (n: number) => (n >= 10 ? n.toFixed(0) : n.toFixed(2));

function table(head: string[], rows: string[][]): string[] {
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  // first column left-aligned (names), the rest right-aligned (numbers)
  return all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd());
}

export function renderTop(d: TopData): string {
  const out = [`ctpipe top: last ${d.windowS} s at ${new Date(d.at).toISOString().slice(11, 19)} UTC`, ''];
  out.push('HOSTS', ...(d.hosts.length ? table(['host', 'active', 'new/s', 'failed', 'bytes', 'table', 'fill', 'invalid/s'],
    d.hosts.map((h) => [h.host, String(h.active), rate(h.new_per_s), String(h.failed), human(h.bytes), `${h.entries}/${h.max_entries}`,
      `${h.max_entries ? ((h.entries / h.max_entries) * 100).toFixed(1) : '0.0'}%`, rate(h.invalid_per_s)])) : emptyWindow(d)), '');
  out.push('PORTS', ...(d.ports.length ? table(['port', 'flows', 'sources', 'bytes'],
    d.ports.map((p) => [p.proto === 1 || p.proto === 58 ? PROTO[p.proto]! : `${PROTO[p.proto] ?? p.proto}/${p.port}`, String(p.flows), String(p.sources), human(p.bytes)])) : ['  none']), '');
  const total = d.states.reduce((n, s) => n + s.flows, 0);
  out.push('STATES', ...(d.states.length ? table(['conn_state', 'flows', 'share'],
    d.states.map((s) => [s.conn_state, String(s.flows), `${((s.flows / total) * 100).toFixed(1)}%`])) : ['  none']));
  return `${out.join('\n')}\n`;
}

/** Redraws every `intervalMs` until `stop()` (or `iterations` frames); on a terminal in place. */
export function topLoop(read: () => Promise<TopData>, o: { intervalMs: number; iterations?: number; out?: NodeJS.WriteStream; onError?: (e: Error) => void }): { done: Promise<void>; stop(): void } {
  const out = o.out ?? process.stdout;
  let stopped = false;
  let wake: (() => void) | undefined;
  const done = (async () => {
    for (let i = 0; !stopped && (o.iterations === undefined || i < o.iterations); i++) {
      if (i > 0) await new Promise<void>((r) => ((wake = r), setTimeout(r, o.intervalMs)));
      if (stopped) break;
      try {
        const frame = renderTop(await read());
        out.write(out.isTTY ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
      } catch (e) {
        o.onError?.(asError(e));
      }
    }
  })();
  return { done, stop: () => ((stopped = true), wake?.()) };
}
