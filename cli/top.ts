/**
 * What `ctpipe top` (and `ctpipe run --top`) shows: the busiest hosts, destination ports and
 * connection states over the last `window`, from the flows and host statistics in the store.
 * `fetchTop` runs the queries (bound parameters); `renderTop` is the pure rendering.
 */
import type { Store } from '../processor/store.js';

import { asError } from '../common/errors.js';
export interface TopData {
  at: number;
  windowS: number;
  hosts: { host: string; new_per_s: number; failed: number; bytes: number; entries: number; max_entries: number; invalid_per_s: number }[];
  ports: { proto: number; port: number; flows: number; sources: number; bytes: number }[];
  states: { conn_state: string; flows: number }[];
}

export async function fetchTop(store: Store, db: string, windowS: number, now = Date.now()): Promise<TopData> {
  const params = { from: (now - windowS * 1000) / 1000, w: windowS };
  const q = <T>(sql: string) => store.query<T>(sql, params);
  const recent = `${db}.flows FINAL WHERE first_seen >= toDateTime64({from:Float64}, 3)`;
  const hosts = await q<Record<string, string | number>>(`
    SELECT f.host AS host, f.n / {w:UInt32} AS new_per_s, f.failed AS failed, f.bytes AS bytes,
           s.entries AS entries, s.max_entries AS max_entries, s.invalid / {w:UInt32} AS invalid_per_s
    FROM (SELECT host, count() AS n, countIf(conn_state IN ('S0', 'REJ', 'RSTOS0', 'RSTR')) AS failed, sum(orig_bytes + reply_bytes) AS bytes
          FROM ${recent} GROUP BY host) AS f
    LEFT JOIN (SELECT host, argMax(entries, ts) AS entries, argMax(max_entries, ts) AS max_entries, sum(invalid) AS invalid
               FROM ${db}.host_stats WHERE ts >= toDateTime64({from:Float64}, 3) GROUP BY host) AS s ON f.host = s.host
    ORDER BY new_per_s DESC, host LIMIT 10`);
  const ports = await q<Record<string, string | number>>(`
    SELECT proto, orig_dport AS port, count() AS flows, uniq(orig_src) AS sources, sum(orig_bytes + reply_bytes) AS bytes
    FROM ${recent} GROUP BY proto, port ORDER BY flows DESC, port LIMIT 10`);
  const states = await q<Record<string, string | number>>(`SELECT conn_state, count() AS flows FROM ${recent} GROUP BY conn_state ORDER BY flows DESC, conn_state`);
  const num = (v: string | number | undefined) => Number(v ?? 0);
  return {
    at: now, windowS,
    hosts: hosts.map((h) => ({ host: String(h.host), new_per_s: num(h.new_per_s), failed: num(h.failed), bytes: num(h.bytes), entries: num(h.entries), max_entries: num(h.max_entries), invalid_per_s: num(h.invalid_per_s) })),
    ports: ports.map((p) => ({ proto: num(p.proto), port: num(p.port), flows: num(p.flows), sources: num(p.sources), bytes: num(p.bytes) })),
    states: states.map((s) => ({ conn_state: String(s.conn_state), flows: num(s.flows) })),
  };
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
  out.push('HOSTS', ...(d.hosts.length ? table(['host', 'new/s', 'failed', 'bytes', 'table', 'fill', 'invalid/s'],
    d.hosts.map((h) => [h.host, rate(h.new_per_s), String(h.failed), human(h.bytes), `${h.entries}/${h.max_entries}`,
      `${h.max_entries ? ((h.entries / h.max_entries) * 100).toFixed(1) : '0.0'}%`, rate(h.invalid_per_s)])) : ['  no flows in this window']), '');
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
