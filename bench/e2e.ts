/**
 * End to end from the collector's output to rows in ClickHouse (chDB), through what `ctpipe run`
 * uses (PipelineSink: lifecycle engine, then deduplicated inserts, the two overlapped).
 *
 * - Sustained rate: every record offered as fast as the pipeline takes it, with nothing lost
 *   (every connection's final row is stored).
 * - Freshness: records offered at a fixed rate below capacity with the default 1 s flush; for each
 *   record, the time from its arrival at the sink to the acknowledgement of the insert holding it.
 * - Bytes per flow row on disk after the merge.
 * - A DESTROY storm (runDestroyStorm): every connection opened first, then all destroyed at once,
 *   one event per row, as `conntrack -F` does to a full table; rows/s from the first DESTROY offered
 *   to the last row acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { silentLogger } from '../common/log.js';
import type { CtRecord } from '../contract/records.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import type { Store } from '../processor/store.js';
import { Pipeline } from '../processor/pipeline.js';
import { detectOptions } from '../processor/options.js';
import { loadConfig } from '../cli/config.js';
import { PipelineSink } from '../processor/sink.js';
import { recordChunks } from './lifecycle.js';
import { threadUse, usPerBy } from './scale-proc.js';

export interface E2eResult {
  events: number;
  eventsPerSecond: number;
  flows: number;
  rowsStored: number;
  bytesPerFlowRow: number;
  freshnessRate: number;
  freshnessP50ms: number;
  freshnessP99ms: number;
}

/** `detect`: with the detectors of the default configuration, as `ctpipe run` has them. */
function pipeline(store: Store, detect = false): Pipeline {
  return new Pipeline({
    store, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000 },
    ...(detect ? { detect: detectOptions(loadConfig({}).detect, 30_000) } : {}),
  });
}

/** Offers every record as fast as the sink takes them; returns events per second. */
async function sustained(store: Store, conns: number): Promise<{ events: number; rate: number }> {
  const sink = new PipelineSink(pipeline(store), { flushMs: 1000 });
  let events = 0;
  const t0 = process.hrtime.bigint();
  for (const chunk of recordChunks(conns, 'bench', 16_384)) {
    for (const r of chunk) sink.write(r);
    events += chunk.length;
    await yieldToIo(); // a collector's reads arrive in chunks
  }
  await sink.flush();
  return { events, rate: events / (Number(process.hrtime.bigint() - t0) / 1e9) };
}

async function freshness(store: Store, recs: CtRecord[], rate: number): Promise<number[]> {
  const p = pipeline(store);
  const arrived = new Float64Array(recs.length + 1); // by seq
  const latencies: number[] = [];
  const writeRows = p.writeRows.bind(p);
  p.writeRows = async (rows, token, stop) => {
    const ok = await writeRows(rows, token, stop);
    const now = performance.now();
    const [from, to] = token.slice(token.lastIndexOf(':') + 1).split('-').map(Number) as [number, number];
    for (let s = from; s <= to; s++) latencies.push(now - arrived[s]!);
    return ok;
  };
  const sink = new PipelineSink(p, { flushMs: 1000 });
  const t0 = performance.now();
  let i = 0;
  while (i < recs.length) {
    const due = Math.min(recs.length, Math.floor(((performance.now() - t0) / 1000) * rate));
    for (; i < due; i++) {
      arrived[recs[i]!.seq] = performance.now();
      sink.write(recs[i]!);
    }
    await sleep(5);
  }
  await sink.flush();
  return latencies.sort((a, b) => a - b);
}

export async function runE2e(conns = 200_000, freshRate = 100_000): Promise<E2eResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-e2e-'));
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 });
    const { events, rate } = await sustained(store, conns);
    const lat = await freshness(store, [...recordChunks(conns / 4, 'fresh')].flat(), freshRate);
    await store.command('OPTIMIZE TABLE ctpipe.flows FINAL');
    const q = async <T>(sql: string) => (await store.query(sql)) as T[];
    const [rows] = await q<{ n: string }>("SELECT count() n FROM ctpipe.flows FINAL WHERE host = 'bench' AND end_reason = 'destroy'");
    const [disk] = await q<{ b: string; r: string }>("SELECT sum(bytes_on_disk) b, sum(rows) r FROM system.parts WHERE database = 'ctpipe' AND table = 'flows' AND active");
    const pct = (x: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * x))]!;
    return {
      events, eventsPerSecond: rate, flows: conns, rowsStored: Number(rows!.n),
      bytesPerFlowRow: Number(disk!.b) / Number(disk!.r), freshnessRate: freshRate, freshnessP50ms: pct(0.5), freshnessP99ms: pct(0.99),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface StormResult {
  flows: number;
  rowsStored: number;
  rowsPerSecond: number;
  /** Process CPU (user + system, every thread: JS and chDB's) per row over the DESTROY phase. */
  cpuUsPerRow: number;
  /** The kernel's share of it, and the page faults (fresh memory touched) per row. */
  systemUsPerRow: number;
  faultsPerRow: number;
  /** CPU per row by thread group (scale-proc.ts threadUse). */
  byThread: Record<string, number>;
  /** 1-minute load average before and after the timed phase (the machine is shared). */
  loadavg: [number, number];
  /** The flows table's parts after the storm, by format (Compact, Wide): what its inserts wrote. */
  parts: { part_type: string; n: string; rows: string }[];
}

/**
 * `conns` connections opened (not timed), then one DESTROY each, offered as fast as the sink takes
 * them; `detect`: the default detectors on, as in `ctpipe run`; `flushMs`: the sink's flush (60 s
 * makes every insert the sink's maxRows, as a storm at a quiet machine's rates does).
 */
export async function runDestroyStorm(conns = 200_000, detect = false, flushMs = 1000): Promise<StormResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-storm-'));
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    await migrate(store, { db: 'ctpipe', flowsTtlDays: 3650, eventsTtlDays: 3 });
    const sink = new PipelineSink(pipeline(store, detect), { flushMs });
    const epoch = 1_795_000_000;
    const record = (c: number, type: 'new' | 'destroy', seq: number): CtRecord => {
      const orig = { src: `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`, dst: '203.0.113.9', proto: 17, sport: 1024 + (c % 60000), dport: 53 };
      return {
        type, host: 'storm', run: 'storm', seq, sec: epoch + (type === 'new' ? 0 : 1), nsec: c, id: c + 1, family: 'ipv4', proto: 17, orig,
        reply: { src: orig.dst, dst: orig.src, proto: 17, sport: 53, dport: orig.sport }, status: type === 'new' ? 8 : 14, timeout: 30,
        ...(type === 'destroy' ? { counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 1, bytes: 120 } } } : {}),
      };
    };
    const offer = async (type: 'new' | 'destroy', seq0: number) => {
      for (let c = 0; c < conns; c += 16_384) {
        for (let k = c; k < Math.min(conns, c + 16_384); k++) sink.write(record(k, type, seq0 + k));
        await yieldToIo();
      }
      await sink.flush();
    };
    await offer('new', 1);
    const load0 = os.loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const faults0 = process.resourceUsage().minorPageFault;
    const threads0 = threadUse(process.pid);
    const t0 = process.hrtime.bigint();
    await offer('destroy', conns + 1);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const faults = process.resourceUsage().minorPageFault - faults0;
    const byThread = usPerBy(threads0, threadUse(process.pid), conns);
    const [r] = await store.query<{ n: string }>("SELECT count() n FROM ctpipe.flows WHERE host = 'storm' AND end_reason = 'destroy'");
    const parts = await store.query<{ part_type: string; n: string; rows: string }>(
      "SELECT part_type, count() n, sum(rows) rows FROM system.parts WHERE database = 'ctpipe' AND table = 'flows' GROUP BY part_type",
    );
    return {
      flows: conns, rowsStored: Number(r!.n), rowsPerSecond: conns / s,
      cpuUsPerRow: (cpu.user + cpu.system) / conns, systemUsPerRow: cpu.system / conns, faultsPerRow: faults / conns, byThread, loadavg: [load0, os.loadavg()[0]!], parts,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
