/**
 * `ctpipe process` draining a topic filled ahead (issue 19): lab-shaped flows (8 events each, as
 * bench/lifecycle.ts makes them) are published first, in ctpipe.v1.Batch records of 1,000 as a
 * collector sends them (gzip level 1), then `ctpipe process` (a child process, chDB embedded) is
 * started on the topic and timed until it has applied and stored them all. Measured over the
 * window from its first applied records to its last (its start, chDB's opening and the
 * migrations left out): events/s and CPU us per event from its /proc stat, every thread and the
 * main one apart. Several builds (roots) run alternately on the same topic, each with a consumer
 * group and a chDB directory of its own, so an old and a new build compare side by side.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { ConfigSchema } from '../cli/config.js';
import { createKafkaProducer } from '../common/kafka.js';
import { silentLogger } from '../common/log.js';
import { packageRoot } from '../common/paths.js';
import { encodeBatch } from '../contract/proto/batch.js';
import { KafkaMock } from '../lab/kafka-mock.js';
import { openStore } from '../processor/clickhouse/store.js';
import { recordChunks } from './lifecycle.js';
import { CtpipeProcess } from './scale-proc.js';

export interface DrainRun {
  root: string;
  events: number;
  /** Events applied over the measured window, over its length. */
  eventsPerSecond: number;
  /** CPU over the window per event: every thread (chDB's too), and the main thread alone. */
  cpuUsPerEvent: number;
  mainUsPerEvent: number;
  /** CPU us per event over the window by thread group (main; chDB's ThreadPool; node's helpers and libuv's pool, where gzip runs). */
  threadsUsPerEvent: Record<string, number>;
  flowsStored: number;
  /** Inserts the processor made (every table, ctpipe_processor_insert_seconds_count) and its rows by table. */
  inserts: number;
  rowsByTable: Record<string, number>;
  /**
   * Per table of the chDB directory after the stop: `blocks` the parts its inserts wrote (the
   * highest block number: one per part, so an insert into two partitions counts two; a view's
   * target counts the view's), `active` the parts left after the merges, `level` the deepest merge.
   */
  parts: Record<string, { blocks: number; active: number; level: number }>;
  loadavg: [number, number];
}

export interface DrainResult {
  events: number;
  /** Kafka bytes per event as published (gzip level 1). */
  bytesPerEvent: number;
  runs: DrainRun[];
}

/**
 * `conns` connections (8 events each) published once; then `rounds` rounds, each running every
 * root in turn. The mock cluster keeps 5 MiB a partition: 45,000 connections (360,000 events, about 3.8 MB)
 * stay within it in one partition. `perSend`: Batches per produce request (a collector sends what
 * has queued: many when it drains a backlog, one or a few when it keeps up); the mock cluster hands
 * a consumer one produce request's record batch per fetch.
 */
export async function runProcessDrain(conns = 45_000, roots: string[] = [packageRoot()], rounds = 1, say: (line: string) => void = () => {}, perSend = 32): Promise<DrainResult> {
  const kafka = await KafkaMock.start(1);
  const topic = `drain-${Date.now()}`;
  const cfg = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic } });
  const events = conns * 8;
  const runs: DrainRun[] = [];
  let bytes = 0;
  try {
    const producer = createKafkaProducer(cfg.kafka, silentLogger, 'drain-bench');
    await producer.connect();
    let pending: { key: string; value: Buffer }[] = [];
    for (const chunk of recordChunks(conns, 'drain', cfg.kafka.batch_events)) {
      const value = encodeBatch(chunk);
      pending.push({ key: 'drain', value });
      if (pending.length === perSend) {
        bytes += sent(pending, cfg.kafka.compression_level);
        await producer.send({ topic, messages: pending });
        pending = [];
      }
    }
    if (pending.length) {
      bytes += sent(pending, cfg.kafka.compression_level);
      await producer.send({ topic, messages: pending });
    }
    await producer.disconnect();
    if (bytes > 5 << 20) throw new Error(`drain: ${bytes} bytes published to one partition, more than the mock cluster keeps (5 MiB): publish fewer`);
    say(`published ${events.toLocaleString()} events (${(bytes / events).toFixed(1)} B/event in Kafka)`);
    for (let round = 0; round < rounds; round++) {
      for (const root of roots) {
        const run = await drainOnce(root, kafka.brokers, topic, `drain-${round}-${runs.length}`, events);
        runs.push(run);
        say(`${root}: ${Math.round(run.eventsPerSecond).toLocaleString()} events/s, ${run.cpuUsPerEvent.toFixed(2)} us CPU/event (main thread ${run.mainUsPerEvent.toFixed(2)}), ${run.flowsStored}/${conns} flows stored, load ${run.loadavg.join(' -> ')}`);
        say(`  ${run.inserts} inserts (${Object.entries(run.rowsByTable).map(([t, n]) => `${t} ${n}`).join(', ')} rows); parts written/left/deepest merge: ${Object.entries(run.parts).map(([t, x]) => `${t} ${x.blocks}/${x.active}/${x.level}`).join(', ')}; us/event by thread: ${JSON.stringify(run.threadsUsPerEvent)}`);
      }
    }
  } finally {
    await kafka.stop();
  }
  return { events, bytesPerEvent: bytes / events, runs };
}

/** About the bytes a send puts in Kafka: its values gzipped together (the record batch's compression). */
function sent(messages: { value: Buffer }[], level: number): number {
  return gzipSync(Buffer.concat(messages.map((m) => m.value)), { level }).length;
}

async function drainOnce(root: string, brokers: string[], topic: string, group: string, events: number): Promise<DrainRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-drain-'));
  const env = { CTPIPE_KAFKA_BROKERS: brokers.join(','), CTPIPE_KAFKA_TOPIC: topic, CTPIPE_PROCESS_GROUP_ID: group };
  const p = new CtpipeProcess('process', ['--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`], env, root);
  const load0 = loadavg()[0]!;
  try {
    // the window opens at the first answer showing records applied, and closes once all are
    // applied and their rows stored (the lag is set after a chunk's insert)
    const at = async () => ({ t: performance.now(), n: await p.metric('ctpipe_processor_records_total'), cpu: p.cpuSeconds(), threads: p.threadCpu() });
    let first: Awaited<ReturnType<typeof at>> | undefined;
    const deadline = performance.now() + 600_000;
    let last = await at();
    for (;;) {
      if (performance.now() > deadline) throw new Error(`drain: ${last.n} of ${events} events applied in 10 minutes\n${p.log.slice(-4000)}`);
      last = await at();
      if (first === undefined && last.n > 0 && last.n < events) first = last;
      if (last.n >= events && (await p.metric('ctpipe_processor_lag_records')) === 0) break;
      await sleep(250);
    }
    last = await at();
    if (first === undefined) throw new Error('drain: every event was applied before the first answer; publish more');
    const inserts = await p.metric('ctpipe_processor_insert_seconds_count');
    const rowsByTable: Record<string, number> = {};
    for (const t of ['flows', 'host_stats', 'pipeline_health', 'anomalies', 'dead_letters', 'processor_stats']) {
      const v = await p.metric('ctpipe_processor_rows_total', `table="${t}"`);
      if (v > 0) rowsByTable[t] = v;
    }
    const n = last.n - first.n;
    const s = (last.t - first.t) / 1000;
    await p.stop('SIGTERM');
    const store = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: 'ctpipe' });
    let flowsStored = 0;
    const parts: DrainRun['parts'] = {};
    try {
      const [r] = await store.query<{ n: string }>("SELECT count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
      flowsStored = Number(r!.n);
      const byPartition = await store.query<{ table: string; blocks: string; active: string; level: string }>(
        "SELECT table, max(max_block_number) blocks, countIf(active) active, max(level) level FROM system.parts WHERE database = 'ctpipe' GROUP BY table, partition");
      for (const x of byPartition) {
        const t = (parts[x.table] ??= { blocks: 0, active: 0, level: 0 });
        t.blocks = Math.max(t.blocks, Number(x.blocks)); // one sequence of block numbers for all of a table's partitions
        t.active += Number(x.active);
        t.level = Math.max(t.level, Number(x.level));
      }
    } finally {
      await store.close();
    }
    return {
      root, events, eventsPerSecond: n / s, cpuUsPerEvent: ((last.cpu - first.cpu) * 1e6) / n,
      mainUsPerEvent: (((last.threads.get('main') ?? NaN) - (first.threads.get('main') ?? NaN)) * 1e6) / n,
      threadsUsPerEvent: Object.fromEntries([...last.threads].map(([k, v]) => [k, +(((v - (first!.threads.get(k) ?? 0)) * 1e6) / n).toFixed(2)]).filter(([, v]) => (v as number) > 0)),
      flowsStored, inserts, rowsByTable, parts, loadavg: [+load0.toFixed(2), +loadavg()[0]!.toFixed(2)],
    };
  } finally {
    p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
