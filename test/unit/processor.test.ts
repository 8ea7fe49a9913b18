/**
 * Processor pieces without Kafka: statistics deltas (wraps, resets, CPUs coming and going), the
 * schema's migrations on chDB (from empty, idempotent, cluster DDL), a pipeline whose ClickHouse
 * fails for a while (nothing lost, nothing doubled), and `ctpipe run`'s bounded backlog.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { packageRoot } from '../../common/paths.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { CpuStats, LossRecord, StatsRecord } from '../../contract/records.js';
import { STAT_FIELDS } from '../../contract/records.js';
import { loadConfig } from '../../cli/config.js';
import { detectOptions } from '../../processor/options.js';
import { sumCpus } from '../../contract/records.js';
import { Stamper, type LossNews } from '../../contract/stamper.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { MIGRATIONS, SCHEMA_VERSION, type SchemaContext } from '../../processor/clickhouse/schema.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';
import { Pipeline } from '../../processor/pipeline.js';
import { restoreState, saveState } from '../../processor/checkpoint.js';
import { PipelineSink } from '../../processor/sink.js';
import { alertRules } from '../../dashboards/alerts.js';
import { evaluateRule } from '../../dashboards/run-queries.js';
import { StatsDeltas } from '../../processor/stats/deltas.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { lifecycleRecords } from '../helpers/records.js';
import { tempDir } from '../helpers/resources.js';
import { select } from '../helpers/store.js';

/** A Stamper that keeps the loss records it made, for the test to see. */
class WatchedStamper extends Stamper {
  readonly losses: LossRecord[] = [];
  override loss(news: LossNews, resync?: boolean): LossRecord {
    const r = super.loss(news, resync);
    this.losses.push(r);
    return r;
  }
}

function cpu(n: number, invalid: number, insert = 0): CpuStats {
  return { cpu: n, found: 0, invalid, insert, insert_failed: 0, drop: 0, early_drop: 0, error: 0, search_restart: 0, clash_resolve: 0, chaintoolong: 0 };
}
function stats(run: string, sec: number, cpus: CpuStats[]): StatsRecord {
  return { type: 'stats', host: 'h', run, seq: sec, sec, nsec: 0, cpus, totals: sumCpus(cpus), entries: 10, max_entries: 100, collector: { events: 0, drops: 0, enobufs: 0, rejected: 0 } };
}

describe('statistics deltas', () => {
  it('needs a first record, then gives per-interval deltas summed over CPUs', () => {
    const d = new StatsDeltas();
    expect(d.apply(stats('r', 100, [cpu(0, 5), cpu(1, 7)]))).toBeUndefined();
    expect(d.apply(stats('r', 110, [cpu(0, 8), cpu(1, 17)]))).toMatchObject({ invalid: 13, interval_s: 10, reset: false, entries: 10 });
  });

  it('counts the collector\'s events per interval, from zero again in a new run', () => {
    const d = new StatsDeltas();
    const at = (run: string, sec: number, events: number) => ({ ...stats(run, sec, [cpu(0, 0)]), collector: { events, drops: 0, enobufs: 0, rejected: 0 } });
    d.apply(at('r', 100, 500));
    expect(d.apply(at('r', 110, 800))?.collector_events).toBe(300);
    expect(d.apply(at('r2', 120, 40))?.collector_events).toBe(40);
  });

  it('handles a 32-bit wrap within a run', () => {
    const d = new StatsDeltas();
    d.apply(stats('r', 100, [cpu(0, 2 ** 32 - 10)]));
    expect(d.apply(stats('r', 110, [cpu(0, 5)]))!.invalid).toBe(15);
  });

  it('treats a drop across runs as a reset (host reboot): the new value is the delta', () => {
    const d = new StatsDeltas();
    d.apply(stats('r1', 100, [cpu(0, 1_000_000)]));
    expect(d.apply(stats('r2', 200, [cpu(0, 42)]))).toMatchObject({ invalid: 42, reset: true });
  });

  it('a collector restart without a host reboot continues the counters', () => {
    const d = new StatsDeltas();
    d.apply(stats('r1', 100, [cpu(0, 1000)]));
    expect(d.apply(stats('r2', 200, [cpu(0, 1100)]))).toMatchObject({ invalid: 100, reset: false });
  });

  it('a CPU coming online contributes from its second sample', () => {
    const d = new StatsDeltas();
    d.apply(stats('r', 100, [cpu(0, 10)]));
    expect(d.apply(stats('r', 110, [cpu(0, 20), cpu(1, 500)]))!.invalid).toBe(10);
    expect(d.apply(stats('r', 120, [cpu(0, 20), cpu(1, 510)]))!.invalid).toBe(10);
  });
});

describe('checkpoints from before binary snapshots', () => {
  it('still load: a pipeline restored from one continues exactly as one that never stopped', async () => {
    // test/fixtures/checkpoint-json-v4.json.gz: the state (gzip JSON) ctpipe 0.1 checkpointed after
    // the first half of the lab capture and a loss record asking for a resync
    const legacy = readFileSync(path.join(packageRoot(), 'test', 'fixtures', 'checkpoint-json-v4.json.gz'));
    const recs = decodeBuffers(fixtureBuffers()).ct.map((r, i) => ({ ...r, host: 'fw', run: 'r1', seq: i + 1 }));
    const half = Math.floor(recs.length / 2);
    const opts = { store: {} as Store, rawEvents: false, log: silentLogger, engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 }, detect: detectOptions(loadConfig({ env: {} }).detect, 5000) };
    const straight = new Pipeline({ ...opts, registry: new Registry() });
    straight.process(recs.slice(0, half));
    straight.process([{ type: 'loss', host: 'fw', run: 'r1', seq: half + 1, sec: recs[half - 1]!.sec, nsec: 0, reason: 'enobufs', count: 3, source: 'events', resync: true }]);
    straight.takeRows();
    const restored = new Pipeline({ ...opts, registry: new Registry() });
    await restoreState(restored, [legacy]);
    expect(restored.engine.openCount).toBe(straight.engine.openCount);
    const rest = recs.slice(half).map((r) => ({ ...r, seq: r.seq + 1 }));
    for (const p of [straight, restored]) {
      p.process(rest);
      p.flushOpen();
    }
    const flows = (p: Pipeline) => {
      const rows = p.takeRows().flows;
      return Array.from({ length: rows.length }, (_, i) => rows.text(i)).sort();
    };
    const want = flows(straight);
    expect(want.length).toBeGreaterThan(5);
    expect(flows(restored)).toEqual(want);
  });
});

describe('schema', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = tempDir('schema');
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ctx: SchemaContext = { db: 'ctpipe_test', flowsTtlDays: 30, eventsTtlDays: 3 };

  it('migrates an empty database, and a second run changes nothing', async () => {
    const first = await migrate(store, ctx);
    expect(first).toEqual({ from: 0, to: MIGRATIONS.at(-1)!.version, applied: MIGRATIONS.map((m) => m.version) });
    const tables = async () => ((await store.query(`SELECT name, create_table_query q FROM system.tables WHERE database = 'ctpipe_test' ORDER BY name`)) as { name: string; q: string }[]);
    const before = await tables();
    expect(before.map((t) => t.name)).toEqual(expect.arrayContaining(['flows', 'host_stats', 'pipeline_health', 'anomalies', 'events', 'dead_letters', 'flows_1m', 'flows_1m_mv', 'fleet_1m', 'processor_checkpoints', 'schema_migrations']));
    expect(await migrate(store, ctx)).toMatchObject({ applied: [] });
    expect(await tables()).toEqual(before);
  });

  it('upgrades a database the previous version made: data kept, rollups continue with the new columns', async () => {
    const old = { ...ctx, db: 'ctpipe_v1' };
    expect(await migrate(store, old, 1)).toMatchObject({ from: 0, applied: [1] });
    const flow = (id: string, handshake: number) => ({
      host: 'h', run: 'r', flow_id: id, ct_id: 1, family: 'ipv4', proto: 6, orig_src: '::ffff:198.51.100.1', orig_dst: '::ffff:203.0.113.2',
      orig_sport: 40000, orig_dport: 443, reply_src: '::ffff:203.0.113.2', reply_dst: '::ffff:198.51.100.1', reply_sport: 443, reply_dport: 40000,
      first_seen: '2026-11-21 08:00:00.000000000', end_reason: 'destroy', handshake_ms: handshake, conn_state: 'SF', version: 1,
    });
    // INSERT ... SELECT: the embedded store refuses inline data (stdin could join it)
    const insertFlows = (fs: ReturnType<typeof flow>[]) => store.command(`INSERT INTO ctpipe_v1.flows (${Object.keys(fs[0]!).join(', ')}) SELECT * FROM format(JSONEachRow, {d:String})`,
      { d: fs.map((f) => JSON.stringify(f)).join('\n') });
    await insertFlows([flow('a', 10)]);
    const up = await migrate(store, old);
    expect(up).toEqual({ from: 1, to: SCHEMA_VERSION, applied: MIGRATIONS.filter((m) => m.version > 1).map((m) => m.version) });
    await insertFlows([flow('b', 20), flow('c', 30), flow('d', 40)]);
    const q = <T>(sql: string) => select<T>(store, sql);
    expect(await q(`SELECT flow_id FROM ctpipe_v1.flows ORDER BY flow_id`)).toEqual([{ flow_id: 'a' }, { flow_id: 'b' }, { flow_id: 'c' }, { flow_id: 'd' }]);
    // The rollups count the flow stored before the upgrade and the three after; the handshake
    // digests start at the upgrade (median of 20, 30 and 40).
    expect(await q(`SELECT sum(flows) n, quantilesTDigestMerge(0.5, 0.9, 0.99)(handshake_ms_digest)[1] p50 FROM ctpipe_v1.flows_1m`)).toEqual([{ n: '4', p50: 30 }]);
    expect(await q(`SELECT sum(flows) n FROM ctpipe_v1.fleet_1m`)).toEqual([{ n: '4' }]);
    // flows_state_1m (version 5) is filled from flows_1m at the upgrade, then by its view
    expect(await q(`SELECT sum(flows) n FROM ctpipe_v1.flows_state_1m`)).toEqual([{ n: '4' }]);
    const idx = await q<{ name: string }>(`SELECT name FROM system.data_skipping_indices WHERE database = 'ctpipe_v1' AND table = 'flows' ORDER BY name`);
    expect(idx.map((i) => i.name)).toEqual(['addresses_bf', 'flow_ids_bf', 'orig_dport_set']); // version 6: one bloom filter for both addresses
    expect(await migrate(store, old)).toMatchObject({ applied: [] });
  });

  it('emits Replicated and Distributed tables ON CLUSTER for a cluster', () => {
    const ddl = MIGRATIONS.flatMap((m) => m.statements({ ...ctx, cluster: 'ctpipe_cluster' }));
    const flows = ddl.filter((q) => /\bflows(_local)?\b/.test(q.split('(')[0]!));
    expect(flows.some((q) => q.includes('ctpipe_test.flows_local ON CLUSTER ctpipe_cluster') && q.includes("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ctpipe_test/flows_local', '{replica}', version)"))).toBe(true);
    expect(flows.some((q) => q.includes('ENGINE = Distributed(ctpipe_cluster, ctpipe_test, flows_local, cityHash64(host))'))).toBe(true);
    // every DDL statement runs on each node; the one data statement, flows_state_1m's backfill
    // (version 5), goes through the Distributed tables, which read every shard and write by host
    const [data, definitions] = [ddl.filter((q) => q.trim().startsWith('INSERT')), ddl.filter((q) => !q.trim().startsWith('INSERT'))];
    expect(definitions.every((q) => q.includes('ON CLUSTER ctpipe_cluster'))).toBe(true);
    expect(data).toHaveLength(1);
    expect(data[0]).toMatch(/^INSERT INTO ctpipe_test\.flows_state_1m SELECT [\s\S]* FROM ctpipe_test\.flows_1m\s/);
    expect(ddl.some((q) => q.includes('ctpipe_test.flows_state_1m ON CLUSTER ctpipe_cluster AS ctpipe_test.flows_state_1m_local ENGINE = Distributed(ctpipe_cluster, ctpipe_test, flows_state_1m_local, cityHash64(host))'))).toBe(true);
  });

  it('loses nothing and doubles nothing when ClickHouse fails for a while', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_fail' });
    let failures = 3;
    const flaky = new Proxy(store.database('ctpipe_fail'), {
      get(target, prop, recv) {
        if (prop === 'insert') {
          return async (...args: unknown[]) => {
            if (failures-- > 0) throw new Error('connect ECONNREFUSED (injected)');
            return (target.insert as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        }
        return Reflect.get(target, prop, recv) as unknown;
      },
    }) as Store;
    const p = new Pipeline({ store: flaky, rawEvents: false, log: silentLogger, registry: new Registry(), retryMinMs: 5, engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    p.process(recs);
    expect(await p.write('t:0:1-100')).toBe(true);
    expect(p.storeUp).toBe(true);
    // the same range again (a replay by another processor): deduplicated by its token
    const again = new Pipeline({ store: store.database('ctpipe_fail'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
    again.process(recs);
    expect(await again.write('t:0:1-100')).toBe(true);
    const [n] = (await store.query('SELECT count() n, uniqExact(flow_id) u FROM ctpipe_fail.flows')) as { n: string; u: string }[];
    expect(Number(n!.n)).toBe(Number(n!.u));
    expect(Number(n!.n)).toBe(new Set(recs.map((r) => r.id)).size);
  });

  it('ctpipe run\'s backlog: while ClickHouse refuses rows, records past the bound are dropped and reported as a loss; the rest stored once', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_backlog' });
    let down = true;
    const refusing = new Proxy(store.database('ctpipe_backlog'), {
      get(target, prop, recv) {
        if (prop === 'insert') {
          return async (...args: unknown[]) => {
            if (down) throw new Error('Cannot reserve 1.00 MiB, not enough space (injected)');
            return (target.insert as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        }
        return Reflect.get(target, prop, recv) as unknown;
      },
    }) as Store;
    const p = new Pipeline({ store: refusing, rawEvents: false, log: silentLogger, registry: new Registry(), retryMinMs: 5, retryMaxMs: 20, engine: { maxOpen: 10_000, refreshMs: 60_000, graceMs: 5000 } });
    // the collector's part: sequence numbers, shared with the sink for the losses it reports
    const stamper = new WatchedStamper('h', 'r', () => ({ sec: 1_795_000_100, nsec: 0 }));
    const losses = stamper.losses;
    const sink = new PipelineSink(p, { flushMs: 10, maxBatch: 300, maxBacklog: 1000, log: silentLogger, stamper });
    const conns = lifecycleRecords('h', 'r', 2000);
    const offer = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        sink.write(stamper.stamp({ ...conns[i]! }));
        if (i % 100 === 99) await sleep(2); // let the sink drain, as the event loop does
      }
    };
    await offer(0, 5400);
    expect(sink.dropped).toBeGreaterThan(0);
    expect(losses).toEqual([]); // reported once there is room again
    down = false;
    for (let t = 0; sink.backlog > 0; t += 10) {
      expect(t).toBeLessThan(10_000);
      await sleep(10);
    }
    await offer(5400, 6000);
    await sink.close();
    expect(losses, JSON.stringify(losses)).toHaveLength(1);
    const loss = losses[0]!;
    expect(loss).toMatchObject({ reason: 'buffer_full', count: sink.dropped });
    expect(loss.last_seq! - loss.first_seq! + 1).toBe(sink.dropped);
    const q = <T>(sql: string) => select<T>(store, sql);
    const health = await q<{ kind: string; count: string; first_seq: string; last_seq: string }>(
      "SELECT kind, count, first_seq, last_seq FROM ctpipe_backlog.pipeline_health WHERE kind IN ('loss', 'gap') ORDER BY kind");
    // the dropped range arrives as the loss record's news and as the gap in the sequence
    expect(health.map((h) => [h.kind, Number(h.count), Number(h.first_seq), Number(h.last_seq)])).toEqual([
      ['gap', sink.dropped, loss.first_seq, loss.last_seq], ['loss', sink.dropped, loss.first_seq, loss.last_seq]]);
    // every DESTROY that got in is one flow row; none twice
    const kept = conns.filter((r, i) => r.type === 'destroy' && (i + 1 < loss.first_seq! || i + 1 > loss.last_seq!)).length;
    const [n] = await q<{ n: string; u: string }>("SELECT count() n, uniqExact(flow_id) u FROM ctpipe_backlog.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(kept);
    expect(Number(n!.u)).toBe(kept);
  });

  it('ctpipe run\'s sink: a row ClickHouse cannot hold goes to dead_letters with the reason, every other row is stored, and close() returns', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_run_refused' });
    const db = store.database('ctpipe_run_refused');
    const p = new Pipeline({ store: db, rawEvents: false, log: silentLogger, registry: new Registry(), retryMinMs: 5, engine: { maxOpen: 10_000, refreshMs: 60_000, graceMs: 5000 } });
    const sink = new PipelineSink(p, { flushMs: 10, maxBatch: 100, log: silentLogger, checkpoint: { store: db, key: { group: 'run', topic: 'h', partition: 0 }, everyMs: 50 } });
    // connection 7's records carry a time before 1970 (the in-memory link takes the collector's records as they are)
    const conns = lifecycleRecords('h', 'r', 300).map((r) => (r.id === 5007 ? { ...r, sec: -5 } : r));
    for (const [i, r] of conns.entries()) {
      sink.write(r);
      if (i % 50 === 49) await sleep(2);
    }
    const closed = await Promise.race([sink.close().then(() => 'closed'), sleep(30_000).then(() => 'hung')]);
    expect(closed).toBe('closed');
    expect(sink.failure).toBeUndefined();
    const q = <T>(sql: string) => select<T>(store, sql);
    const [n] = await q<{ n: string }>("SELECT count() n FROM ctpipe_run_refused.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(299);
    const letters = await q<{ topic: string; reason: string }>('SELECT topic, reason FROM ctpipe_run_refused.dead_letters');
    expect(letters.map((l) => l.topic)).toEqual(['rows:flows']);
    expect(letters[0]!.reason).toMatch(/^ctpipe's RowBinary encoder refused flows\.\w+: \{"sec":-5,"nsec":\d+\} is outside DateTime64\(9\)'s range .*\(input run, token flows:h:r:/);
  });

  it('stores anomalies from the statistics: one row per anomaly, its latest version ending it, through a checkpoint', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_anom' });
    const opts = { store: store.database('ctpipe_anom'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 }, detect: detectOptions(loadConfig({ env: {} }).detect, 5000) };
    const cpu = (invalid: number) => ({ cpu: 0, ...Object.fromEntries(STAT_FIELDS.map((f) => [f, 0])), invalid }) as CpuStats;
    let invalid = 0;
    const rec = (i: number): StatsRecord => {
      invalid += i >= 60 && i < 66 ? 5000 : 50 + (i % 7);
      return { type: 'stats', host: 'h', run: 'r', seq: i + 1, sec: 1_795_000_000 + i * 10, nsec: 0, cpus: [cpu(invalid)], totals: cpu(invalid), entries: 10, max_entries: 1000, collector: { events: 0, drops: 0, enobufs: 0, rejected: 0 } } as unknown as StatsRecord;
    };
    let p = new Pipeline(opts);
    for (let i = 0; i < 63; i++) p.process([rec(i)]);
    expect(await p.write('a:0-62')).toBe(true);
    // a restart in the middle of the spike: the open anomaly continues from the checkpoint
    const state = await saveState(p);
    p = new Pipeline({ ...opts, registry: new Registry() });
    await restoreState(p, state);
    for (let i = 63; i < 90; i++) p.process([rec(i)]);
    expect(await p.write('a:63-89')).toBe(true);
    const rows = (await store.query('SELECT kind, started_at, ended_at, observed FROM ctpipe_anom.anomalies FINAL')) as { kind: string; ended_at: string | null; observed: number }[];
    expect(rows.length).toBe(1);
    expect(rows[0]!.kind).toBe('invalid_spike');
    expect(rows[0]!.ended_at).not.toBeNull();
    expect(rows[0]!.observed).toBeCloseTo(500, 0);
  });

  it('writes processor_stats (records, rows, inserts, lag) at most every 10 s, and the lag alert rule reads them', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe' });
    const t0 = 1_795_000_000_000;
    const lagAt = (i: number, growing: boolean) => (growing ? 10 + i * 20 : 10);
    for (const [proc, growing] of [['p-behind', true], ['p-keeping-up', false]] as const) {
      const p = new Pipeline({ store, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
      for (let i = 0; i <= 30; i++) {
        p.process([stats('r', 1_795_000_000 + i, [cpu(0, 0)])]);
        p.noteActivity(proc, 0, lagAt(i, growing), t0 + i * 10_000);
        p.noteActivity(proc, 0, 0, t0 + i * 10_000 + 5000); // within 10 s of the last: no row
        expect(await p.write(`stats:${proc}:${i}`)).toBe(true);
      }
    }
    const rows = await store.query<{ processor: string; n: string; r: string; l: string }>("SELECT processor, count() n, sum(records) r, max(lag) l FROM ctpipe.processor_stats GROUP BY processor ORDER BY processor");
    expect(rows.map((x) => [x.processor, Number(x.n), Number(x.l)])).toEqual([['p-behind', 31, 610], ['p-keeping-up', 31, 10]]);
    expect(Number(rows[1]!.r)).toBe(31); // one stats record per interval
    const rule = alertRules('ctpipe').groups[0]!.rules.find((r) => r.uid === 'ctpipe-processor-lag')!;
    const firing = await evaluateRule(store, rule, t0 + 30 * 10_000);
    expect(firing.series).toBe(2);
    expect(firing.firing.map((f) => f.labels)).toEqual([{ processor: 'p-behind' }]);
  });

  it('sends rows ClickHouse refuses to dead_letters with the reason and stores every other row once, replays included', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_refused' });
    const db = store.database('ctpipe_refused');
    const registry = new Registry();
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    // one connection's events carry a time before 1970: the encoder refuses its row, as ClickHouse's
    // text parser did before inserts were RowBinary
    const bad = recs.find((r) => r.type === 'destroy')!.id;
    const poisoned = recs.map((r) => (r.id === bad ? { ...r, sec: -5 } : r));
    const flows = new Set(recs.map((r) => r.id)).size;
    for (let pass = 0; pass < 2; pass++) { // the second: a replay of the same range by another processor
      const p = new Pipeline({ store: db, rawEvents: false, log: silentLogger, registry, engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
      p.process(poisoned);
      expect(await p.write('t:0:1-100', { origin: { input: 'topic', partition: 3, offset: 1 } })).toBe(true);
    }
    const [n] = await store.query<{ n: string; u: string }>('SELECT count() n, uniqExact(flow_id) u FROM ctpipe_refused.flows');
    expect(Number(n!.n)).toBe(flows - 1);
    expect(Number(n!.u)).toBe(flows - 1);
    const letters = await store.query<{ topic: string; partition: number; reason: string; row: string }>(
      "SELECT topic, partition, reason, unhex(payload_hex) row FROM ctpipe_refused.dead_letters");
    expect(letters.length).toBe(1);
    expect(letters[0]).toMatchObject({ topic: 'rows:flows', partition: 3 });
    expect(letters[0]!.reason).toMatch(/^ctpipe's RowBinary encoder refused flows\.ended_at: \{"sec":-5,"nsec":\d+\} is outside DateTime64\(9\)'s range \(1970 to 2262\) \(input topic, token flows:t:0:1-100(\/[01])+\)$/);
    expect(letters[0]!.row).toMatch(/^h\t\tr\t/);
    expect(await registry.getSingleMetricAsString('ctpipe_processor_rows_refused_total')).toMatch(/table="flows"} 2/); // once per pass
  });

  it('stops on a statement the database cannot run (a missing column) instead of retrying or dropping rows', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_schema' });
    await store.command('ALTER TABLE ctpipe_schema.flows DROP COLUMN resynced');
    const p = new Pipeline({ store: store.database('ctpipe_schema'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
    p.process(decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 })));
    await expect(p.write('t:0:1-100')).rejects.toMatchObject({ code: 'STORE_SCHEMA', message: expect.stringMatching(/NO_SUCH_COLUMN_IN_TABLE 16: .*resynced/) });
    expect(await store.query('SELECT * FROM ctpipe_schema.dead_letters')).toEqual([]);
  });

  it('keeps checkpoints as chunks of any bytes in two slots, reads a checkpoint from before chunks, and refuses an incomplete one', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_cp' });
    const db = store.database('ctpipe_cp');
    const k = { group: 'g', topic: 't\tx', partition: 2 };
    expect(await db.loadCheckpoint(k)).toBeUndefined();
    // every byte value, in chunks of several sizes (one larger than an insert's share)
    const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));
    const first = [bytes(256, 0), bytes(0, 0), bytes(70_000, 7), bytes(9 << 20, 3)];
    // compared as hex digests: deep equality of megabytes of buffers is slow
    const same = (got: { offset: number; chunks: Buffer[] } | undefined, offset: number, want: Buffer[]) => {
      expect(got?.offset).toBe(offset);
      expect(got?.chunks.map((c) => c.equals(want[got.chunks.indexOf(c)]!))).toEqual(want.map(() => true));
    };
    await db.saveCheckpoint(k, 10, first, 11);
    same(await db.loadCheckpoint(k), 10, first);
    const second = [bytes(5, 1)];
    await db.saveCheckpoint(k, 20, second, 21);
    same(await db.loadCheckpoint(k), 20, second);
    const slots = await store.query<{ slot: number; n: string }>('SELECT slot, count() n FROM ctpipe_cp.processor_checkpoint_chunks FINAL GROUP BY slot ORDER BY slot');
    expect(slots.map((x) => [x.slot, Number(x.n)])).toEqual([[0, 4], [1, 1]]); // the previous snapshot is still whole
    // a checkpoint written before chunks: the state (gzip JSON, base64) in the row itself
    const legacy = { group: 'g', topic: 'old', partition: 0 };
    const state = readFileSync(path.join(packageRoot(), 'test', 'fixtures', 'checkpoint-json-v4.json.gz'));
    await store.command(`INSERT INTO ctpipe_cp.processor_checkpoints (group_id, topic, partition, offset, state, version) SELECT 'g', 'old', 0, 41, {s:String}, 42`, { s: state.toString('base64') });
    const old = (await db.loadCheckpoint(legacy))!;
    expect(old.offset).toBe(41);
    expect(old.chunks).toEqual([state]);
    // a chunk missing: refused, not restored in part
    await store.command("ALTER TABLE ctpipe_cp.processor_checkpoint_chunks DELETE WHERE slot = 1 AND seq = 0 SETTINGS mutations_sync = 1");
    await expect(db.loadCheckpoint(k)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID' });
  });

  it('stores every field of a flow row as the engine made it, free text escaped (TabSeparated)', async () => {
    await migrate(store, { ...ctx, db: 'ctpipe_tsv' });
    const host = "fw\t'1'\\n\nedge";
    const rows: FlowRow[] = [];
    const p = new Pipeline({ store: store.database('ctpipe_tsv'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
    const engineRows = new LifecycleEngine({ maxOpen: 1000, refreshMs: 60_000, graceMs: 5000, onRow: (r) => rows.push(r), onHealth: () => {} });
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host, run: 'r\t1', seq: i + 1, helper: r.helper === undefined ? undefined : `${r.helper}\\x` }));
    p.process(recs);
    for (const r of recs) engineRows.apply(r);
    expect(await p.write('t:0:1-1')).toBe(true);
    const got = (await store.query(`SELECT * EXCEPT (orig_src, orig_dst, reply_src, reply_dst), orig_src_text, orig_dst_text FROM ctpipe_tsv.flows ORDER BY flow_id`)) as Record<string, unknown>[];
    expect(got.length).toBe(rows.length);
    const byId = new Map(rows.map((r) => [r.flow_id, r]));
    const time = (t: { sec: number; nsec: number } | null) => (t ? `${new Date(t.sec * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${String(t.nsec).padStart(9, '0')}` : null);
    for (const g of got) {
      const r = byId.get(g.flow_id as string)!;
      expect(g).toMatchObject({
        host, run: 'r\t1', ct_id: r.ct_id, family: r.family, proto: r.proto, orig_sport: r.orig_sport, orig_dport: r.orig_dport,
        orig_src_text: r.orig_src.replace(/^::ffff:/, ''), orig_dst_text: r.orig_dst.replace(/^::ffff:/, ''),
        first_seen: time(r.first_seen), established_at: time(r.established_at), ended_at: time(r.ended_at),
        end_reason: r.end_reason, tcp_states: r.tcp_states, tcp_state_times: r.tcp_state_times.map(time), conn_state: r.conn_state,
        handshake_ms: r.handshake_ms, orig_bytes: String(r.orig_bytes), reply_packets: String(r.reply_packets), helper: r.helper,
        related: r.related, master_flow_id: r.master_flow_id, nat: r.nat, version: String(r.version),
      });
    }
    expect(got.some((g) => (g.helper as string).endsWith('\\x'))).toBe(true);
  });
});
