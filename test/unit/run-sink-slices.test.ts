/**
 * `ctpipe run`'s sink (processor/sink.ts) runs records through the engine in slices as they come,
 * not once a whole insert's worth has come (records held that long died old: issue 19, and made the
 * second 1M run's peak: issue 17), while its inserts keep their bounds: at most max_batch records
 * and max_rows rows each, contiguous seq ranges named in their tokens, every flow stored once in
 * chDB. While a chunk's insert is in flight (chDB held back), none of the records already applied
 * can be reached.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { CtRecord } from '../../contract/records.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { Pipeline } from '../../processor/pipeline.js';
import { PipelineSink, UPSTREAM_BACKLOG } from '../../processor/sink.js';
import type { Store } from '../../processor/store.js';
import { lifecycleRecords } from '../helpers/records.js';
import { tempDir } from '../helpers/resources.js';
import { select } from '../helpers/store.js';

// a full collection on demand, as `node --expose-gc` gives it
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A pipeline on `db` whose inserts are listed: each one's token and flows rows. */
function watched(db: Store): [Pipeline, { token: string; flows: number }[]] {
  const p = new Pipeline({ store: db, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 100_000, refreshMs: 60_000, graceMs: 5000 } });
  const inserts: { token: string; flows: number }[] = [];
  const writeRows = p.writeRows.bind(p);
  p.writeRows = (rows, token, o) => {
    inserts.push({ token, flows: rows.flows.length });
    return writeRows(rows, token, o);
  };
  return [p, inserts];
}

describe("ctpipe run's sink: engine slices, bounded inserts, records let go", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = tempDir('sink-slices');
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    await migrate(store, { db: 'ctpipe_slices', flowsTtlDays: 30, eventsTtlDays: 3 });
    await migrate(store, { db: 'ctpipe_sink_memory', flowsTtlDays: 30, eventsTtlDays: 3 });
    await migrate(store, { db: 'ctpipe_sink_room', flowsTtlDays: 30, eventsTtlDays: 3 });
    await migrate(store, { db: 'ctpipe_sink_rows', flowsTtlDays: 30, eventsTtlDays: 3 });
    await migrate(store, { db: 'ctpipe_sink_rowless', flowsTtlDays: 30, eventsTtlDays: 3 });
    await migrate(store, { db: 'ctpipe_sink_upstream', flowsTtlDays: 30, eventsTtlDays: 3 });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies records before an insert is due, inserts at most max_batch records under contiguous ranges, stores every flow once', async () => {
    const db = store.database('ctpipe_slices');
    const [p, inserts] = watched(db);
    // a long flush interval and a batch larger than the first burst: nothing is due to be inserted yet
    const sink = new PipelineSink(p, { flushMs: 60_000, maxBatch: 25_000, log: silentLogger });
    const recs = lifecycleRecords('h', 'r', 20_000); // 60,000 records: NEW, UPDATE, DESTROY each
    for (const r of recs.slice(0, 12_000)) sink.write(r);
    await sleep(20); // the event loop turns, as between two reads of the collector
    expect(inserts).toEqual([]);
    expect(p.engine.counters.records).toBeGreaterThanOrEqual(8192); // through the engine already, not held
    expect(sink.backlog).toBeLessThan(4096);
    for (const [i, r] of recs.slice(12_000).entries()) {
      sink.write(r);
      if (i % 4096 === 4095) await sleep(1);
    }
    await sink.close();
    const ranges = inserts.filter((x) => x.token.startsWith('h:r:')).map((x) => x.token.slice(4).split('-').map(Number) as [number, number]);
    expect(ranges.length).toBeGreaterThanOrEqual(3);
    let next = 1;
    for (const [first, last] of ranges) {
      expect(first).toBe(next);
      expect(last - first + 1).toBeLessThanOrEqual(25_000);
      next = last + 1;
    }
    expect(next).toBe(recs.length + 1);
    expect(sink.processed).toBe(recs.length);
    const [n] = await select<{ n: string; u: string }>(store, "SELECT count() n, uniqExact(flow_id) u FROM ctpipe_slices.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(20_000);
    expect(Number(n!.u)).toBe(20_000);
  });

  it('holds no applied record while its chunk is being inserted, and stores every row once the insert goes on', async () => {
    const db = store.database('ctpipe_sink_memory');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserts = 0;
    const slow = new Proxy(db, {
      get(target, prop, recv) {
        if (prop === 'insert') {
          return async (...args: unknown[]) => {
            inserts++;
            await held; // chDB takes its time: the chunk's insert stays in flight
            return (target.insert as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        }
        return Reflect.get(target, prop, recv) as unknown;
      },
    }) as Store;
    const p = new Pipeline({ store: slow, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 10_000, refreshMs: 60_000, graceMs: 5000 } });
    const sink = new PipelineSink(p, { flushMs: 10, maxBatch: 300, slice: 30, inserts: 8, log: silentLogger });
    const conns = 400; // 1,200 records: four chunks of 300
    const refs: WeakRef<CtRecord>[] = [];
    // made inside a function, so no local of this test keeps one
    const offer = () => {
      for (const r of lifecycleRecords('h', 'r', conns)) {
        refs.push(new WeakRef(r));
        sink.write(r);
      }
    };
    offer();
    for (let t = 0; inserts === 0 || sink.backlog > 0; t += 10) {
      expect(t, `inserts ${inserts}, backlog ${sink.backlog}`).toBeLessThan(10_000);
      await sleep(10);
    }
    // every record is applied and every chunk's insert waits; none of the records may be reachable
    expect(sink.processed).toBe(0);
    await sleep(0);
    gc();
    expect(refs.filter((w) => w.deref() !== undefined).length).toBe(0);
    release();
    await sink.close();
    expect(sink.processed).toBe(conns * 3);
    const [n] = await select<{ n: string; u: string }>(store, "SELECT count() n, uniqExact(flow_id) u FROM ctpipe_sink_memory.flows FINAL WHERE end_reason = 'destroy'");
    expect([Number(n!.n), Number(n!.u)]).toEqual([conns, conns]);
    // every record of every connection went through the engine, in order
    const paths = await select<{ p: string[]; c: string }>(store, 'SELECT tcp_states p, count() c FROM ctpipe_sink_memory.flows FINAL GROUP BY p');
    expect(paths.map((x) => [x.p, Number(x.c)])).toEqual([[['SYN_SENT', 'ESTABLISHED', 'TIME_WAIT'], conns]]);
  });

  it('has room for a slice of records, not an insert\'s worth: the collector keeps the rest raw until the engine takes them', async () => {
    const p = new Pipeline({ store: store.database('ctpipe_sink_room'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 100_000, refreshMs: 60_000, graceMs: 5000 } });
    const sink = new PipelineSink(p, { flushMs: 60_000, maxBatch: 100_000, log: silentLogger });
    const recs = lifecycleRecords('h', 'r', 10_000); // 30,000 records
    let i = 0;
    // written in one turn of the event loop, as a burst of reads before the engine runs
    while (i < recs.length && sink.hasRoom()) sink.write(recs[i++]!);
    expect(i).toBe(4096); // one slice, far below max_batch
    let room = false;
    void sink.whenRoom().then(() => (room = true));
    for (let t = 0; !room; t += 5) {
      expect(t, `backlog ${sink.backlog}`).toBeLessThan(10_000);
      await sleep(5);
    }
    expect(p.engine.counters.records).toBeGreaterThan(0); // room again once the engine took a slice
    for (; i < recs.length; i++) sink.write(recs[i]!);
    await sink.close();
    expect(sink.processed).toBe(recs.length);
    const [n] = await select<{ n: string }>(store, "SELECT count() n FROM ctpipe_sink_room.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(10_000);
  });

  it('cuts an insert at max_rows rows, not at as many records: flows of three records make inserts of about max_rows flows', async () => {
    const [p, inserts] = watched(store.database('ctpipe_sink_rows'));
    // no flush due and no records bound given: only the rows bound cuts before the close
    const sink = new PipelineSink(p, { flushMs: 60_000, maxRows: 5000, log: silentLogger });
    const recs = lifecycleRecords('h', 'r', 20_000); // 60,000 records, a row each third
    for (const [i, r] of recs.entries()) {
      sink.write(r);
      if (i % 4096 === 4095) await sleep(1); // the collector's reads, a slice each
    }
    await sink.close();
    const cuts = inserts.filter((x) => x.token.startsWith('h:r:'));
    expect(cuts.length).toBeGreaterThanOrEqual(4);
    let next = 1;
    for (const [k, x] of cuts.entries()) {
      const [first, last] = x.token.slice(4).split('-').map(Number) as [number, number];
      expect(first).toBe(next);
      next = last + 1;
      if (k === cuts.length - 1) continue; // the close takes what is left
      expect(x.flows).toBeGreaterThanOrEqual(5000);
      expect(x.flows).toBeLessThan(5000 + 4096); // cut at the slice that reached the bound
      expect(last - first + 1).toBeGreaterThan(2 * 5000); // three records a row: the records are not what is bounded
    }
    expect(next).toBe(recs.length + 1);
    const [n] = await select<{ n: string; u: string }>(store, "SELECT count() n, uniqExact(flow_id) u FROM ctpipe_sink_rows.flows FINAL WHERE end_reason = 'destroy'");
    expect([Number(n!.n), Number(n!.u)]).toEqual([20_000, 20_000]);
  });

  it('still cuts records that make almost no row (a burst of NEW) every 100,000', async () => {
    const [p, cuts] = watched(store.database('ctpipe_sink_rowless'));
    const sink = new PipelineSink(p, { flushMs: 60_000, log: silentLogger });
    // 60,000 connections' NEW and UPDATE first (120,000 records, no row), then their DESTROYs
    const all = [...lifecycleRecords('h', 'r', 30_000, 1), ...lifecycleRecords('h', 'r', 30_000, 2).map((r) => ({ ...r, id: r.id + 30_000 }))];
    const recs = [...all.filter((r) => r.type !== 'destroy'), ...all.filter((r) => r.type === 'destroy')]
      .map((r, i) => ({ ...r, seq: i + 1, sec: 1_795_000_000 + Math.floor(i / 50_000), nsec: (i % 50_000) * 20_000 })); // 4 s: no refresh row
    for (const [i, r] of recs.entries()) {
      sink.write(r);
      if (i % 4096 === 4095) await sleep(1);
    }
    await sink.close();
    const [first] = cuts.filter((x) => x.token.startsWith('h:r:'));
    const last = Number(first!.token.split('-').at(-1));
    expect(first!.token.startsWith('h:r:1-')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(100_000); // cut at the slice that reached 100,000 records
    expect(last).toBeLessThan(100_000 + 4096);
    expect(first!.flows).toBe(0);
    const [n] = await select<{ n: string }>(store, "SELECT count() n FROM ctpipe_sink_rowless.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(60_000);
  });

  it('defers a due checkpoint while a backlog waits upstream (the collector\'s queues and gate), until it is quiet or five intervals overdue', async () => {
    const db = store.database('ctpipe_sink_upstream');
    const [p] = watched(db);
    // the real store, each checkpoint's start and end noted
    const saves: { start: number; end: number }[] = [];
    const spy = Object.create(db) as Store;
    spy.saveCheckpoint = async (...a) => {
      const start = Date.now();
      await db.saveCheckpoint(...a);
      saves.push({ start, end: Date.now() });
    };
    const everyMs = 200;
    const sink = new PipelineSink(p, { flushMs: 10, log: silentLogger, checkpoint: { store: spy, key: { group: 'run', topic: 'up', partition: 0 }, everyMs } });
    let held = UPSTREAM_BACKLOG;
    sink.upstream = () => held;
    const records = lifecycleRecords('up', 'r', 10_000); // more than the writes below can take
    let next = 0;
    const t0 = Date.now();
    const writeUntil = async (done: () => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (!done() && Date.now() < end) {
        sink.write(records[next++]!);
        await sleep(5);
      }
    };
    // due after 200 ms, overdue after 1,200: with input held upstream, none for 700 ms
    await writeUntil(() => false, 700);
    expect(saves).toEqual([]);
    // quiet, a few events in flight: the due checkpoint is taken, before it would be overdue
    held = 64 << 10;
    await writeUntil(() => saves.length > 0, 10_000);
    expect(saves).toHaveLength(1);
    expect(saves[0]!.start - t0).toBeLessThan(6 * everyMs);
    // a backlog again: the next waits until five intervals past due (the interval is at least everyMs)
    held = UPSTREAM_BACKLOG;
    await writeUntil(() => saves.length > 1, 30_000);
    expect(saves).toHaveLength(2);
    expect(saves[1]!.start - saves[0]!.end).toBeGreaterThanOrEqual(6 * everyMs);
    await sink.close();
    expect(sink.failure).toBeUndefined();
    // the state saved is the one restored: every record written went through it
    expect((await db.loadCheckpoint({ group: 'run', topic: 'up', partition: 0 }))!.offset).toBe(records[next - 1]!.seq);
  });
});
