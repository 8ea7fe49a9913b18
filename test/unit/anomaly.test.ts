/**
 * The detectors on synthetic series: a spike on a steady host, a slow ramp, a new host, a quiet
 * noisy host, a counter reset after a reboot (through the real delta code), the conntrack table
 * filling and dropping, scans and handshake failures among normal connections, and helper
 * (related-flow) anomalies next to the FTP sessions the kernel's helper really made.
 */
import { describe, expect, it } from 'vitest';
import type { CpuStats, CtRecord, ExpRecord, InvalidPacketRecord, StatsRecord } from '../../contract/records.js';
import { STAT_FIELDS } from '../../contract/records.js';
import { InvalidSpikeDetector } from '../../processor/anomaly/invalid-spike.js';
import type { AnomalyRow } from '../../processor/anomaly/row.js';
import { RelatedDetector } from '../../processor/anomaly/related.js';
import { SeasonalProfile, type SeasonalState } from '../../processor/anomaly/seasonal.js';
import { ScanDetector } from '../../processor/anomaly/scans.js';
import { TablePressureDetector } from '../../processor/anomaly/table-pressure.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { StatsDeltas, type HostStatsRow } from '../../processor/stats/deltas.js';
import { mulberry32 } from '../helpers/random.js';

const EP = { openAfter: 3, window: 4, closeAfter: 3, cooldownS: 300 };
const spikeDetector = () => new InvalidSpikeDetector({ ...EP, minRate: 1, z: 3.5, clearZ: 2, history: 240, warmup: 30, alpha: 0.1, minSpread: 0.1 });
const T0 = 1_795_000_000;

function row(i: number, fields: Partial<HostStatsRow>, host = 'h'): HostStatsRow {
  return { host, netns: '', run: 'r', ts: { sec: T0 + i * 10, nsec: 0 }, interval_s: 10, entries: 1000, max_entries: 262144, cpus: 2, reset: false,
    exp_new: 0, exp_create: 0, exp_delete: 0, collector_events: 0, invalid: 0, early_drop: 0, drop: 0, insert_failed: 0, ...fields };
}

/** The latest version of each anomaly, as ReplacingMergeTree keeps it. */
function episodes(rows: AnomalyRow[]): AnomalyRow[] {
  const m = new Map<string, AnomalyRow>();
  for (const r of rows) {
    const k = `${r.host}|${r.kind}|${r.started_at.sec}`;
    if ((m.get(k)?.version ?? -1) <= r.version) m.set(k, r);
  }
  return [...m.values()];
}

function run(rates: number[], d = spikeDetector(), host = 'h'): AnomalyRow[] {
  const out: AnomalyRow[] = [];
  rates.forEach((rate, i) => {
    const a = d.apply(row(i, { invalid: Math.round(rate * 10) }, host));
    if (a) out.push(a);
  });
  return out;
}

describe('INVALID spike detector', () => {
  const rnd = mulberry32(3);
  const steady = (n: number, around: number) => Array.from({ length: n }, () => around * (0.8 + 0.4 * rnd()));

  it('opens one anomaly for a burst on a steady host, with its rate and the baseline, and closes it after', () => {
    const rows = run([...steady(60, 5), ...steady(6, 500), ...steady(20, 5)]);
    const eps = episodes(rows);
    expect(eps.length).toBe(1);
    const a = eps[0]!;
    expect(a.kind).toBe('invalid_spike');
    expect(a.started_at.sec).toBe(T0 + 62 * 10); // the third interval above threshold
    expect(a.ended_at?.sec).toBe(T0 + 68 * 10); // the third clear interval after the burst
    expect(a.observed).toBeGreaterThan(400);
    expect(a.baseline).toBeGreaterThan(3);
    expect(a.baseline).toBeLessThan(7);
    expect(a.score).toBeGreaterThan(3.5);
    expect(a.severity).toBe('critical');
  });

  it('carries the NFLOG samples of the spike as evidence, and reads the likely cause from the flags', () => {
    const d = spikeDetector();
    const rates = [...steady(60, 5), ...steady(6, 500), ...steady(10, 5)];
    const sample = (i: number, src: string, tcp_flags: string, weight: number): InvalidPacketRecord => ({
      type: 'invalid_packet', host: 'h', run: 'r', seq: 0, sec: T0 + i * 10, nsec: 0, family: 'ipv4', proto: 6, src, dst: '203.0.113.2', sport: 40000, dport: 80, tcp_flags, length: 40, weight,
    });
    const out: AnomalyRow[] = [];
    rates.forEach((rate, i) => {
      // background INVALIDs from many places; the burst from one source with SYN+FIN+RST
      d.sample(sample(i, `192.0.2.${i % 50}`, 'A', 5));
      if (i >= 60 && i < 66) d.sample(sample(i, '198.51.100.2', 'FSR', 450));
      const a = d.apply(row(i, { invalid: Math.round(rate * 10) }));
      if (a) out.push(a);
    });
    const [a] = episodes(out);
    expect((a!.details.top_sources as { value: string }[])[0]!.value).toBe('198.51.100.2');
    expect((a!.details.top_dports as { value: string }[])[0]!.value).toBe('80');
    expect(a!.details.likely_cause).toBe('invalid_flags');
  });

  it('does not alert on a slow ramp (ten times over 240 intervals)', () => {
    expect(run(Array.from({ length: 240 }, (_, i) => 5 * 10 ** (i / 240)))).toEqual([]);
  });

  it('learns a new host at whatever level it starts', () => {
    expect(run(steady(50, 300))).toEqual([]);
  });

  it('catches a 30 s burst of 150-200/s on a new host from its first intervals: exactly one, the burst not learnt in warm-up', () => {
    // 10 s intervals as the collector's default: two quiet intervals (a zero baseline), then three at 150-200/s
    const burst = [0, 0, 150, 200, 170, ...Array<number>(20).fill(0)];
    for (const d of [spikeDetector(), new InvalidSpikeDetector({ ...EP, minRate: 5, z: 3.5, clearZ: 2, history: 360, warmup: 30, alpha: 0.1, minSpread: 0.1 })]) {
      const eps = episodes(run(burst, d));
      expect(eps.length).toBe(1);
      expect(eps[0]!.kind).toBe('invalid_spike');
      expect(eps[0]!.started_at.sec).toBe(T0 + 4 * 10); // the third burst interval
      expect(eps[0]!.baseline).toBe(0);
      expect(eps[0]!.observed).toBeGreaterThanOrEqual(150);
      expect(eps[0]!.details.baseline_by).toBe('ewma');
      expect(eps[0]!.ended_at).not.toBeNull();
    }
    // the same with a checkpoint between the burst's intervals (the state through JSON, as pipeline.ts stores it)
    const a = spikeDetector();
    const rows = run(burst.slice(0, 3), a);
    const b = spikeDetector();
    b.importState(JSON.parse(JSON.stringify(a.exportState())) as ReturnType<InvalidSpikeDetector['exportState']>);
    burst.slice(3).forEach((rate, i) => {
      const r = b.apply(row(i + 3, { invalid: Math.round(rate * 10) }));
      if (r) rows.push(r);
    });
    expect(episodes(rows).map((e) => e.started_at.sec)).toEqual([T0 + 4 * 10]);
  });

  it('does not open in warm-up on a host whose normal rate is a steady 50/s, and learns a short rise that did not open', () => {
    expect(run(steady(30, 50))).toEqual([]);
    // a short rise that does not open (two intervals of the four) is learnt once it leaves the window
    const d = spikeDetector();
    expect(run([...steady(5, 50), 400, 400, ...steady(20, 50)], d)).toEqual([]);
    const held = d.exportState()[0]![1];
    expect(held.n).toBe(27);
    expect(held.held?.every((x) => x === null)).toBe(true);
  });

  it('learns a burst that recurs at the same hour every day, and still alerts on one at another hour', () => {
    // 60 s intervals over 8 days; 09:00-09:20 UTC runs at 100x every day; day 8 adds a 03:00 burst
    const d = spikeDetector();
    const day0 = Math.floor(T0 / 86_400) * 86_400;
    const out: AnomalyRow[] = [];
    for (let i = 0; i < 8 * 1440; i++) {
      const sec = day0 + i * 60;
      const minute = i % 1440;
      const burst = (minute >= 540 && minute < 560) || (i >= 7 * 1440 + 180 && i < 7 * 1440 + 190);
      const a = d.apply({ ...row(0, { invalid: Math.round((burst ? 500 : 5) * (0.8 + 0.4 * rnd()) * 60) }), ts: { sec, nsec: 0 }, interval_s: 60 });
      if (a) out.push(a);
    }
    const at = (a: AnomalyRow) => [Math.floor((a.started_at.sec - day0) / 86_400), Math.floor(((a.started_at.sec - day0) % 86_400) / 3600)];
    const eps = episodes(out);
    expect(eps.map(at)).toEqual([[0, 9], [1, 9], [2, 9], [7, 3]]); // from the fourth day on, 09:00 is this host's normal
    expect(eps[3]!.baseline).toBeLessThan(10); // 03:00's own level (about 6/s), not the 09:00 burst's
  });

  it('prefers the same hour of the week once two weeks exist (a weekly job), and forgets nothing else', () => {
    const p = new SeasonalProfile();
    const start = Math.floor(T0 / 604_800) * 604_800; // an hour-of-week origin
    for (let m = 0; m < 15 * 1440; m++) {
      const sec = start + m * 60;
      const weekly = m % 10_080 >= 600 && m % 10_080 < 660; // hour 10 of the week's first day only
      p.add(sec, Math.log1p(weekly ? 400 : 5));
    }
    const w = p.reference(start + 14 * 86_400 + 10 * 3600)!; // day 14 is the week's first day again
    expect(w.by).toBe('weekly');
    expect(Math.expm1(w.center)).toBeCloseTo(400, 0);
    const other = p.reference(start + 13 * 86_400 + 10 * 3600)!; // the same hour of another weekday
    expect(Math.expm1(other.center)).toBeCloseTo(5, 0);
    const young = new SeasonalProfile();
    for (let m = 0; m < 4 * 1440; m++) young.add(start + m * 60, Math.log1p(m % 1440 >= 600 && m % 1440 < 660 ? 400 : 5));
    expect(young.reference(start + 4 * 86_400 + 10 * 3600)).toMatchObject({ by: 'daily' });
    expect(Math.expm1(young.reference(start + 4 * 86_400 + 10 * 3600)!.center)).toBeCloseTo(400, 0);
    expect(young.reference(start + 4 * 86_400 + 5 * 3600)!.center).toBeCloseTo(Math.log1p(5), 3);
    expect(new SeasonalProfile().restore(JSON.parse(JSON.stringify(p.state())) as SeasonalState).reference(start + 14 * 86_400 + 10 * 3600)).toEqual(w);
  });

  it('scores a new host against the fleet: far above every other host opens, the same level alone is learnt', () => {
    const d = spikeDetector();
    const fleet = ['a', 'b', 'c', 'd'];
    const out: AnomalyRow[] = [];
    for (let i = 0; i < 40; i++) {
      for (const h of fleet) d.apply(row(i, { invalid: Math.round(5 * (0.8 + 0.4 * rnd()) * 10) }, h));
      if (i >= 30) {
        const a = d.apply(row(i, { invalid: 3000 }, 'new'));
        if (a) out.push(a);
      }
    }
    const eps = episodes(out);
    expect(eps.map((a) => [a.host, a.kind])).toEqual([['new', 'invalid_spike']]);
    expect(eps[0]!.details.fleet_median_rate).toBeGreaterThan(3);
    expect(eps[0]!.details.fleet_median_rate).toBeLessThan(7);
    expect(run(Array.from({ length: 10 }, () => 300))).toEqual([]); // no fleet: nothing to compare with
  });

  it('does not open for a quiet host rising to no more than the fleet\'s usual level', () => {
    const d = spikeDetector();
    const out: AnomalyRow[] = [];
    for (let i = 0; i < 80; i++) {
      for (const h of ['a', 'b', 'c']) d.apply(row(i, { invalid: Math.round(50 * (0.8 + 0.4 * rnd()) * 10) }, h));
      const a = d.apply(row(i, { invalid: Math.round((i >= 60 && i < 66 ? 30 : 2) * 10) }, 'quiet'));
      if (a) out.push(a);
    }
    expect(out).toEqual([]);
    // the same rise without the fleet opens
    expect(episodes(run([...Array.from({ length: 60 }, () => 2), ...Array.from({ length: 6 }, () => 30), ...Array.from({ length: 14 }, () => 2)])).length).toBe(1);
  });

  it('does not score a quiet host\'s noise (under the minimum rate)', () => {
    expect(run(Array.from({ length: 120 }, () => (rnd() < 0.1 ? 0.8 : 0)))).toEqual([]);
  });

  it('ignores the interval of a counter reset after a reboot (fed through the delta code)', () => {
    const deltas = new StatsDeltas();
    const d = spikeDetector();
    const cpu = (invalid: number): CpuStats => ({ cpu: 0, ...Object.fromEntries(STAT_FIELDS.map((f) => [f, 0])), invalid } as CpuStats);
    const rec = (i: number, run: string, invalid: number): StatsRecord => ({
      type: 'stats', host: 'h', run, seq: i + 1, sec: T0 + i * 10, nsec: 0, cpus: [cpu(invalid)], totals: cpu(invalid), entries: 10, max_entries: 100,
      collector: { events: 0, drops: 0, enobufs: 0, rejected: 0 },
    } as unknown as StatsRecord);
    const out: AnomalyRow[] = [];
    let counter = 4_294_000_000; // near the 32-bit wrap
    for (let i = 0; i < 80; i++) {
      counter = (counter + 50) % 2 ** 32; // 5/s, wrapping once
      const r = deltas.apply(rec(i, 'r1', counter));
      if (r) { const a = d.apply(r); if (a) out.push(a); }
    }
    // reboot: a new run with the counter back near zero, then the same 5/s
    for (let i = 80; i < 100; i++) {
      const r = deltas.apply(rec(i, 'r2', (i - 80) * 50 + 3));
      if (r) { const a = d.apply(r); if (a) out.push(a); }
    }
    expect(out).toEqual([]);
  });
});

describe('table pressure detector', () => {
  const d = () => new TablePressureDetector({ ...EP, warnFill: 0.75, criticalFill: 0.9, minDropRate: 1, trendPoints: 12 });

  it('opens as the table fills past 75%, turns critical past 90%, extrapolates the time to full, and closes when it drains', () => {
    const det = d();
    const rows: AnomalyRow[] = [];
    const max = 262144;
    const fills = [...Array.from({ length: 20 }, (_, i) => 0.5 + i * 0.025), ...Array.from({ length: 10 }, () => 0.5)];
    fills.forEach((f, i) => rows.push(...det.apply(row(i, { entries: Math.round(f * max), max_entries: max }))));
    const eps = episodes(rows);
    expect(eps.map((e) => e.kind)).toEqual(['table_pressure']);
    const a = eps[0]!;
    expect(a.severity).toBe('critical');
    expect(a.observed).toBeGreaterThan(0.95);
    expect(a.score).toBeCloseTo(a.observed / 0.75, 6);
    expect(a.ended_at).not.toBeNull();
    const opened = rows.find((r) => r.ended_at === null)!;
    // filling 2.5% of 262,144 per 10 s: about 655 entries/s
    expect(opened.details.entries_per_s as number).toBeCloseTo(655.36, 0);
    expect(opened.details.seconds_to_full as number).toBeGreaterThan(0);
    // the final row keeps the worst interval as evidence, not the drained table
    expect(a.details.fill).toBeCloseTo(a.observed, 6);
    expect(a.details.entries).toBe(Math.round(fills[19]! * max));
  });

  it('reports the kernel dropping (early_drop, drop, insert_failed) as table_drops', () => {
    const det = d();
    const rows: AnomalyRow[] = [];
    for (let i = 0; i < 20; i++) rows.push(...det.apply(row(i, { early_drop: i >= 5 && i < 10 ? 200 : 0 })));
    const eps = episodes(rows);
    expect(eps.map((e) => [e.kind, e.observed])).toEqual([['table_drops', 20]]);
    expect(eps[0]!.ended_at).not.toBeNull();
    expect(eps[0]!.details.early_drop_per_s).toBe(20);
  });
});

describe('statistics detectors per network namespace', () => {
  const table = () => new TablePressureDetector({ ...EP, warnFill: 0.75, criticalFill: 0.9, minDropRate: 1, trendPoints: 12 });
  const max = 262144;
  const ns = (i: number, netns: string, fields: Partial<HostStatsRow>) => row(i, { netns, ...fields });

  it('keeps each namespace of a host apart: the filling one and the INVALID one are named, the quiet one is not', () => {
    const [t, s] = [table(), spikeDetector()];
    const out: AnomalyRow[] = [];
    const rnd = mulberry32(5);
    for (let i = 0; i < 90; i++) {
      // ns-a fills and takes a burst of INVALID; ns-b stays at half a table and a trickle
      const a = ns(i, 'ns-a', { entries: Math.round((i < 60 ? 0.4 : 0.95) * max), max_entries: max, invalid: Math.round((i >= 60 && i < 66 ? 500 : 5) * 10 * (0.8 + 0.4 * rnd())) });
      const b = ns(i, 'ns-b', { entries: Math.round(0.5 * max), max_entries: max, invalid: Math.round(5 * 10 * (0.8 + 0.4 * rnd())) });
      for (const r of [a, b]) {
        out.push(...t.apply(r));
        const x = s.apply(r);
        if (x) out.push(x);
      }
    }
    expect(out.length).toBeGreaterThan(0);
    expect(new Set(out.map((r) => r.netns))).toEqual(new Set(['ns-a']));
    expect(new Set(out.map((r) => r.kind))).toEqual(new Set(['table_pressure', 'invalid_spike']));
    // alternating rows of two namespaces would have read as a table jumping between 40% and 50%
    expect(t.exportState().map(([k]) => k).sort()).toEqual(['h\u0000ns-a', 'h\u0000ns-b']);
  });

  it('resumes from a checkpoint saved before namespaces (keyed by host alone): the open episode goes on, a namespace starts its own', () => {
    const before = table();
    const rows: AnomalyRow[] = [];
    for (let i = 0; i < 10; i++) rows.push(...before.apply(row(i, { entries: Math.round(0.8 * max), max_entries: max })));
    const opened = rows.find((r) => r.ended_at === null)!;
    // the form checkpoints had: [host, state] (JSON in the snapshot)
    const saved = JSON.parse(JSON.stringify({ table: before.exportState(), invalid: spikeDetector().exportState() })) as { table: ReturnType<TablePressureDetector['exportState']> };
    expect(saved.table.map(([k]) => k)).toEqual(['h']);
    const after = table();
    after.importState(saved.table);
    const more: AnomalyRow[] = [];
    for (let i = 10; i < 14; i++) more.push(...after.apply(row(i, { entries: Math.round(0.8 * max), max_entries: max })));
    expect(more.length).toBeGreaterThan(0);
    expect(more.every((r) => r.started_at.sec === opened.started_at.sec && r.netns === '')).toBe(true); // the same anomaly, not a new one
    for (let i = 10; i < 12; i++) expect(after.apply(ns(i, 'ns-a', { entries: Math.round(0.8 * max), max_entries: max }))).toEqual([]); // its own episode, not yet open
    for (let i = 10; i < 24; i++) more.push(...after.apply(row(i + 4, { entries: Math.round(0.3 * max), max_entries: max })));
    expect(more.some((r) => r.ended_at !== null && r.started_at.sec === opened.started_at.sec)).toBe(true);

    // the INVALID detector's state of before too: a host's baseline learnt, then a spike on it opens against that baseline
    const s1 = spikeDetector();
    run(Array.from({ length: 60 }, () => 5), s1);
    const s2 = spikeDetector();
    s2.importState(JSON.parse(JSON.stringify(s1.exportState())) as ReturnType<InvalidSpikeDetector['exportState']>);
    const burst = (d: InvalidSpikeDetector) => Array.from({ length: 6 }, (_, k) => d.apply(row(60 + k, { invalid: 5000 }))).filter((a) => a !== undefined);
    expect(burst(s2).map((r) => [r.kind, r.netns, r.details.baseline_by])).toContainEqual(['invalid_spike', '', 'median']); // the history came back
    expect(burst(spikeDetector())).toEqual([]); // without it, a new host's first level is learnt
  });
});

describe('handshake failure and scan detector', () => {
  const M0 = Math.ceil(T0 / 60) * 60; // windows are aligned to the minute
  const det = () => new ScanDetector({ windowS: 60, s0: 100, rej: 100, ports: 100, hosts: 50, closeAfter: 2, lateS: 0 });
  let n = 0;
  const flow = (sec: number, src: string, dst: string, dport: number, conn_state: string): FlowRow => ({
    host: 'h', flow_id: `f${n++}`, orig_src: src, orig_dst: dst, orig_dport: dport, conn_state, end_reason: 'destroy',
    first_seen: { sec: sec - 30, nsec: 0 }, ended_at: { sec, nsec: 0 },
  }) as unknown as FlowRow;
  /** Normal clients: a few connections a minute each, answered. */
  const normal = (minute: number) => Array.from({ length: 300 }, (_, i) => flow(M0 + minute * 60 + (i % 60), `10.0.0.${i % 30}`, `10.1.0.${i % 5}`, [80, 443, 53][i % 3]!, 'SF'));

  function feed(d: ScanDetector, flows: FlowRow[]): AnomalyRow[] {
    return flows.sort((a, b) => a.ended_at!.sec - b.ended_at!.sec).flatMap((f) => d.onFlow(f));
  }

  it('stays quiet on normal traffic', () => {
    expect(feed(det(), [0, 1, 2, 3, 4].flatMap(normal))).toEqual([]);
  });

  it('finds a port scan and its source, and closes it when the scan stops', () => {
    const scan = (minute: number) => Array.from({ length: 500 }, (_, i) => flow(M0 + minute * 60 + (i % 60), '192.0.2.66', '10.1.0.1', 1 + i, 'REJ'));
    const rows = feed(det(), [...[0, 1, 2, 3, 4, 5, 6].flatMap(normal), ...scan(1), ...scan(2)]);
    const eps = episodes(rows);
    expect(eps.map((e) => e.kind).sort()).toEqual(['port_scan', 'rej_storm']);
    const p = eps.find((e) => e.kind === 'port_scan')!;
    expect(p.started_at.sec).toBe(M0 + 60);
    expect(p.ended_at?.sec).toBe(M0 + 5 * 60); // two clear windows after the last scanning one
    expect((p.details.sources as { src: string }[]).map((s) => s.src)).toEqual(['192.0.2.66']);
    expect(p.flow_ids.length).toBeGreaterThan(0);
  });

  it('waits lateS for rows the engine closes late (flows lost by timeout), and counts rows later than that', () => {
    const d = new ScanDetector({ windowS: 60, s0: 100, rej: 100, ports: 100, hosts: 50, closeAfter: 2, lateS: 35 });
    const sweep = (minute: number) => Array.from({ length: 60 }, (_, i) => ({ ...flow(M0 + minute * 60 + 10, '192.0.2.9', `10.2.0.${i}`, 53, 'S0'), end_reason: 'lost' }) as FlowRow);
    const out = [...feed(d, normal(0)), ...d.advance('h', { sec: M0 + 60 + 30, nsec: 0 })]; // minute 1 still waits
    out.push(...feed(d, sweep(1)), ...d.advance('h', { sec: M0 + 120 + 40, nsec: 0 })); // 30 s late: in time
    expect(episodes(out).map((a) => [a.kind, a.started_at.sec])).toEqual([['host_scan', M0 + 60]]);
    out.push(...d.advance('h', { sec: M0 + 10 * 60, nsec: 0 }), ...feed(d, sweep(2))); // minutes late: too late
    expect(episodes(out).map((a) => [a.kind, a.started_at.sec])).toEqual([['host_scan', M0 + 60]]);
    expect(d.exportState()[0]![1].late).toBe(60);
  });

  it('closes on event time alone when no more flows come (the host\'s statistics carry it)', () => {
    const d = det();
    const scan = Array.from({ length: 150 }, (_, i) => flow(M0 + 60 + (i % 60), '192.0.2.66', '10.1.0.1', 1 + i, 'SF'));
    const rows = feed(d, [...normal(0), ...scan]);
    rows.push(...d.advance('h', { sec: M0 + 10 * 60, nsec: 0 }));
    const [p] = episodes(rows);
    expect(p!.kind).toBe('port_scan');
    expect(p!.ended_at?.sec).toBe(M0 + 4 * 60);
  });

  it('keeps its memory bounded under a flood from spoofed sources (ten times its bound), and still finds the scanner among them', () => {
    const d = det();
    // minute 1: a flow from each of 200,000 sources (S0: no reply), and a port scan from one
    // source that starts when the flood is under way
    const flood = (i: number) => flow(M0 + 60 + (i % 60), `${10 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}.1`, '10.1.0.1', 53, 'S0');
    const rows: AnomalyRow[] = [];
    let most = 0;
    for (let i = 0; i < 200_000; i++) {
      rows.push(...d.onFlow(flood(i)));
      if (i >= 100_000 && i < 100_150) rows.push(...d.onFlow(flow(M0 + 60 + (i % 60), '192.0.2.66', '10.1.0.1', i - 99_000, 'REJ')));
      if (i % 20_000 === 0) most = Math.max(most, d.exportState()[0]![1].windows.reduce((n, [, m]) => n + m.length, 0));
    }
    expect(most).toBeLessThanOrEqual(20_000);
    rows.push(...d.advance('h', { sec: M0 + 10 * 60, nsec: 0 }));
    const kinds = episodes(rows).map((e) => e.kind).sort();
    expect(kinds).toEqual(['port_scan', 'rej_storm']); // no source of the flood itself reached a threshold
    expect((episodes(rows).find((e) => e.kind === 'port_scan')!.details.sources as { src: string }[]).map((x) => x.src)).toEqual(['192.0.2.66']);
  });

  it('judges rows of hosts and windows interleaved as a detector that keeps nothing at hand between rows does', () => {
    // the reference is saved and restored before each row, so it looks every host and window up afresh
    const o = { windowS: 60, s0: 20, rej: 20, ports: 15, hosts: 10, closeAfter: 2, lateS: 30 };
    const d = new ScanDetector(o);
    let ref = new ScanDetector(o);
    const rnd = mulberry32(5);
    const got: AnomalyRow[] = [];
    const want: AnomalyRow[] = [];
    // as written when returned (a row shares its open anomaly's flow list, which grows after)
    const now = (rows: AnomalyRow[]) => JSON.parse(JSON.stringify(rows)) as AnomalyRow[];
    for (let i = 0; i < 3000; i++) {
      const host = rnd() < 0.5 ? 'h1' : 'h2';
      const sec = M0 + Math.floor(i / 10) + Math.floor(rnd() * 40); // rows of neighbouring windows mixed, some late
      const src = rnd() < 0.3 ? '192.0.2.66' : `10.0.${Math.floor(rnd() * 4)}.${Math.floor(rnd() * 40)}`;
      const r = { ...flow(sec, src, `10.1.0.${Math.floor(rnd() * 30)}`, 1 + Math.floor(rnd() * 40), rnd() < 0.5 ? 'S0' : 'REJ'), host } as FlowRow;
      got.push(...now(d.onFlow(r)));
      const again = new ScanDetector(o);
      again.importState(JSON.parse(JSON.stringify(ref.exportState())) as ReturnType<ScanDetector['exportState']>);
      ref = again;
      want.push(...now(ref.onFlow(r)));
      if (i % 500 === 499) {
        got.push(...now(d.advance(host, { sec: sec + 5, nsec: 0 })));
        want.push(...now(ref.advance(host, { sec: sec + 5, nsec: 0 })));
      }
    }
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(want);
    expect(d.exportState()).toEqual(ref.exportState());
  });

  it('saves a source with one port, host and flow, or many, in the checkpoint form of before (lists), and resumes from it', () => {
    const d = det();
    const scan = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => flow(M0 + 60 + ((from + k) % 60), '192.0.2.66', '10.1.0.1', 1 + from + k, 'REJ'));
    feed(d, [flow(M0 + 61, '10.0.0.1', '10.1.0.2', 443, 'SF'), ...scan(0, 60)]);
    const saved = d.exportState();
    const sources = new Map(saved[0]![1].windows[0]![1]);
    // the lazy single values come out as the lists a checkpoint always held
    expect(sources.get('10.0.0.1')).toEqual({ n: 1, s0: 0, rej: 0, ports: [443], hosts: ['10.1.0.2'], flows: [expect.any(String)] });
    const many = sources.get('192.0.2.66')!;
    expect([many.n, many.rej, many.ports.length, many.hosts, many.flows.length]).toEqual([60, 60, 60, ['10.1.0.1'], 5]);
    // a checkpoint round trip, then the scan goes on past its threshold (100 ports) in the same window
    const resumed = det();
    resumed.importState(JSON.parse(JSON.stringify(saved)) as typeof saved);
    expect(resumed.exportState()).toEqual(saved);
    const rows = feed(resumed, scan(60, 150));
    rows.push(...resumed.advance('h', { sec: M0 + 10 * 60, nsec: 0 }));
    const p = episodes(rows).find((e) => e.kind === 'port_scan')!;
    expect(p.observed).toBe(101); // counted to one past the threshold, across the restore
    expect((p.details.sources as { src: string }[]).map((x) => x.src)).toEqual(['192.0.2.66']);
  });

  it('finds a burst of unanswered connections (S0) and a sweep across hosts', () => {
    const sweep = Array.from({ length: 200 }, (_, i) => flow(M0 + 120 + (i % 60), '192.0.2.9', `10.2.${i >> 8}.${i & 255}`, 22, 'S0'));
    const rows = feed(det(), [...[0, 1, 2, 3, 4, 5].flatMap(normal), ...sweep]);
    expect(episodes(rows).map((e) => e.kind).sort()).toEqual(['handshake_failures', 'host_scan']);
  });
});

describe('related-flow detector', () => {
  const det = () => new RelatedDetector({
    quietS: 300, perMinute: 600, unusedPerMinute: 20, perMaster: { ftp: 1 }, helperPorts: { ftp: [21], sip: [5060, 5061] },
  });
  const master = { src: '198.51.100.2', dst: '203.0.113.2', proto: 6, sport: 49408, dport: 21 };
  const exp = (expected: Partial<typeof master>, type: 'exp_new' | 'exp_destroy' = 'exp_new', sec = T0): ExpRecord => ({
    type, host: 'h', run: 'r', seq: 0, sec, nsec: 0, family: 'ipv4', helper: 'ftp', master,
    expected: { src: '198.51.100.2', dst: '203.0.113.2', proto: 6, sport: 0, dport: 50000, ...expected },
    mask: { src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 65535 },
  });

  it('finds nothing in the FTP sessions the lab ran through the kernel helper', () => {
    const d = det();
    const recs = decodeBuffers(fixtureBuffers('events'));
    const out: AnomalyRow[] = [];
    for (const r of recs.ct) out.push(...d.onFlowRecord({ ...r, host: 'h' }));
    for (const r of recs.exp) out.push(...d.onExpectation({ ...r, host: 'h' }));
    const e = new LifecycleEngine({ maxOpen: 1000, refreshMs: 60_000, graceMs: 5000, onRow: (row) => out.push(...d.onFlow(row)), onHealth: () => {} });
    recs.ct.forEach((r, i) => e.apply({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    expect(recs.exp.length).toBeGreaterThan(0);
    expect(out).toEqual([]);
  });

  it('flags an expectation toward a third host or a privileged port, with the master as evidence', () => {
    const d = det();
    const out = [...d.onExpectation(exp({ dst: '192.0.2.99' })), ...d.onExpectation(exp({ dst: '192.0.2.99' }, 'exp_destroy')), ...d.onExpectation(exp({ dport: 22 }))];
    expect(episodes(out).map((a) => a.kind).sort()).toEqual(['related_privileged_port', 'related_third_host']);
    const third = episodes(out).find((a) => a.kind === 'related_third_host')!;
    expect((third.details.evidence as { master: string; expected: string }[])[0]).toMatchObject({
      master: '198.51.100.2:49408 -> 203.0.113.2:21/6', expected: '198.51.100.2:0 -> 192.0.2.99:50000/6',
    });
  });

  it('flags more outstanding expectations per master than the helper allows, not a long session of transfers', () => {
    const d = det();
    const session: AnomalyRow[] = [];
    for (let i = 0; i < 50; i++) session.push(...d.onExpectation(exp({ dport: 50000 + i })), ...d.onExpectation(exp({ dport: 50000 + i }, 'exp_destroy')));
    expect(session).toEqual([]);
    const flood = [...d.onExpectation(exp({ dport: 40001 })), ...d.onExpectation(exp({ dport: 40002 })), ...d.onExpectation(exp({ dport: 40003 }))];
    expect(episodes(flood).map((a) => [a.kind, a.observed])).toEqual([['expectation_flood', 2]]);
  });

  it('flags a RELATED flow without a known master, a helper on an odd port, and closes after a quiet period', () => {
    const d = det();
    const orphan = { host: 'h', related: true, master_flow_id: '', end_reason: 'destroy', first_seen: { sec: T0, nsec: 0 }, orig_src: '198.51.100.2', orig_sport: 40000, orig_dst: '203.0.113.2', orig_dport: 50000, proto: 6, helper: '', flow_id: 'f1' } as unknown as FlowRow;
    const odd = { type: 'new', host: 'h', run: 'r', seq: 1, sec: T0, nsec: 0, id: 1, family: 'ipv4', proto: 6, status: 8, helper: 'ftp',
      orig: { src: '198.51.100.2', dst: '203.0.113.2', proto: 6, sport: 40000, dport: 2121 }, reply: { src: '203.0.113.2', dst: '198.51.100.2', proto: 6, sport: 2121, dport: 40000 } } as CtRecord;
    const out = [...d.onFlow(orphan), ...d.onFlowRecord(odd)];
    out.push(...d.advance('h', { sec: T0 + 100, nsec: 0 }));
    expect(episodes(out).every((a) => a.ended_at === null)).toBe(true);
    out.push(...d.advance('h', { sec: T0 + 400, nsec: 0 }));
    const eps = episodes(out);
    expect(eps.map((a) => a.kind).sort()).toEqual(['helper_unexpected_port', 'related_orphan']);
    expect(eps.every((a) => a.ended_at?.sec === T0 + 400)).toBe(true);
    expect(eps.find((a) => a.kind === 'related_orphan')!.flow_ids).toEqual(['f1']);
  });

  it('flags a burst of expectations expiring unused, not ones taken by a connection or evicted by a newer one', () => {
    const d = det();
    const quiet: AnomalyRow[] = [];
    for (let i = 0; i < 40; i++) {
      const e = { ...exp({ dport: 50000 + i }), id: i, timeout: 300 };
      quiet.push(...d.onExpectation(e), ...d.onExpectation({ ...e, type: 'exp_destroy', sec: T0 + 2 })); // used within 2 s
    }
    expect(quiet).toEqual([]);
    const burst: AnomalyRow[] = [];
    const ofMaster = (e: ExpRecord, i: number) => ({ ...e, id: 100 + i, master: { ...master, sport: 40000 + i } }); // 25 control connections
    for (let i = 0; i < 25; i++) burst.push(...d.onExpectation({ ...ofMaster(exp({ dport: 51000 }), i), timeout: 3, sec: T0 + 60 }));
    for (let i = 0; i < 25; i++) burst.push(...d.onExpectation(ofMaster(exp({ dport: 51000 }, 'exp_destroy', T0 + 63), i)));
    const eps = episodes(burst);
    expect(eps.map((a) => [a.kind, a.observed])).toEqual([['expectation_unused_burst', 6]]); // the 20th to the 25th
    expect(JSON.parse(JSON.stringify(d.exportState()))).toEqual(d.exportState());
  });

  it('flags the NAT Slipstreaming shape: a SIP REGISTER opening a port on its own client, not a phone registering', () => {
    const d = det();
    const sipMaster = { src: '198.51.100.2', dst: '203.0.113.2', proto: 6, sport: 52216, dport: 5060 };
    const sip = (dport: number, cls = 0): ExpRecord => ({
      type: 'exp_new', host: 'h', run: 'r', seq: 0, sec: T0, nsec: 0, family: 'ipv4', helper: 'sip', master: sipMaster, class: cls, flags: 3,
      expected: { src: '203.0.113.2', dst: '198.51.100.2', proto: 6, sport: 0, dport },
    });
    expect([...d.onExpectation(sip(5060)), ...d.onExpectation(sip(52216)), ...d.onExpectation(sip(16384, 1))]).toEqual([]);
    const found = episodes(d.onExpectation(sip(3306)));
    expect(found.map((a) => [a.kind, a.severity])).toEqual([['nat_slipstreaming', 'critical']]);
    expect((found[0]!.details.evidence as { expected: string }[])[0]!.expected).toBe('203.0.113.2:0 -> 198.51.100.2:3306/6');
  });

  it('flags a RELATED flow that outlived its master cut while open, not one whose master closed or outlived it', () => {
    const row = (o: Partial<FlowRow>) => ({
      host: 'h', related: false, master_flow_id: '', end_reason: 'destroy', first_seen: { sec: T0, nsec: 0 }, ended_at: { sec: T0 + 10, nsec: 0 },
      orig_src: '198.51.100.2', orig_sport: 40000, orig_dst: '203.0.113.2', orig_dport: 21, proto: 6, helper: 'ftp', flow_id: 'm', final_tcp_state: 'ESTABLISHED', ...o,
    }) as FlowRow;
    const child = (master: string, end: number) => row({ related: true, master_flow_id: master, helper: '', orig_dport: 50000, flow_id: `c-${master}`, ended_at: { sec: T0 + end, nsec: 0 } });
    const d = det();
    const quiet = [
      ...d.onFlow(child('m1', 5)), ...d.onFlow(row({ flow_id: 'm1', final_tcp_state: 'TIME_WAIT' })), // normal: data, then control
      ...d.onFlow(row({ flow_id: 'm2', final_tcp_state: 'CLOSE' })), ...d.onFlow(child('m2', 20)), // control reset first
      ...d.onFlow(child('m3', 5)), ...d.onFlow(row({ flow_id: 'm3' })), // cut after its data flow ended
    ];
    expect(quiet).toEqual([]);
    const cut = episodes([...d.onFlow(row({ flow_id: 'm4' })), ...d.onFlow(child('m4', 30))]);
    expect(cut.map((a) => [a.kind, a.flow_ids])).toEqual([['related_orphan', ['c-m4']]]);
    expect((cut[0]!.details.evidence as { master: string }[])[0]!.master).toBe('cut while open');
  });
});
