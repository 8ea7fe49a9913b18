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
    const n = last.n - first.n;
    const s = (last.t - first.t) / 1000;
    await p.stop('SIGTERM');
    const store = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: 'ctpipe' });
    let flowsStored = 0;
    try {
      const [r] = await store.query<{ n: string }>("SELECT count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
      flowsStored = Number(r!.n);
    } finally {
      await store.close();
    }
    return {
      root, events, eventsPerSecond: n / s, cpuUsPerEvent: ((last.cpu - first.cpu) * 1e6) / n,
      mainUsPerEvent: (((last.threads.get('main') ?? NaN) - (first.threads.get('main') ?? NaN)) * 1e6) / n,
      threadsUsPerEvent: Object.fromEntries([...last.threads].map(([k, v]) => [k, +(((v - (first!.threads.get(k) ?? 0)) * 1e6) / n).toFixed(2)]).filter(([, v]) => (v as number) > 0)),
      flowsStored, loadavg: [+load0.toFixed(2), +loadavg()[0]!.toFixed(2)],
    };
  } finally {
    p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
