// node --expose-gc scripts/bench-storm-100k.js ROOT: one JSON line (ROOT: a checkout with its dist/ built).
// runDestroyStorm's storm with inserts of 100,000 rows whatever the rate (flushMs 60 s: the sink's
// maxBatch cuts), as a quiet machine at 120,000+ rows/s makes them; CPU per row over the DESTROY phase.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToIo } from 'node:timers/promises';
const root = path.resolve(process.argv[2]);
const mod = (p) => import(path.join(root, 'dist', p));
const { Registry } = await import(path.join(root, 'node_modules/prom-client/index.js'));
const { silentLogger } = await mod('common/log.js');
const { migrate } = await mod('processor/clickhouse/migrate.js');
const { openStore } = await mod('processor/clickhouse/store.js');
const { Pipeline } = await mod('processor/pipeline.js');
const { PipelineSink } = await mod('processor/sink.js');
const conns = 200_000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ctpipe-stormbig-'));
const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
await migrate(store, { db: 'ctpipe', flowsTtlDays: 3650, eventsTtlDays: 3 });
const p = new Pipeline({ store, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000 } });
const sink = new PipelineSink(p, { flushMs: 60_000 });
const epoch = 1_795_000_000;
const record = (c, type, seq) => {
  const orig = { src: `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`, dst: '203.0.113.9', proto: 17, sport: 1024 + (c % 60000), dport: 53 };
  return { type, host: 'storm', run: 'storm', seq, sec: epoch + (type === 'new' ? 0 : 1), nsec: c, id: c + 1, family: 'ipv4', proto: 17, orig,
    reply: { src: orig.dst, dst: orig.src, proto: 17, sport: 53, dport: orig.sport }, status: type === 'new' ? 8 : 14, timeout: 30,
    ...(type === 'destroy' ? { counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 1, bytes: 120 } } } : {}) };
};
const offer = async (type, seq0) => {
  for (let c = 0; c < conns; c += 16_384) {
    for (let k = c; k < Math.min(conns, c + 16_384); k++) sink.write(record(k, type, seq0 + k));
    await yieldToIo();
  }
  await sink.flush();
};
await offer('new', 1);
const load0 = os.loadavg()[0];
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await offer('destroy', conns + 1);
const s = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const [r] = await store.query("SELECT count() n FROM ctpipe.flows WHERE host = 'storm' AND end_reason = 'destroy'");
const parts = await store.query("SELECT part_type, count() n, sum(rows) rows FROM system.parts WHERE database = 'ctpipe' AND table = 'flows' GROUP BY part_type");
console.log(JSON.stringify({ root, at: new Date().toISOString(), rowsStored: Number(r.n), rowsPerSecond: conns / s, cpuUsPerRow: (cpu.user + cpu.system) / conns, loadavg: [load0, os.loadavg()[0]], parts }));
await store.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
