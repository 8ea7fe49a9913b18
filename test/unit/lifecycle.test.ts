/**
 * The lifecycle engine over event sequences: the real ones the kernel produced in the lab
 * (decoded from test/fixtures/netlink) and synthetic ones for what the lab cannot stage
 * (duplicates, reordering, missing NEW or DESTROY, timeouts, id reuse, memory pressure).
 */
import { describe, expect, it } from 'vitest';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { LifecycleEngine, OpenBudget, type HealthEvent } from '../../processor/lifecycle/engine.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';
import { connState } from '../../processor/lifecycle/conn-state.js';
import { SnapshotReader, SnapshotWriter } from '../../processor/snapshot.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';

function engine(maxOpen = 10_000) {
  const rows: FlowRow[] = [];
  const health: HealthEvent[] = [];
  const e = new LifecycleEngine({ maxOpen, refreshMs: 60_000, graceMs: 5_000, onRow: (r) => rows.push(r), onHealth: (h) => health.push(h) });
  /** The latest row per flow, as ReplacingMergeTree keeps it. */
  const final = () => {
    const m = new Map<string, FlowRow>();
    for (const r of rows) if ((m.get(r.flow_id)?.version ?? -1) <= r.version) m.set(r.flow_id, r);
    return [...m.values()];
  };
  return { e, rows, health, final };
}

/** A fresh engine with `e`'s state, through a checkpoint's snapshot. */
async function reopened(e: LifecycleEngine, maxOpen = 10_000) {
  const w = new SnapshotWriter();
  await e.save(w);
  const y = engine(maxOpen);
  y.e.restore(await SnapshotReader.open(await w.finish()));
  return y;
}

function stamped(recs: CtpipeRecord[], run = 'r1'): CtpipeRecord[] {
  return recs.map((r, i) => ({ ...r, host: 'fw', run, seq: i + 1 }));
}

const kernel = () => stamped(decodeBuffers(fixtureBuffers('events')).ct);

describe('lifecycles from the kernel\'s own events (lab capture)', () => {
  const { e, final } = engine();
  for (const r of kernel()) e.apply(r);
  const rows = final();
  const tcp = (dport: number, family = 'ipv4') => rows.filter((r) => r.proto === 6 && r.orig_dport === dport && r.family === family);

  it('gives every connection exactly one lifecycle, all ended by DESTROY', () => {
    const ids = new Set(kernel().map((r) => (r as CtRecord).id));
    expect(rows.length).toBe(ids.size);
    expect(rows.every((r) => r.end_reason === 'destroy')).toBe(true);
  });

  it('summarizes a complete TCP connection: SF, the state path, handshake time, counters', () => {
    const [c] = tcp(8080);
    expect(c!.conn_state).toBe('SF');
    expect(c!.tcp_states.slice(0, 3)).toEqual(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED']);
    expect(c!.final_tcp_state).toBe('TIME_WAIT');
    expect(c!.handshake_ms).toBeGreaterThan(0);
    expect(c!.handshake_ms).toBeLessThan(100);
    expect(c!.assured && c!.seen_reply).toBe(true);
    expect(Number(c!.orig_bytes)).toBeGreaterThan(1000);
    expect(c!.duration_ms).toBeGreaterThan(0);
  });

  it('calls a refused connection REJ', () => {
    const [c] = tcp(9);
    expect(c!.conn_state).toBe('REJ');
    expect(c!.assured).toBe(false);
  });

  it('calls answered UDP and ICMP flows SF', () => {
    expect(rows.filter((r) => r.proto === 17 && r.orig_dport === 5353).map((r) => r.conn_state)).toEqual(['SF']);
    expect(rows.filter((r) => r.proto === 1).map((r) => r.conn_state)).toEqual(['SF']);
  });

  it('links FTP data flows to their control connection', () => {
    const controls = tcp(21);
    expect(controls.map((c) => c.helper)).toEqual(['ftp', 'ftp']);
    const data = rows.filter((r) => r.related);
    expect(data.length).toBe(2);
    for (const d of data) expect(controls.map((c) => c.flow_id)).toContain(d.master_flow_id);
    expect(new Set(data.map((d) => d.master_flow_id)).size).toBe(2);
  });

  it('produces the same rows when every record arrives twice (at-least-once delivery)', () => {
    const twice = engine();
    for (const r of kernel()) {
      twice.e.apply(r);
      twice.e.apply(r);
    }
    expect(twice.final()).toEqual(rows);
    expect(twice.e.counters.duplicates).toBe(kernel().length);
  });
});

// ------------------------------------------------------------------ synthetic sequences

let t = 1_795_000_000;
function ev(type: CtRecord['type'], state: string | undefined, status: number, extra: Partial<CtRecord> = {}): CtRecord {
  const states = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE'];
  return {
    type, host: 'h', run: 'r', seq: 0, sec: t++, nsec: 0, id: 42, family: 'ipv4', proto: 6,
    orig: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: 1000, dport: 80 },
    reply: { src: '192.0.2.2', dst: '192.0.2.1', proto: 6, sport: 80, dport: 1000 },
    status, tcp_state: state === undefined ? undefined : states.indexOf(state), ...extra,
  };
}
const SEEN = 0x2;
const ASSURED = 0x6;

function run(seq: CtpipeRecord[], tickHost = true) {
  const x = engine();
  seq.forEach((r, i) => x.e.apply({ ...r, seq: i + 1 }));
  if (tickHost) x.e.tick('h');
  return x;
}

describe('lifecycles from synthetic sequences', () => {
  it('RST after establishment', () => {
    const { final } = run([ev('new', 'SYN_SENT', 8), ev('update', 'SYN_RECV', SEEN), ev('update', 'ESTABLISHED', ASSURED), ev('destroy', 'CLOSE', ASSURED)]);
    expect(final()[0]!.conn_state).toBe('RST');
  });

  it('half-open: SYN never answered, no DESTROY: closed as lost (S0) after the kernel timeout', () => {
    const syn = ev('new', 'SYN_SENT', 8, { timeout: 120 });
    const later = ev('new', 'SYN_SENT', 8, { id: 7, orig: { ...syn.orig, sport: 2000 }, reply: { ...syn.reply, dport: 2000 }, sec: syn.sec + 200 });
    const { final, e } = run([syn, later]);
    const row = final().find((r) => r.ct_id === 42)!;
    expect(row).toMatchObject({ conn_state: 'S0', end_reason: 'lost', lost_by: 'timeout' });
    expect(row.ended_at).toEqual({ sec: syn.sec + 120, nsec: 0 });
    expect(e.counters.lostByTimeout).toBe(1);
    expect(e.openCount).toBe(1); // the younger attempt is still within its timeout
  });

  it('a DESTROY without NEW (flow began before the collector): one lifecycle, picked up midstream', () => {
    const { final } = run([ev('destroy', 'ESTABLISHED', ASSURED, { counters: { orig: { packets: 5, bytes: 500 }, reply: { packets: 4, bytes: 400 } } })]);
    expect(final()).toHaveLength(1);
    expect(final()[0]).toMatchObject({ end_reason: 'destroy', conn_state: 'OTH', orig_bytes: 500 });
  });

  it('the start-up dump racing a DESTROY: the late snapshot row does not resurrect the flow', () => {
    const { final, e } = run([ev('new', 'SYN_SENT', 8), ev('destroy', 'CLOSE', 8), ev('snapshot', 'SYN_SENT', 8)]);
    expect(final()).toHaveLength(1);
    expect(e.counters.late).toBe(1);
    expect(e.openCount).toBe(0);
  });

  it('continues a flow across a collector restart: the new run\'s dump row joins the open lifecycle', () => {
    const x = engine();
    x.e.apply({ ...ev('new', 'SYN_SENT', 8), seq: 1 });
    x.e.apply({ ...ev('update', 'ESTABLISHED', ASSURED), seq: 2 });
    x.e.apply({ ...ev('snapshot', 'ESTABLISHED', ASSURED), run: 'r2', seq: 1 });
    x.e.apply({ ...ev('destroy', 'TIME_WAIT', ASSURED), run: 'r2', seq: 2 });
    expect(x.final()).toHaveLength(1);
    expect(x.final()[0]).toMatchObject({ conn_state: 'SF', run: 'r' });
    expect(x.health.filter((h) => h.kind === 'run_start').map((h) => h.run)).toEqual(['r', 'r2']);
  });

  it('gives a reused conntrack id a new lifecycle after the old one ended', () => {
    const { final } = run([ev('new', 'SYN_SENT', 8), ev('destroy', 'CLOSE', 8), ev('new', 'SYN_SENT', 8), ev('destroy', 'CLOSE', 8)]);
    expect(new Set(final().map((r) => r.flow_id)).size).toBe(2);
  });

  it('reports sequence gaps and collector losses as pipeline health', () => {
    const x = engine();
    x.e.apply({ ...ev('new', 'SYN_SENT', 8), seq: 1 });
    x.e.apply({ ...ev('update', 'SYN_RECV', SEEN), seq: 5 });
    x.e.apply({ type: 'loss', host: 'h', run: 'r', seq: 6, sec: t, nsec: 0, reason: 'enobufs', count: 17, source: 'events', resync: true });
    expect(x.health.filter((h) => h.kind !== 'run_start').map((h) => [h.kind, h.count, h.first_seq, h.last_seq])).toEqual([
      ['gap', 3, 2, 4], ['loss', 17, undefined, undefined],
    ]);
  });

  it('after a kernel event loss, the resync dump confirms the flows it holds and closes those it no longer does', async () => {
    const flow = (id: number, type: CtRecord['type'] = 'new', status = 8) =>
      ev(type, type === 'new' ? 'SYN_SENT' : 'ESTABLISHED', status, { id, orig: { ...ev('new', undefined, 0).orig, sport: 1000 + id }, reply: { ...ev('new', undefined, 0).reply, dport: 1000 + id } });
    const loss = (seq: number): CtpipeRecord => ({ type: 'loss', host: 'h', run: 'r', seq, sec: t++, nsec: 0, reason: 'enobufs', count: 5, source: 'events', resync: true });
    const dumpEnd = (seq: number, start: number): CtpipeRecord => ({ type: 'dump_end', host: 'h', run: 'r', seq, sec: t++, nsec: 0, why: 'resync', start_seq: start, flows: 2, expectations: 0 });
    const x = engine();
    let seq = 0;
    const put = (r: CtpipeRecord) => x.e.apply({ ...r, seq: ++seq });
    for (const id of [1, 2, 3, 4]) put(flow(id));
    put(loss(0)); // flows 1-4 wait for the dump
    put(flow(5)); // began after the loss: nothing to confirm
    put(flow(2, 'update', ASSURED)); // an event confirms flow 2
    // a checkpoint while the resync is under way: the next owner carries on
    const y = await reopened(x.e);
    const start = seq + 1;
    const rest: CtpipeRecord[] = [flow(1, 'snapshot', ASSURED), flow(5, 'snapshot', 8), dumpEnd(0, start)];
    for (const r of rest) y.e.apply({ ...r, seq: ++seq });
    const rows = () => new Map(y.final().map((r) => [r.ct_id, r]));
    expect(rows().get(3)).toMatchObject({ end_reason: 'lost', lost_by: 'resync', resynced: false });
    expect(rows().get(4)).toMatchObject({ end_reason: 'lost', lost_by: 'resync' });
    y.e.flushOpen();
    expect(rows().get(1)).toMatchObject({ end_reason: 'open', resynced: true });
    expect(rows().get(2)).toMatchObject({ end_reason: 'open', resynced: true });
    expect(rows().get(5)).toMatchObject({ end_reason: 'open', resynced: false });
    expect(y.e.openCount).toBe(3);
  });

  it('after a restart (a new run of the host, state restored), the start dump continues the flows it holds and closes those that ended meanwhile (lost_by downtime, counted)', async () => {
    const flow = (id: number, type: CtRecord['type'] = 'new', status = 8, run = 'r') =>
      ({ ...ev(type, type === 'new' ? 'SYN_SENT' : 'ESTABLISHED', status, { id, orig: { ...ev('new', undefined, 0).orig, sport: 1000 + id }, reply: { ...ev('new', undefined, 0).reply, dport: 1000 + id } }), run });
    const x = engine();
    let seq = 0;
    for (const id of [1, 2, 3]) x.e.apply({ ...flow(id), seq: ++seq });
    const before = new Map(x.rows.map((r) => [r.ct_id, r.flow_id]));
    x.e.flushOpen();
    const ids = new Map(x.rows.map((r) => [r.ct_id, r.flow_id]));
    // stopped: the state saved; started again as run r2, whose dump holds flows 1 and 2 only
    const y = await reopened(x.e);
    let seq2 = 0;
    y.e.apply({ ...flow(9, 'new', 8, 'r2'), seq: ++seq2 }); // an event before the dump's rows
    const start = seq2 + 1;
    for (const id of [1, 2]) y.e.apply({ ...flow(id, 'snapshot', ASSURED, 'r2'), seq: ++seq2 });
    y.e.apply({ type: 'dump_end', host: 'h', run: 'r2', seq: ++seq2, sec: t++, nsec: 0, why: 'start', start_seq: start, flows: 2, expectations: 0 });
    const rows = () => new Map(y.final().map((r) => [r.ct_id, r]));
    expect(rows().get(3)).toMatchObject({ end_reason: 'lost', lost_by: 'downtime', flow_id: ids.get(3) });
    const losses = y.health.filter((h) => h.kind === 'loss');
    expect(losses).toHaveLength(1);
    expect(losses[0]).toMatchObject({ run: 'r2', count: 1 });
    expect(losses[0]!.detail).toMatch(/^downtime: 1 flows ended while nothing collected \(last event before .*\); closed with lost_by = downtime$/);
    expect(y.e.openCount).toBe(3); // 1, 2 continued and 9 new
    y.e.apply({ ...flow(1, 'destroy', ASSURED, 'r2'), seq: seq2 + 1 });
    expect(rows().get(1)).toMatchObject({ end_reason: 'destroy', flow_id: ids.get(1), resynced: true, run: 'r' });
    y.e.flushOpen();
    expect(rows().get(2)).toMatchObject({ end_reason: 'open', flow_id: ids.get(2), resynced: true });
    expect(rows().get(9)).toMatchObject({ end_reason: 'open', resynced: false });
    expect(before.size).toBe(0); // short flows get no row while open: the restart added none either
    expect(y.rows.filter((r) => r.ct_id !== 9).every((r) => r.flow_id === ids.get(r.ct_id))).toBe(true);
  });

  it('a resync under way survives a checkpoint that compacts the table', async () => {
    const flow = (id: number, type: CtRecord['type'] = 'new', status = 8) =>
      ev(type, type === 'new' ? 'SYN_SENT' : 'ESTABLISHED', status, { id, orig: { ...ev('new', undefined, 0).orig, sport: 1000 + id }, reply: { ...ev('new', undefined, 0).reply, dport: 1000 + id } });
    const x = engine();
    let seq = 0;
    const put = (e: LifecycleEngine, r: CtpipeRecord) => e.apply({ ...r, seq: ++seq });
    for (let id = 1; id <= 12; id++) put(x.e, flow(id));
    for (let id = 1; id <= 8; id++) put(x.e, flow(id, 'destroy', ASSURED)); // 9-12 stay, in the upper slots
    put(x.e, { type: 'loss', host: 'h', run: 'r', seq: 0, sec: t++, nsec: 0, reason: 'enobufs', count: 1, source: 'events', resync: true });
    const y = await reopened(x.e); // 4 live of 12: compacted
    const start = seq + 1;
    for (const id of [10, 12]) put(y.e, flow(id, 'snapshot', ASSURED));
    put(y.e, { type: 'dump_end', host: 'h', run: 'r', seq: 0, sec: t++, nsec: 0, why: 'resync', start_seq: start, flows: 2, expectations: 0 });
    const rows = new Map(y.final().map((r) => [r.ct_id, r]));
    expect([rows.get(9)?.lost_by, rows.get(11)?.lost_by]).toEqual(['resync', 'resync']);
    expect(y.e.openCount).toBe(2);
  });

  it('a dump that began before a later loss does not close the flows that loss left waiting', () => {
    const x = engine();
    const loss = (seq: number): CtpipeRecord => ({ type: 'loss', host: 'h', run: 'r', seq, sec: t++, nsec: 0, reason: 'enobufs', count: 1, source: 'events', resync: true });
    x.e.apply({ ...ev('new', 'SYN_SENT', 8), seq: 1 });
    x.e.apply(loss(2));
    x.e.apply({ type: 'dump_end', host: 'h', run: 'r', seq: 3, sec: t++, nsec: 0, why: 'resync', start_seq: 2, flows: 0, expectations: 0 });
    expect(x.e.openCount).toBe(1); // armed at seq 2, the dump began at seq 2: it may not have seen the loss's aftermath
    x.e.apply({ type: 'dump_end', host: 'h', run: 'r', seq: 4, sec: t++, nsec: 0, why: 'resync', start_seq: 4, flows: 0, expectations: 0 });
    expect(x.e.openCount).toBe(0);
    expect(x.final()[0]).toMatchObject({ end_reason: 'lost', lost_by: 'resync' });
  });

  it('refreshes long-lived flows while they change, and the final row replaces them', () => {
    const x = engine();
    const open = ev('new', 'SYN_SENT', 8);
    x.e.apply({ ...open, seq: 1 });
    x.e.apply({ ...ev('update', 'ESTABLISHED', ASSURED), seq: 2 });
    x.e.tick('h');
    expect(x.rows).toHaveLength(0); // not yet a minute old
    x.e.apply({ ...ev('update', 'ESTABLISHED', ASSURED, { sec: open.sec + 61 }), seq: 3 });
    x.e.tick('h');
    expect(x.rows.map((r) => r.end_reason)).toEqual(['open']);
    x.e.apply({ ...ev('destroy', 'TIME_WAIT', ASSURED, { sec: open.sec + 62 }), seq: 4 });
    expect(x.rows.map((r) => r.end_reason)).toEqual(['open', 'destroy']);
    expect(x.rows[1]!.version).toBeGreaterThan(x.rows[0]!.version);
  });

  it('refreshes at most 20,000 flows a tick, taking turns, so a table of long-lived flows comes of age without a row storm', () => {
    const x = engine(100_000);
    const n = 50_000;
    let seq = 0;
    for (let i = 0; i < n; i++) x.e.apply({ ...ev('snapshot', 'ESTABLISHED', ASSURED, { id: i, orig: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: 1 + (i % 60000), dport: 80 + Math.floor(i / 60000) } }), seq: ++seq });
    x.e.apply({ ...ev('update', 'ESTABLISHED', ASSURED, { sec: t + 120 }), seq: seq + 1 }); // event time moves two minutes on
    const perTick: number[] = [];
    for (let k = 0; k < 4; k++) {
      const before = x.rows.length;
      x.e.tick('h');
      perTick.push(x.rows.length - before);
    }
    expect(perTick).toEqual([20_000, 20_000, 10_000, 0]);
    expect(new Set(x.rows.map((r) => r.flow_id)).size).toBe(x.rows.length); // each flow once
  });

  it('bounds memory: past maxOpen the oldest idle unassured flows go first, counted', () => {
    const x = engine(100);
    for (let i = 0; i < 150; i++) {
      const assured = i < 10;
      x.e.apply({ ...ev('new', assured ? 'ESTABLISHED' : 'SYN_SENT', assured ? ASSURED : 8, { id: i, orig: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: i, dport: 80 } }), seq: i + 1 });
    }
    expect(x.e.openCount).toBeLessThanOrEqual(100);
    expect(x.e.counters.evictions).toBeGreaterThan(0);
    const evicted = x.rows.filter((r) => r.lost_by === 'evicted');
    expect(evicted.every((r) => !r.assured)).toBe(true);
    expect(Math.min(...evicted.map((r) => r.ct_id))).toBe(10); // the oldest unassured first
  });

  it('gives an evicted flow its true end when the kernel ends it later: the same flow id and first_seen, a higher version', async () => {
    const x = engine(100);
    const orig = (i: number) => ({ src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: i, dport: 80 });
    let seq = 0;
    for (let i = 0; i < 150; i++) x.e.apply({ ...ev('new', 'SYN_SENT', 8, { id: i, orig: orig(i), reply: { ...orig(i), src: '192.0.2.2', dst: '192.0.2.1', sport: 80, dport: i } }), seq: ++seq });
    const lost = x.rows.find((r) => r.lost_by === 'evicted')!;
    // through a checkpoint: what eviction leaves is part of the state
    const y = await reopened(x.e, 100);
    const i = lost.ct_id;
    y.e.apply({ ...ev('destroy', 'CLOSE', 8, { id: i, orig: orig(i), reply: { ...orig(i), src: '192.0.2.2', dst: '192.0.2.1', sport: 80, dport: i }, counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 0, bytes: 0 } } }), seq: seq + 1 });
    const end = y.rows.find((r) => r.ct_id === i)!;
    expect(end).toMatchObject({ flow_id: lost.flow_id, first_seen: lost.first_seen, end_reason: 'destroy', lost_by: '', resynced: true, orig_bytes: 60 });
    expect(end.version).toBeGreaterThan(lost.version);
    expect(y.e.counters.revived).toBe(1);
    expect(y.e.counters.late).toBe(0);
  });

  it('bounds the open flows of every engine of a processor together (one per partition)', () => {
    const budget = new OpenBudget(100);
    const a = new LifecycleEngine({ maxOpen: 100, budget, refreshMs: 60_000, graceMs: 5000, onRow: () => {}, onHealth: () => {} });
    const b = new LifecycleEngine({ maxOpen: 100, budget, refreshMs: 60_000, graceMs: 5000, onRow: () => {}, onHealth: () => {} });
    const rec = (i: number) => ({ ...ev('new', 'SYN_SENT', 8, { id: i, orig: { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: i, dport: 80 } }), seq: i + 1 });
    for (let i = 0; i < 60; i++) a.apply(rec(i));
    for (let i = 0; i < 60; i++) b.apply(rec(i));
    expect(a.openCount + b.openCount).toBeLessThanOrEqual(100);
    expect(b.counters.evictions).toBeGreaterThan(0);
    expect(budget.open).toBe(a.openCount + b.openCount);
    b.dispose(); // its partition moved away
    expect(budget.open).toBe(a.openCount);
  });

  it('stores the reply tuple and names the translated sides by one rule: NAT when the reply is not the mirror', () => {
    const o = { src: '192.0.2.1', dst: '192.0.2.2', proto: 6, sport: 1000, dport: 80 };
    const o6 = { src: '2001:db8::1', dst: '2001:db8::2', proto: 6, sport: 1000, dport: 80 };
    const icmp = { src: '192.0.2.1', dst: '192.0.2.2', proto: 1, icmp_type: 8, icmp_code: 0, icmp_id: 9 };
    const cases: [string, CtRecord['orig'], CtRecord['reply'], string, string, string][] = [
      ['mirror', o, { src: '192.0.2.2', dst: '192.0.2.1', proto: 6, sport: 80, dport: 1000 }, '', '', ''],
      ['masquerade', o, { src: '192.0.2.2', dst: '198.51.100.1', proto: 6, sport: 80, dport: 61000 }, 'snat', '198.51.100.1:61000', ''],
      ['source port only', o, { src: '192.0.2.2', dst: '192.0.2.1', proto: 6, sport: 80, dport: 1001 }, 'snat', '192.0.2.1:1001', ''],
      ['port forward', o, { src: '10.0.0.5', dst: '192.0.2.1', proto: 6, sport: 8080, dport: 1000 }, 'dnat', '', '10.0.0.5:8080'],
      ['destination port only', o, { src: '192.0.2.2', dst: '192.0.2.1', proto: 6, sport: 8080, dport: 1000 }, 'dnat', '', '192.0.2.2:8080'],
      ['both', o, { src: '10.0.0.5', dst: '198.51.100.1', proto: 6, sport: 8080, dport: 61000 }, 'snat+dnat', '198.51.100.1:61000', '10.0.0.5:8080'],
      ['IPv6 mirror', o6, { src: '2001:db8::2', dst: '2001:db8::1', proto: 6, sport: 80, dport: 1000 }, '', '', ''],
      ['IPv6 port forward', o6, { src: '2001:db8::9', dst: '2001:db8::1', proto: 6, sport: 8080, dport: 1000 }, 'dnat', '', '[2001:db8::9]:8080'],
      ['ICMP echo reply', icmp, { src: '192.0.2.2', dst: '192.0.2.1', proto: 1, icmp_type: 0, icmp_code: 0, icmp_id: 9 }, '', '', ''],
      ['ICMP to a forwarded address', icmp, { src: '10.0.0.5', dst: '192.0.2.1', proto: 1, icmp_type: 0, icmp_code: 0, icmp_id: 9 }, 'dnat', '', '10.0.0.5'],
    ];
    for (const [what, orig, reply, nat, natSrc, natDst] of cases) {
      const family = orig.src.includes(':') ? 'ipv6' : 'ipv4';
      const x = run([ev('new', undefined, 8, { orig, reply, proto: orig.proto, family }), ev('destroy', undefined, SEEN, { orig, reply, proto: orig.proto, family })]);
      const r = x.final()[0]!;
      // the row shows the kernel's reply tuple whether it was kept (NAT) or rebuilt as the mirror
      expect([what, r.nat, r.nat_src, r.nat_dst, r.reply_src, r.reply_dst, r.reply_sport, r.reply_dport])
        .toEqual([what, nat, natSrc, natDst, reply.src, reply.dst, reply.sport ?? 0, reply.dport ?? 0]);
    }
  });

  it('maps conntrack views to conn_state', () => {
    const c = (proto: number, states: string[], seenReply = true, sawHandshake = true, o = false, r = false) =>
      connState({ proto, states, seenReply, sawHandshake, closeInitOrig: o, closeInitReply: r });
    expect(c(6, ['SYN_SENT'], false)).toBe('S0');
    expect(c(6, ['SYN_SENT', 'CLOSE'])).toBe('REJ');
    expect(c(6, ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED'])).toBe('S1');
    expect(c(6, ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'TIME_WAIT'])).toBe('SF');
    expect(c(6, ['ESTABLISHED', 'FIN_WAIT'], true, true, true, false)).toBe('S2');
    expect(c(6, ['ESTABLISHED', 'CLOSE_WAIT'], true, true, false, true)).toBe('S3');
    expect(c(6, ['ESTABLISHED', 'CLOSE'])).toBe('RST');
    expect(c(6, ['ESTABLISHED'], true, false)).toBe('OTH');
    expect(c(17, [], false)).toBe('S0');
    expect(c(17, [], true)).toBe('SF');
  });
});
