/**
 * Several network namespaces in one stream (`--netns all|containers`): the record field in both
 * encodings (old records still decode), the lifecycle engine keeping namespaces apart (flows with
 * the same tuple, resyncs of one namespace), and namespace discovery. The kernel side is proven in
 * test/integration/netns-all.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { discoverNamespaces, netnsMode, requireSysAdmin, type NetnsFs } from '../../collector/netns-follower.js';
import { fromJsonLine, toJsonLine } from '../../contract/json.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { validateRecord } from '../../contract/validate.js';
import { LifecycleEngine, type HealthEvent } from '../../processor/lifecycle/engine.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';
import { SnapshotReader, SnapshotWriter } from '../../processor/snapshot.js';
import { StatsDeltas } from '../../processor/stats/deltas.js';
import { STAT_FIELDS, type StatsRecord } from '../../contract/records.js';
import { flowRecord } from '../helpers/records.js';

const T0 = 1_795_000_000;

function conn(seq: number, type: CtRecord['type'], netns: string | undefined, id = 7): CtRecord {
  return {
    type, host: 'h', run: 'r', seq, sec: T0 + seq, nsec: 0, id, family: 'ipv4', proto: 6, status: 0x0e, tcp_state: 3, timeout: 432000,
    orig: { src: '198.51.100.2', dst: '203.0.113.2', proto: 6, sport: 40000, dport: 8080 },
    reply: { src: '203.0.113.2', dst: '198.51.100.2', proto: 6, sport: 8080, dport: 40000 },
    ...(netns ? { netns } : {}),
  };
}

function engine() {
  const rows: FlowRow[] = [];
  const health: HealthEvent[] = [];
  const e = new LifecycleEngine({ maxOpen: 1000, refreshMs: 60_000, graceMs: 5_000, onRow: (r) => rows.push(r), onHealth: (h) => health.push(h) });
  return { e, rows, health };
}

describe('the netns field', () => {
  it('travels in protobuf and JSON lines, and records without it decode as before', () => {
    const a = { ...flowRecord('h', 'r', 1), netns: 'ctp-x-fw' };
    const b = flowRecord('h', 'r', 2);
    const c: CtpipeRecord = { type: 'dump_end', host: 'h', run: 'r', seq: 3, sec: T0, nsec: 0, why: 'start', start_seq: 1, flows: 0, expectations: 0, netns: 'inode:4026532' };
    const { records, rejected } = decodeBatch(encodeBatch([a, b, c]));
    expect(rejected).toEqual([]);
    expect(records.map((r) => r.netns)).toEqual(['ctp-x-fw', undefined, 'inode:4026532']);
    // a batch of a collector before namespaces: the same bytes as before the field existed
    expect(encodeBatch([b]).includes(Buffer.from('netns'))).toBe(false);
    expect(fromJsonLine(toJsonLine(a)).netns).toBe('ctp-x-fw');
    expect(JSON.parse(toJsonLine(a)) as object).toMatchObject({ host: 'h', netns: 'ctp-x-fw' });
    expect('netns' in JSON.parse(toJsonLine(b))).toBe(false);
  });

  it('is a name: no control characters (the engine separates host and namespace with NUL)', () => {
    expect(validateRecord({ ...flowRecord('h', 'r', 1), netns: 'a\u0000b' })).toBe('netns holds a control character');
    expect(validateRecord({ ...flowRecord('h', 'r', 1), netns: 7 })).toBe('netns is not a string');
    expect(() => fromJsonLine(toJsonLine({ ...flowRecord('h', 'r', 1), netns: 'x\ny' }))).toThrow(/netns holds a control character/);
  });
});

describe('the lifecycle engine with namespaces', () => {
  it('keeps the same tuple and conntrack id in two namespaces apart: a lifecycle and a row each', () => {
    const { e, rows } = engine();
    e.apply(conn(1, 'new', 'ns-a'));
    e.apply(conn(2, 'new', 'ns-b'));
    e.apply(conn(3, 'new', undefined));
    e.apply(conn(4, 'destroy', 'ns-a'));
    expect(e.openCount).toBe(2);
    e.apply(conn(5, 'destroy', 'ns-b'));
    e.apply(conn(6, 'destroy', undefined));
    expect(rows.map((r) => [r.host, r.netns, r.end_reason])).toEqual([['h', 'ns-a', 'destroy'], ['h', 'ns-b', 'destroy'], ['h', '', 'destroy']]);
    expect(new Set(rows.map((r) => r.flow_id)).size).toBe(3);
  });

  it('resyncs only the namespace that lost events: another namespace\'s flows stay open', () => {
    const { e, rows, health } = engine();
    e.apply(conn(1, 'new', 'ns-a', 1));
    e.apply(conn(2, 'new', 'ns-b', 2));
    e.apply({ type: 'loss', host: 'h', run: 'r', seq: 3, sec: T0 + 3, nsec: 0, reason: 'enobufs', count: 5, source: 'events', resync: true, netns: 'ns-a' });
    // ns-a's resync dump no longer holds flow 1; ns-b's flow is not in that dump and must not be closed
    e.apply({ type: 'dump_end', host: 'h', run: 'r', seq: 4, sec: T0 + 4, nsec: 0, why: 'resync', start_seq: 4, flows: 0, expectations: 0, netns: 'ns-a' });
    expect(rows.map((r) => [r.netns, r.end_reason, r.lost_by])).toEqual([['ns-a', 'lost', 'resync']]);
    expect(e.openCount).toBe(1);
    expect(health.find((h) => h.kind === 'loss')!.detail).toBe('netns ns-a: events: enobufs');
  });

  it('a new run arms every namespace, and each namespace\'s start dump decides for its own flows', async () => {
    const { e, rows } = engine();
    e.apply(conn(1, 'new', 'ns-a', 1));
    e.apply(conn(2, 'new', 'ns-b', 2));
    // through a checkpoint: the namespaces are known again from the restored flows
    const w = new SnapshotWriter();
    await e.save(w);
    const y = engine();
    y.e.restore(await SnapshotReader.open(await w.finish()));
    const snap = (seq: number, netns: string, id: number): CtRecord => ({ ...conn(seq, 'snapshot', netns, id), run: 'r2' });
    const end = (seq: number, netns: string, start: number): CtpipeRecord =>
      ({ type: 'dump_end', host: 'h', run: 'r2', seq, sec: T0 + 10 + seq, nsec: 0, why: 'start', start_seq: start, flows: 1, expectations: 0, netns });
    y.e.apply(snap(1, 'ns-b', 2));
    y.e.apply(end(2, 'ns-b', 1));
    expect(y.rows).toEqual([]); // ns-a's dump has not come yet: its flow waits
    y.e.apply(end(3, 'ns-a', 3));
    expect(y.rows.map((r) => [r.netns, r.lost_by])).toEqual([['ns-a', 'downtime']]);
    expect(y.e.openCount).toBe(1);
    expect(rows).toEqual([]);
  });

  it('closes a namespace\'s flows by the host\'s event time once their timeout passes', () => {
    const { e, rows } = engine();
    e.apply({ ...conn(1, 'new', 'ns-a'), proto: 17, timeout: 30, orig: { src: '198.51.100.2', dst: '203.0.113.2', proto: 17, sport: 1, dport: 53 }, reply: { src: '203.0.113.2', dst: '198.51.100.2', proto: 17, sport: 53, dport: 1 }, tcp_state: undefined });
    e.apply({ ...conn(2, 'new', undefined, 9), sec: T0 + 100 });
    e.tick('h');
    expect(rows.map((r) => [r.netns, r.end_reason, r.lost_by])).toEqual([['ns-a', 'lost', 'timeout']]);
  });
});

describe('statistics of several namespaces', () => {
  it('are differenced per namespace: alternating records neither reset nor wrap', () => {
    const stats = (seq: number, netns: string, invalid: number): StatsRecord => {
      const cpu = { cpu: 0, ...Object.fromEntries(STAT_FIELDS.map((f) => [f, 0])) } as StatsRecord['cpus'][number];
      cpu.invalid = invalid;
      return { type: 'stats', host: 'h', run: 'r', seq, sec: T0 + seq, nsec: 0, netns, cpus: [cpu], totals: { ...cpu },
        collector: { events: 0, drops: 0, enobufs: 0, rejected: 0 } };
    };
    const d = new StatsDeltas();
    expect(d.apply(stats(1, 'a', 1000))).toBeUndefined();
    expect(d.apply(stats(2, 'b', 5))).toBeUndefined();
    const a = d.apply(stats(3, 'a', 1010))!;
    const b = d.apply(stats(4, 'b', 7))!;
    expect([a.invalid, a.reset, b.invalid, b.reset]).toEqual([10, false, 2, false]);
  });
});

describe('namespace discovery', () => {
  const fake = (files: Record<string, [number, number] | 'plain'>, dirs: Record<string, string[]>): NetnsFs => ({
    list: (d) => dirs[d] ?? [],
    nsId: (f) => {
      const v = files[f];
      return v === undefined || v === 'plain' ? undefined : { dev: v[0], ino: v[1] };
    },
  });
  const fs = fake({
    '/proc/self/ns/net': [4, 100],
    '/run/netns/web': [4, 200],
    '/run/netns/db': [4, 300],
    '/run/netns/half-made': 'plain', // `ip netns add` before its bind mount: not a namespace yet
    '/proc/1/ns/net': [4, 100],
    '/proc/42/ns/net': [4, 200],
    '/proc/43/ns/net': [4, 400],
    '/proc/44/ns/net': [4, 400],
  }, { '/run/netns': ['web', 'db', 'half-made'], '/proc': ['1', '42', '43', '44', 'self', 'net'] });

  it('all: the named namespaces, by name', () => {
    expect(discoverNamespaces('all', fs)).toEqual([
      { name: 'db', path: '/run/netns/db', id: '4:300' },
      { name: 'web', path: '/run/netns/web', id: '4:200' },
    ]);
  });

  it('containers: the processes\' too, once per inode, named ones by name, the own one entered without setns', () => {
    expect(discoverNamespaces('containers', fs)).toEqual([
      { name: 'db', path: '/run/netns/db', id: '4:300' },
      { name: 'web', path: '/run/netns/web', id: '4:200' },
      { name: 'inode:100', path: undefined, id: '4:100' },
      { name: 'inode:400', path: '/proc/43/ns/net', id: '4:400' },
    ]);
  });

  it('knows the modes from a path, and says CAP_SYS_ADMIN is needed when it is missing', () => {
    expect([netnsMode('all'), netnsMode('containers'), netnsMode('/run/netns/all'), netnsMode(undefined)]).toEqual(['all', 'containers', undefined, undefined]);
    expect(() => requireSysAdmin('all', 'CapEff:\t0000000000001000\n')).toThrow(/needs CAP_SYS_ADMIN as well as CAP_NET_ADMIN/);
    expect(() => requireSysAdmin('all', 'CapEff:\t0000000000201000\n')).not.toThrow();
  });
});
