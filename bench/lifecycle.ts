/**
 * Lifecycle engine rate and memory per open flow, and the time to write a `flows` row as the
 * insert's TabSeparated line (generated from the column list). Input: synthetic TCP connections
 * shaped like the lab's (NEW SYN_SENT, UPDATE SYN_RECV, UPDATE ESTABLISHED, ..., DESTROY with
 * counters), many connections interleaved so the open set is realistic. A guard checks the rows:
 * every connection closed once.
 */
import type { CtRecord } from '../contract/records.js';
import { flowTsv } from '../processor/clickhouse/rows.js';
import { LifecycleEngine } from '../processor/lifecycle/engine.js';
import type { FlowRow } from '../processor/lifecycle/flow-row.js';

export interface LifecycleResult {
  events: number;
  eventsPerSecond: number;
  openFlows: number;
  bytesPerOpenFlow: number;
  tsvNsPerRow: number;
}

const STATES = [1, 2, 3, 4, 5, 6, 7];

/**
 * The records of `conns` connections in chunks of at most `chunk`, generated as they are consumed:
 * like a collector's output, records die young, so the heap (and the collector's work) stays what
 * a running pipeline sees.
 */
export function* recordChunks(conns: number, host = 'bench', chunk = 65_536): Generator<CtRecord[]> {
  const epoch = 1_795_000_000;
  let seq = 0;
  let out: CtRecord[] = [];
  // 8 events per connection, 1,000 connections in flight at a time
  for (let base = 0; base < conns; base += 1000) {
    for (let step = 0; step < 8; step++) {
      for (let c = base; c < Math.min(conns, base + 1000); c++) {
        const orig = { src: `198.51.${(c >> 8) & 255}.${c & 255}`, dst: '203.0.113.2', proto: 6, sport: 10000 + (c % 50000), dport: 443 };
        const reply = { src: orig.dst, dst: orig.src, proto: 6, sport: 443, dport: orig.sport };
        const type = step === 0 ? 'new' : step === 7 ? 'destroy' : 'update';
        out.push({
          // one record per millisecond of event time: 1,000 records/s, connections living 8 s
          type, host, run: host, seq: seq + 1, sec: epoch + Math.floor(seq / 1000), nsec: (seq % 1000) * 1e6, id: c, family: 'ipv4', proto: 6, orig, reply,
          status: step === 0 ? 8 : step === 1 ? 10 : 14, tcp_state: STATES[Math.min(step, 6)]!, timeout: 120,
          ...(type === 'destroy' ? { counters: { orig: { packets: 10, bytes: 1200 }, reply: { packets: 8, bytes: 9000 } } } : {}),
        });
        seq++;
        if (out.length === chunk) {
          yield out;
          out = [];
        }
      }
    }
  }
  if (out.length) yield out;
}

export function runLifecycle(conns = 250_000, n = 200_000): LifecycleResult {
  // The rate: one group of 1,000 connections (8,000 records) re-stamped for each next group (new
  // conntrack ids, sequence numbers and times), as the publish benchmark re-stamps its records, so
  // the measure is the engine's work and garbage, not the generator's.
  const group = [...recordChunks(1000)].flat();
  const base = group.map((r) => ({ id: (r as CtRecord).id, seq: r.seq, sec: r.sec, nsec: r.nsec }));
  let rows = 0;
  let best = Infinity;
  let events = 0;
  for (let round = 0; round < 3; round++) {
    const e = new LifecycleEngine({ maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onRow: () => void rows++, onHealth: () => {} });
    rows = 0;
    events = 0;
    let ns = 0n;
    for (let g = 0; g < conns / 1000; g++) {
      for (let i = 0; i < group.length; i++) {
        const r = group[i] as CtRecord;
        const b = base[i]!;
        r.id = b.id + g * 1000;
        r.seq = b.seq + g * group.length;
        r.sec = b.sec + g * 8;
      }
      const t0 = process.hrtime.bigint();
      for (const r of group) e.apply(r);
      e.tick('bench');
      ns += process.hrtime.bigint() - t0;
      events += group.length;
    }
    const s = Number(ns) / 1e9;
    if (rows !== conns || e.counters.late || e.counters.lostByTimeout) throw new Error(`lifecycle guard: ${rows} rows for ${conns} connections`);
    best = Math.min(best, s);
  }
  // Memory per open flow (after the rate, so its heap does not weigh on the rate): the JS heap the
  // engine keeps, measured once the records it was fed are gone (the address strings it holds
  // count), plus its typed arrays.
  const gc = () => (globalThis as { gc?: () => void }).gc?.();
  // in a function, so that the records are garbage when measured and the engine once it returns
  const loaded = (() => {
    const me = new LifecycleEngine({ maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onRow: () => {}, onHealth: () => {} });
    for (const r of [...recordChunks(n)].flat()) if (r.type === 'new') me.apply(r);
    gc();
    return { openFlows: me.openCount, typed: me.tableBytes, withEngine: process.memoryUsage().heapUsed };
  })();
  gc();
  const bytesPerOpenFlow = (loaded.withEngine - process.memoryUsage().heapUsed + loaded.typed) / loaded.openFlows;
  return { events, eventsPerSecond: events / best, openFlows: loaded.openFlows, bytesPerOpenFlow, tsvNsPerRow: tsvNs() };
}

/** Best of five passes over 20,000 final rows. */
function tsvNs(): number {
  const rows: FlowRow[] = [];
  const e = new LifecycleEngine({ maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onRow: (r) => rows.push(r), onHealth: () => {} });
  for (const chunk of recordChunks(20_000)) for (const r of chunk) e.apply(r);
  let best = Infinity;
  let chars = 0;
  for (let pass = 0; pass < 5; pass++) {
    const t0 = process.hrtime.bigint();
    for (const r of rows) chars += flowTsv(r).length;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / rows.length);
  }
  if (chars === 0) throw new Error('tsv guard: no lines');
  return best;
}
