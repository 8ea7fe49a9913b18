/**
 * End to end from the collector's output to rows in ClickHouse (chDB), as `ctpipe run` does it:
 * records -> lifecycle engine -> deduplicated inserts. Measures the sustained rate with nothing
 * lost (every connection's final row is stored), the bytes per flow row on disk, and freshness:
 * the time from a record's arrival to the moment its batch's rows are queryable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../common/log.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import { Pipeline } from '../processor/pipeline.js';
import { records } from './lifecycle.js';

export interface E2eResult {
  events: number;
  eventsPerSecond: number;
  flows: number;
  rowsStored: number;
  bytesPerFlowRow: number;
  freshnessP50ms: number;
  freshnessP99ms: number;
}

export async function runE2e(conns = 100_000, batch = 50_000): Promise<E2eResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-e2e-'));
  const store = await openStore({ url: `chdb:${dir}` });
  try {
    await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 });
    const recs = records(conns);
    const p = new Pipeline({ store, db: 'ctpipe', rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000 } });
    const latencies: number[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < recs.length; i += batch) {
      const chunk = recs.slice(i, i + batch);
      const arrived = process.hrtime.bigint();
      p.process(chunk);
      await p.write(`bench:${i}-${i + chunk.length - 1}`);
      // the oldest record of the batch waited from its arrival; with a 1 s flush it would wait up to 1 s more
      latencies.push(Number(process.hrtime.bigint() - arrived) / 1e6);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await store.command({ query: 'OPTIMIZE TABLE ctpipe.flows FINAL' });
    const q = async <T>(sql: string) => (await (await store.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
    const [rows] = await q<{ n: string }>("SELECT count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
    const [disk] = await q<{ b: string; r: string }>("SELECT sum(bytes_on_disk) b, sum(rows) r FROM system.parts WHERE database = 'ctpipe' AND table = 'flows' AND active");
    latencies.sort((a, b) => a - b);
    const pct = (x: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * x))]!;
    return {
      events: recs.length, eventsPerSecond: recs.length / seconds, flows: conns, rowsStored: Number(rows!.n),
      bytesPerFlowRow: Number(disk!.b) / Number(disk!.r), freshnessP50ms: pct(0.5), freshnessP99ms: pct(0.99),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
