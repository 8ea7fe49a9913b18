/**
 * The Kafka publisher with a fake producer: what it must drop (memory full, no spool) it reports in
 * its own stream, stamped by the run's Stamper behind the records it holds, and the loss records
 * among the dropped batches are reported again; a spool left by the previous version is sent
 * first, and batches go through the spool with their counts.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { KafkaMessage, ProducerLike } from '../../common/kafka.js';
import { silentLogger } from '../../common/log.js';
import { KafkaPublisher } from '../../collector/sinks/kafka.js';
import { Spool } from '../../collector/sinks/spool.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { Stamper } from '../../contract/stamper.js';
import { flowRecord, makeRecords } from '../helpers/records.js';

/** A producer that fails while `down`, and keeps what it was sent. */
class FakeProducer implements ProducerLike {
  down = false;
  sent: KafkaMessage[] = [];
  async send(req: { topic: string; messages: KafkaMessage[] }): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    if (this.down) throw new Error('broker away (fake)');
    this.sent.push(...req.messages);
  }
  records(): CtpipeRecord[] {
    return this.sent.flatMap((m) => decodeBatch(m.value).records);
  }
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('Kafka publisher', () => {
  it('reports a dropped batch as a loss in its own stream, then the loss records the batch held', async () => {
    const batchBytes = encodeBatch(makeRecords('h', 'r', 10)).length;
    const stamped = new Stamper('h', 'r', () => ({ sec: 1_795_000_100, nsec: 0 }));
    const producer = new FakeProducer();
    const pub = new KafkaPublisher({
      producer, topic: 't', key: 'h', batchEvents: 10, lingerMs: 5, bufferBytes: Math.floor(batchBytes * 1.5), maxSendBytes: 1 << 20,
      log: silentLogger, registry: new Registry(), stamper: stamped, retryMinMs: 2, retryMaxMs: 5,
    });
    producer.down = true;
    for (let i = 0; i < 10; i++) pub.write(stamped.stamp(flowRecord('h', 'r', 0, i))); // seq 1-10: sealed, in flight, failing
    await tick();
    for (let i = 0; i < 9; i++) pub.write(stamped.stamp(flowRecord('h', 'r', 0, i))); // seq 11-19
    pub.write(stamped.loss({ reason: 'enobufs', count: 3, source: 'events' }, true)); // seq 20: seals; memory full: dropped
    expect(pub.droppedEvents).toBe(10);
    producer.down = false;
    await pub.close(5000);
    const got = producer.records();
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 22]);
    expect(got.slice(10)).toEqual([
      { type: 'loss', host: 'h', run: 'r', seq: 21, sec: 1_795_000_100, nsec: 0, reason: 'buffer_full', count: 10, source: 'publish', first_seq: 11, last_seq: 20, resync: false },
      { type: 'loss', host: 'h', run: 'r', seq: 22, sec: 1_795_000_100, nsec: 0, reason: 'enobufs', count: 3, source: 'events', resync: false },
    ].map((l) => expect.objectContaining(l)));
    expect(pub.sentEvents).toBe(12);
    expect(stamped.lastSeq).toBe(22);
  });

  it('sends a spool left by the previous version first, then what it spooled itself, counting every event', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'ctpipe-publisher-unit-'));
    const old = encodeBatch(makeRecords('h', 'old-run', 7));
    const header = Buffer.alloc(12); // the previous version's frame: "CTP1", length, crc32
    header.writeUInt32LE(0x43545031, 0);
    header.writeUInt32LE(old.length, 4);
    header.writeUInt32LE(crc32(old), 8);
    writeFileSync(path.join(d, 'spool-0000000000000001.seg'), Buffer.concat([header, old]));

    const stamped = new Stamper('h', 'new-run');
    const producer = new FakeProducer();
    producer.down = true;
    const pub = new KafkaPublisher({
      producer, topic: 't', key: 'h', batchEvents: 10, lingerMs: 5, bufferBytes: 1, maxSendBytes: 1 << 20, spool: new Spool(d, 1 << 20),
      log: silentLogger, registry: new Registry(), stamper: stamped, retryMinMs: 2, retryMaxMs: 5,
    });
    for (let i = 0; i < 25; i++) pub.write(stamped.stamp(flowRecord('h', '', 0, i))); // memory holds nothing: to the spool
    await tick(20);
    expect(readdirSync(d).length).toBe(2);
    producer.down = false;
    await pub.close(5000);
    const got = producer.records();
    expect(got.map((r) => `${r.run}:${r.seq}`)).toEqual([
      ...Array.from({ length: 7 }, (_, i) => `old-run:${i + 1}`), ...Array.from({ length: 25 }, (_, i) => `new-run:${i + 1}`)]);
    expect(pub.sentEvents).toBe(32);
    expect(pub.droppedEvents).toBe(0);
    expect(readdirSync(d)).toEqual([]);
  });
});
