/**
 * The publisher against a real Kafka wire protocol (librdkafka's mock cluster): records keyed by
 * host land in one partition per host, in order; an outage mid-stream and a collector restart with
 * Kafka unreachable lose nothing (memory buffer, then the disk spool).
 */
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaProducer } from '../../common/kafka.js';
import { KafkaPublisher } from '../../collector/sinks/kafka.js';
import { Spool } from '../../collector/sinks/spool.js';
import { ConfigSchema } from '../../cli/config.js';
import { silentLogger } from '../../common/log.js';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { makeRecords } from '../helpers/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { consumeAll, KafkaMock, type Consumed } from '../../lab/kafka-mock.js';

let kafka: KafkaMock;
const dirs: string[] = [];
beforeAll(async () => {
  kafka = await KafkaMock.start();
});
afterAll(() => release(kafka, ...dirs));

function publisher(brokers: string[], topic: string, host: string, opts: { spoolDir?: string; bufferBytes?: number } = {}) {
  const cfg = ConfigSchema.parse({ kafka: { brokers, request_timeout_ms: 1500, connection_timeout_ms: 1000 } }).kafka;
  const producer = createKafkaProducer(cfg, silentLogger, `test-${host}`);
  const spool = opts.spoolDir ? new Spool(opts.spoolDir, 256 << 20) : undefined;
  const pub = new KafkaPublisher({
    producer, topic, key: host, batchEvents: 100, lingerMs: 10, bufferBytes: opts.bufferBytes ?? 64 << 20,
    maxSendBytes: 1 << 20, spool, log: silentLogger, registry: new Registry(),
    retryMinMs: 50, retryMaxMs: 500,
  });
  return { pub, producer, spool };
}

function records(msgs: Consumed[]): CtpipeRecord[] {
  return msgs.flatMap((m) => decodeBatch(m.value).records);
}

const tmp = () => {
  const d = tempDir('spool');
  dirs.push(d);
  return d;
};

describe('publishing to Kafka', () => {
  it('keys records by host: one partition per host, in sequence order', async () => {
    const topic = `t-order-${Date.now()}`;
    const a = publisher(kafka.brokers, topic, 'host-a');
    const b = publisher(kafka.brokers, topic, 'host-b');
    for (const r of makeRecords('host-a', 'run-a', 5000)) a.pub.write(r);
    for (const r of makeRecords('host-b', 'run-b', 3000)) b.pub.write(r);
    await Promise.all([a.pub.close(), b.pub.close()]);
    await Promise.all([a.producer.disconnect(), b.producer.disconnect()]);
    const msgs = await consumeAll(kafka.brokers, topic, (m) => records(m).length >= 8000);
    for (const host of ['host-a', 'host-b']) {
      const mine = msgs.filter((m) => m.key === host);
      expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
      mine.sort((x, y) => Number(x.offset) - Number(y.offset));
      const seqs = records(mine).map((r) => r.seq);
      expect(seqs).toEqual(Array.from({ length: host === 'host-a' ? 5000 : 3000 }, (_, i) => i + 1));
      expect(records(mine).every((r) => r.host === host)).toBe(true);
    }
  });

  it('rides out a broker outage mid-stream: memory buffer, then spool, nothing lost, order kept', async () => {
    const topic = `t-outage-${Date.now()}`;
    const spoolDir = tmp();
    const { pub, producer, spool } = publisher(kafka.brokers, topic, 'host-c', { spoolDir, bufferBytes: 32 << 10 });
    const all = makeRecords('host-c', 'run-c', 20_000);
    for (const r of all.slice(0, 2000)) pub.write(r);
    await pub.flush();
    kafka.pause(); // the broker stops answering
    for (let i = 2000; i < 20_000; i += 1000) {
      for (const r of all.slice(i, i + 1000)) pub.write(r);
      await sleep(300);
    }
    const spooledWhileDown = spool!.bytes;
    expect(spooledWhileDown).toBeGreaterThan(0);
    expect(pub.up).toBe(false);
    kafka.resume();
    await pub.close(60_000);
    await producer.disconnect();
    expect(pub.droppedEvents).toBe(0);
    expect(readdirSync(spoolDir).filter((f) => f.endsWith('.seg'))).toEqual([]);

    const msgs = await consumeAll(kafka.brokers, topic, (m) => new Set(records(m).map((r) => r.seq)).size >= 20_000, 60_000);
    msgs.sort((x, y) => Number(x.offset) - Number(y.offset));
    const seqs = records(msgs).map((r) => r.seq);
    const distinct = new Set(seqs);
    const duplicates = seqs.length - distinct.size;
    console.log(`outage: sent 20000, received ${seqs.length}, distinct ${distinct.size}, duplicates ${duplicates}, spooled ${spooledWhileDown} bytes`);
    expect(distinct.size).toBe(20_000);
    // At-least-once across the outage: a request the frozen broker took may be retried. The first
    // occurrence of each seq is still in order.
    const firsts = seqs.filter((s, i) => seqs.indexOf(s) === i);
    expect(firsts).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
  });

  it('keeps records in the spool across a restart while Kafka is unreachable, and sends them first', async () => {
    const topic = `t-restart-${Date.now()}`;
    const spoolDir = tmp();
    // First run: a broker address nobody listens on.
    const down = publisher(['127.0.0.1:1'], topic, 'host-d', { spoolDir, bufferBytes: 16 << 10 });
    for (const r of makeRecords('host-d', 'run-1', 3000)) down.pub.write(r);
    await down.pub.close(1500);
    expect(down.pub.droppedEvents).toBe(0);
    expect(new Spool(spoolDir, 1 << 30).empty).toBe(false);

    // Second run of the collector, Kafka reachable: the spool drains first, then the new run's records.
    const up = publisher(kafka.brokers, topic, 'host-d', { spoolDir });
    for (const r of makeRecords('host-d', 'run-2', 1000)) up.pub.write(r);
    await up.pub.close(30_000);
    await up.producer.disconnect();
    const msgs = await consumeAll(kafka.brokers, topic, (m) => records(m).length >= 4000);
    msgs.sort((x, y) => Number(x.offset) - Number(y.offset));
    const recs = records(msgs);
    expect(recs.filter((r) => r.run === 'run-1').map((r) => r.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(recs.filter((r) => r.run === 'run-2').map((r) => r.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const lastOld = recs.map((r) => r.run).lastIndexOf('run-1');
    const firstNew = recs.map((r) => r.run).indexOf('run-2');
    expect(lastOld).toBeLessThan(firstNew);
  });
});
