/**
 * `ctpipe run`'s sink lets records go once they are applied: while a chunk's insert is in flight
 * (chDB held back here), none of the records already applied can still be reached, so they die in
 * V8's young generation instead of piling up in the old one (the second run's peak at 1M entries,
 * docs/PERFORMANCE.md, Scale). Against a real chDB store; the insert is only delayed.
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
import { PipelineSink } from '../../processor/sink.js';
import type { Store } from '../../processor/store.js';
import { lifecycleRecords } from '../helpers/records.js';
import { tempDir } from '../helpers/resources.js';
import { select } from '../helpers/store.js';

// a full collection on demand, as `node --expose-gc` gives it
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

describe("ctpipe run's sink and its records", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = tempDir('sink-memory');
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    await migrate(store, { db: 'ctpipe_sink_memory', flowsTtlDays: 30, eventsTtlDays: 3 });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
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
});
