/**
 * Counter dumps in the lifecycle engine (collector/counter-dumps.ts): a dump row of a flow the
 * engine knows is a counter update: it never starts another lifecycle, a row follows only when it
 * changes the counters or state, each such row outranks the one before (version), and a dump row
 * of a flow that already ended brings nothing back. The same records reach the engine from Kafka
 * (`ctpipe process`): here they also go through the protobuf batch codec first.
 */
import { describe, expect, it } from 'vitest';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';

const T0 = 1_795_000_000;
const ASSURED = 0x6;
const ESTABLISHED = 3;

function flow(type: CtRecord['type'], sec: number, bytes?: number): CtRecord {
  return {
    type, host: 'h', run: 'r', seq: 0, sec, nsec: 0, id: 7, family: 'ipv4', proto: 6,
    orig: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: 40000, dport: 8080 },
    reply: { src: '192.0.2.2', dst: '192.0.2.1', proto: 6, sport: 8080, dport: 40000 },
    status: ASSURED, tcp_state: ESTABLISHED, timeout: 432000,
    counters: bytes === undefined ? undefined : { orig: { packets: Math.floor(bytes / 1000), bytes }, reply: { packets: 1, bytes: 60 } },
  };
}

function engine() {
  const rows: FlowRow[] = [];
  const e = new LifecycleEngine({ maxOpen: 1000, refreshMs: 10_000, graceMs: 5_000, onRow: (r) => rows.push(r), onHealth: () => {} });
  let seq = 0;
  const apply = (r: CtpipeRecord) => {
    e.apply({ ...r, seq: ++seq });
    e.tick('h');
  };
  return { e, rows, apply };
}

describe('counter dumps in the lifecycle engine', () => {
  it('folds dump rows into the open flow as counter updates: refresh rows with growing bytes and versions, one lifecycle', () => {
    const x = engine();
    x.apply(flow('new', T0));
    x.apply(flow('update', T0 + 1));
    for (let k = 1; k <= 3; k++) x.apply(flow('snapshot', T0 + 10 * k + 1, 100_000 * k)); // a dump every 10 s
    expect(x.rows.map((r) => [r.end_reason, Number(r.orig_bytes)])).toEqual([['open', 100_000], ['open', 200_000], ['open', 300_000]]);
    expect(new Set(x.rows.map((r) => r.flow_id)).size).toBe(1);
    expect(x.rows.every((r) => !r.snapshot)).toBe(true); // the flow began with its NEW, not in a dump
    const versions = x.rows.map((r) => r.version);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(3);
    expect(x.e.openCount).toBe(1);
    // the end replaces them all with the DESTROY's counters
    x.apply({ ...flow('destroy', T0 + 45, 350_000), tcp_state: 7 });
    const last = x.rows[x.rows.length - 1]!;
    expect([last.end_reason, Number(last.orig_bytes)]).toEqual(['destroy', 350_000]);
    expect(last.version).toBeGreaterThan(versions[2]!);
  });

  it('makes no row for an idle flow the dumps find unchanged, but keeps it alive past its last event', () => {
    const x = engine();
    x.apply({ ...flow('new', T0), timeout: 30 });
    x.apply({ ...flow('snapshot', T0 + 11, 5000), timeout: 30 });
    expect(x.rows.map((r) => Number(r.orig_bytes))).toEqual([5000]);
    // the same counters every 10 s for a minute: nothing new to store, and the flow is not lost at its 30 s timeout
    for (let k = 2; k <= 7; k++) x.apply({ ...flow('snapshot', T0 + 10 * k + 1, 5000), timeout: 30 });
    expect(x.rows).toHaveLength(1);
    expect(x.e.openCount).toBe(1);
  });

  it('ignores a dump row of a flow whose DESTROY came first (no lifecycle brought back)', () => {
    const x = engine();
    x.apply(flow('new', T0));
    x.apply({ ...flow('destroy', T0 + 2, 9000), tcp_state: 7 });
    x.apply(flow('snapshot', T0 + 3, 8000)); // read by the dump before the DESTROY, stamped after it
    expect(x.e.openCount).toBe(0);
    expect(x.rows.map((r) => [r.end_reason, Number(r.orig_bytes)])).toEqual([['destroy', 9000]]);
    expect(x.e.counters.late).toBe(1);
  });

  it('does the same with the records through the Kafka batch codec (ctpipe process)', () => {
    const recs: CtpipeRecord[] = [flow('new', T0), flow('update', T0 + 1), flow('snapshot', T0 + 11, 100_000), flow('snapshot', T0 + 21, 250_000)]
      .map((r, i) => ({ ...r, seq: i + 1 }));
    const { records } = decodeBatch(encodeBatch(recs));
    const x = engine();
    for (const r of records) x.apply(r);
    expect(x.rows.map((r) => [r.end_reason, Number(r.orig_bytes), Number(r.reply_bytes)])).toEqual([['open', 100_000, 60], ['open', 250_000, 60]]);
  });
});
