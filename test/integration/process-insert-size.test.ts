/**
 * `ctpipe process` inserts a lagging partition by rows (process.insert_rows, counted from each
 * partition's rows per record so far, at most process.insert_records records), as `ctpipe run`
 * does, not by the Kafka bytes of its fetches: each insert (flows, the views it feeds, the logged
 * range) has a fixed cost in ClickHouse and makes parts to merge, and chunks of 256 KiB of Kafka
 * data (about 25,000 events) had made 12 to 15 of them for 360,000 events, chunks of 100,000
 * records 12,500 rows each (docs/PERFORMANCE.md). At the partition's end what has come is
 * inserted at once, however few: freshness does not wait for a full insert (less behind than an
 * insert's worth, process.fetch_min_bytes gathers fetches as before). Real parts: librdkafka's
 * mock cluster, the collector's gzip producer, chDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../cli/config.js';
import { createKafkaProducer } from '../../common/kafka.js';
import { silentLogger } from '../../common/log.js';
import { encodeBatch } from '../../contract/proto/batch.js';
import { recordChunks } from '../../bench/lifecycle.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let kafka: KafkaMock;
let dir = '';
const topic = `sized-${Date.now()}`;
const procs = Procs.onKafka(() => kafka.brokers, topic);
const rowsTopic = `sized-rows-${Date.now()}`;
const rowsProcs = Procs.onKafka(() => kafka.brokers, rowsTopic);
let rowsDir = '';

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
});
afterAll(() => release(procs, rowsProcs, kafka, dir, rowsDir));

describe('process.insert_rows and insert_records', () => {
  it('a partition behind by an insert\'s worth or more is inserted 20 Batches (insert_records: 20,000) at a time; at its end, at once', async () => {
    // 8,125 connections, 8 events each: 65 Batches of 1,000 records; 64 published ahead, 8 a produce request
    const batches = [...recordChunks(8_125, 'sized', 1000)].map((c) => encodeBatch(c));
    expect(batches).toHaveLength(65);
    const cfg = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic, compression: 'gzip', compression_level: 1 } }).kafka;
    const producer = createKafkaProducer(cfg, silentLogger, 'sized-test');
    await producer.connect();
    try {
      for (let i = 0; i < 64; i += 8) await producer.send({ topic, messages: batches.slice(i, i + 8).map((value) => ({ key: 'sized', value })) });

      dir = tempDir('sized');
      // 20 Batches are about 210 KB in Kafka, below the fetch minimum (256 KiB): sized by bytes, chunks would not end at 19
      const [p, log] = procs.start(['process', '--clickhouse-url', `chdb:${dir}`, '--process-insert-records', '20000', '--log-level', 'debug']);
      const stored = (last: number) => new RegExp(`"last":${last},[^\\n]*"batch stored"`);
      await procs.waitLog(log, stored(63), 90_000);

      // the partition's end: one Batch more goes at once, not after 19 more
      const t0 = performance.now();
      await producer.send({ topic, messages: [{ key: 'sized', value: batches[64]! }] });
      await procs.waitLog(log, stored(64), 10_000);
      const waited = performance.now() - t0;
      expect(waited).toBeLessThan(4000); // a fetch waits at most process.flush (1 s) for the fetch minimum

      p.kill('SIGTERM');
      expect(await exited(p)).toBe(0);
      const ranges = await queryStore<{ first_offset: string; last_offset: string }>(dir, 'SELECT first_offset, last_offset FROM ctpipe.processor_batches ORDER BY first_offset');
      expect(ranges.map((r) => `${r.first_offset}-${r.last_offset}`)).toEqual(['0-19', '20-39', '40-59', '60-63', '64-64']);
      const [flows] = await queryStore<{ n: string; bytes: string }>(dir, "SELECT count() n, sum(reply_bytes) bytes FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
      expect(Number(flows!.n)).toBe(8_125);
      expect(Number(flows!.bytes)).toBe(8_125 * 9000);
    } finally {
      await producer.disconnect();
    }
  }, 150_000);

  it('inserts about insert_rows rows at a time, however many records make them: flows of 8 records, 2,500 rows an insert', async () => {
    // 8,000 connections: Batch k holds step k % 8 of 1,000 of them, so Batches 7, 15, 23... (DESTROY) make 1,000 rows each
    const batches = [...recordChunks(8_000, 'sized', 1000)].map((c) => encodeBatch(c));
    expect(batches).toHaveLength(64);
    const rowsOf = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, i) => first + i).filter((k) => k % 8 === 7).length * 1000;
    const cfg = ConfigSchema.parse({ kafka: { brokers: kafka.brokers, topic: rowsTopic, compression: 'gzip', compression_level: 1 } }).kafka;
    const producer = createKafkaProducer(cfg, silentLogger, 'sized-rows-test');
    await producer.connect();
    try {
      for (let i = 0; i < 64; i += 8) await producer.send({ topic: rowsTopic, messages: batches.slice(i, i + 8).map((value) => ({ key: 'sized', value })) });
      rowsDir = tempDir('sized-rows');
      const [p, log] = rowsProcs.start(['process', '--clickhouse-url', `chdb:${rowsDir}`, '--process-insert-rows', '2500', '--log-level', 'debug']);
      await rowsProcs.waitLog(log, /"last":63,[^\n]*"batch stored"/, 90_000);
      p.kill('SIGTERM');
      expect(await exited(p)).toBe(0);
      const ranges = (await queryStore<{ first_offset: string; last_offset: string }>(rowsDir, 'SELECT first_offset, last_offset FROM ctpipe.processor_batches ORDER BY first_offset'))
        .map((r) => [Number(r.first_offset), Number(r.last_offset)] as const);
      let next = 0;
      for (const [first, last] of ranges) {
        expect(first).toBe(next);
        next = last + 1;
        // cut where the rows reached 2,500: never more than one Batch's rows past it
        expect(rowsOf(first, last), `${first}-${last}`).toBeLessThan(2500 + 1000);
      }
      expect(next).toBe(64);
      // once a row every 8 records is known, a chunk spans many more records than 2,500: 3 DESTROY Batches, 17 or more in all
      expect(ranges.filter(([first, last]) => rowsOf(first, last) >= 2500 && last - first + 1 >= 17).length).toBeGreaterThanOrEqual(1);
      const [flows] = await queryStore<{ n: string }>(rowsDir, "SELECT count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
      expect(Number(flows!.n)).toBe(8_000);
    } finally {
      await producer.disconnect();
    }
  }, 150_000);
});
