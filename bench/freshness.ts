/**
 * Freshness on the fleet path: collector publisher -> Kafka (librdkafka's mock cluster) ->
 * `ctpipe process`'s consumer -> ClickHouse (chDB), at a steady offered rate. Measured from the
 * outside: each connection's DESTROY is published at a known time, and a poller (every 100 ms)
 * sees when the count of stored final rows passes it (connections end in order), so the latency
 * covers the producer's linger, Kafka, the consumer's fetch, the engine, the insert and visibility.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { ConfigSchema } from '../cli/config.js';
import { ThreadedProducer } from '../collector/kafka-thread.js';
import { KafkaPublisher } from '../collector/sinks/kafka.js';
import { silentLogger } from '../common/log.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import { startProcessor } from '../processor/consumer.js';
import { KafkaMock } from '../lab/kafka-mock.js';
import { recordChunks } from './lifecycle.js';

export interface FreshnessResult {
  rate: number;
  flows: number;
  stored: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  /** Events over the time from the first offered to the last connection's row seen stored. */
  eventsPerSecond: number;
}

/** `processSettings`: the `process` section's settings to change (e.g. { fetch_min_bytes: '4MiB' }). */
export async function runFreshness(conns = 40_000, rate = 50_000, processSettings: Record<string, unknown> = {}): Promise<FreshnessResult> {
  const kafka = await KafkaMock.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-fresh-'));
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  const topic = `fresh-${Date.now()}`;
  const cfg = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic }, process: { session_timeout: '10s', ...processSettings } });
  const producer = new ThreadedProducer(cfg.kafka, 'silent', 'bench');
  try {
    await migrate(store, { db: cfg.clickhouse.database, flowsTtlDays: 30, eventsTtlDays: 3 });
    await producer.connect();
    const pub = new KafkaPublisher({
      producer, topic, key: 'fresh', batchEvents: cfg.kafka.batch_events, lingerMs: cfg.kafka.linger, bufferBytes: 1 << 30,
      maxSendBytes: cfg.kafka.max_send_bytes, log: silentLogger, registry: new Registry(),
    });
    const records = [...recordChunks(conns, 'fresh')].flat();
    pub.write(records[0]!); // the topic exists before the consumer subscribes
    await pub.flush();
    const proc = await startProcessor(cfg, store, silentLogger, new Registry(), 10_000);
    for (let t = 0; t < 30_000 && proc.partitions().length === 0; t += 50) await sleep(50); // joined, first batch in
    const destroyedAt: number[] = []; // publish time of the i-th DESTROY
    let stored = 0;
    const seen: number[] = []; // time the i-th final row was first seen stored
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const [r] = await store.query<{ n: string }>(`SELECT count() n FROM ${cfg.clickhouse.database}.flows WHERE end_reason = 'destroy'`);
        const n = Number(r!.n);
        const now = performance.now();
        while (stored < n) seen[stored++] = now;
        await sleep(100);
      }
    })();
    const t0 = performance.now();
    let i = 1;
    while (i < records.length) {
      const due = Math.min(records.length, Math.floor(((performance.now() - t0) / 1000) * rate));
      for (; i < due; i++) {
        pub.write(records[i]!);
        if (records[i]!.type === 'destroy') destroyedAt.push(performance.now());
      }
      await sleep(5);
    }
    await pub.flush();
    for (let t = 0; t < 60_000 && stored < conns; t += 100) await sleep(100);
    polling = false;
    await poller;
    await proc.stop();
    const lat = destroyedAt.slice(0, stored).map((t, k) => seen[k]! - t).sort((a, b) => a - b);
    const pct = (x: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * x))]!;
    const eventsPerSecond = records.length / ((seen[stored - 1]! - t0) / 1000);
    return { rate, flows: conns, stored, p50ms: pct(0.5), p99ms: pct(0.99), maxMs: lat[lat.length - 1]!, eventsPerSecond };
  } finally {
    await producer.disconnect().catch(() => undefined);
    await store.close();
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
