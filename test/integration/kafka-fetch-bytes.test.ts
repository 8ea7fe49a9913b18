/**
 * The processor's consumer sizes each fetched record in Kafka's bytes (its share of its compressed
 * record batch), as the brokers count process.fetch_min_bytes, not in its decompressed bytes (about
 * five times more for ctpipe batches). Decompressed in one output chunk of about the whole batch,
 * each batch is still a buffer of its own (common/kafka.ts). Inserts are sized by records since
 * (process.insert_records, process-insert-size.test.ts).
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../cli/config.js';
import { createGroupConsumer, createKafkaProducer, type FetchedMessage } from '../../common/kafka.js';
import { silentLogger } from '../../common/log.js';
import { encodeBatch } from '../../contract/proto/batch.js';
import { recordChunks } from '../../bench/lifecycle.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { release } from '../helpers/resources.js';

let kafka: KafkaMock;
beforeAll(async () => {
  kafka = await KafkaMock.start(1);
});
afterAll(() => release(kafka));

describe('the consumer sizes fetched records in Kafka bytes', () => {
  it('gzip: a record counts its share of the compressed batch; uncompressed: its own length', async () => {
    const topic = `bytes-${Date.now()}`;
    const values = [...recordChunks(2_000, 'bytes', 1000)].map((c) => encodeBatch(c)); // 16 batches of 1,000 records
    const gz = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic, compression: 'gzip', compression_level: 1 } }).kafka;
    const plain = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic, compression: 'none' } }).kafka;
    for (const [cfg, vs] of [[gz, values.slice(0, 8)], [plain, values.slice(8, 10)], [gz, values.slice(10)]] as const) {
      const producer = createKafkaProducer(cfg, silentLogger, 'bytes-test');
      await producer.connect();
      await producer.send({ topic, messages: vs.map((value) => ({ key: 'bytes', value })) });
      await producer.disconnect();
    }
    const consumer = await createGroupConsumer(gz, silentLogger, { groupId: `g-${topic}`, topic, clientId: 'bytes-test', sessionTimeoutMs: 10_000, minBytes: 1, maxWaitMs: 100 });
    const got: FetchedMessage[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await consumer.run(async (b, c) => {
      for (const m of b.messages) {
        got.push(m);
        c.resolve(m.offset);
      }
      if (got.length >= values.length) done();
    });
    await Promise.race([all, new Promise((_, rej) => setTimeout(() => rej(new Error(`${got.length} of ${values.length} fetched`)), 60_000))]);
    await consumer.disconnect();

    expect(got.map((m) => m.value.equals(values[m.offset]!))).toEqual(values.map(() => true));
    const gzipped = (ms: FetchedMessage[]) => gzipSync(Buffer.concat(ms.map((m) => m.value)), { level: 1 }).length;
    for (const part of [got.slice(0, 8), got.slice(10)]) {
      for (const m of part) expect(m.bytes).toBeLessThan(m.value.length / 3);
      // the record batch's framing is in its compressed size too: a few bytes a record
      const sum = part.reduce((n, m) => n + m.bytes, 0);
      expect(sum).toBeGreaterThan(gzipped(part) * 0.8);
      expect(sum).toBeLessThan(gzipped(part) * 1.2);
    }
    for (const m of got.slice(8, 10)) expect(m.bytes).toBe(m.value.length);
  }, 90_000);
});
