/**
 * Publish rate: records encoded into ctpipe.v1 batches and produced to Kafka (librdkafka's mock
 * cluster) through the collector's publisher, with gzip, until Kafka has acknowledged all of them.
 * Also the encoding alone, which is the part to make fast.
 */
import { Registry } from 'prom-client';
import { ConfigSchema } from '../cli/config.js';
import { createKafkaProducer } from '../common/kafka.js';
import { ThreadedProducer } from '../collector/kafka-thread.js';
import { KafkaPublisher } from '../collector/sinks/kafka.js';
import { silentLogger } from '../common/log.js';
import { encodeBatch } from '../contract/proto/batch.js';
import { ProtoWriter } from '../contract/proto/writer.js';
import { makeRecords } from '../test/helpers/records.js';
import { KafkaMock } from '../lab/kafka-mock.js';

export interface PublishResult {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  encodeEventsPerSecond: number;
  bytesPerEvent: number;
  compression: string;
  thread: boolean;
}

export async function runPublish(total = 1_000_000, compression: 'gzip' | 'none' = 'gzip', thread = true): Promise<PublishResult> {
  // A pool of records re-stamped as they are written: a collector never holds a million records,
  // and a heap that does would measure the garbage collector instead of the publisher.
  const pool = makeRecords('bench-host', 'bench-run', 20_000);
  const record = (i: number) => {
    const r = pool[i % pool.length]!;
    r.seq = i + 1;
    return r;
  };
  // encoding alone (after a warm-up pass, so the JIT has compiled the encoder)
  const w = new ProtoWriter(1 << 20);
  for (let i = 0; i < 200; i++) encodeBatch(pool.slice((i % 20) * 1000, (i % 20) * 1000 + 1000), w);
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < total; i += 1000) bytes += encodeBatch(pool.slice(i % 20_000, (i % 20_000) + 1000), w).length;
  const encodeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

  const kafka = await KafkaMock.start();
  try {
    const cfg = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, compression, producer_thread: thread } }).kafka;
    const producer = cfg.producer_thread ? new ThreadedProducer(cfg, 'silent', 'bench') : createKafkaProducer(cfg, silentLogger, 'bench');
    await producer.connect();
    const pub = new KafkaPublisher({
      producer, topic: `bench-${Date.now()}`, key: 'bench-host', batchEvents: cfg.batch_events, lingerMs: cfg.linger,
      bufferBytes: 1 << 30, maxSendBytes: cfg.max_send_bytes, log: silentLogger, registry: new Registry(),
    });
    // warm the connection and topic
    pub.write(record(0));
    await pub.flush();
    const t1 = process.hrtime.bigint();
    // Records arrive as the reader thread delivers chunks: yield to the event loop between them so
    // encoding overlaps with compression and sends, as in the collector.
    for (let i = 1; i < total; ) {
      const end = Math.min(total, i + 4000);
      for (; i < end; i++) pub.write(record(i));
      await new Promise((r) => setImmediate(r));
    }
    await pub.flush();
    const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
    if (pub.sentEvents !== total) throw new Error(`publish guard: ${pub.sentEvents} acknowledged of ${total}`);
    await pub.close();
    await producer.disconnect();
    return {
      events: total - 1, seconds, eventsPerSecond: (total - 1) / seconds, encodeEventsPerSecond: total / encodeSeconds,
      bytesPerEvent: bytes / total, compression, thread,
    };
  } finally {
    await kafka.stop();
  }
}
