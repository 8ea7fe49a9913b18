/**
 * Fault: poison on the topic. Between the good batches of several hosts, records that are not
 * ctpipe batches: random bytes, good batches cut short, empty values. `ctpipe process` puts each
 * in dead_letters with its coordinates, keeps going, and stores every connection of the good
 * batches exactly once.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBatch } from '../../contract/proto/batch.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { withProducer } from '../helpers/kafka.js';
import { exited, Procs } from '../helpers/procs.js';
import { mulberry32 } from '../helpers/random.js';
import { lifecycleRecords } from '../helpers/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { scalar, select } from '../helpers/store.js';
import { waitWhile } from '../helpers/wait.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { scale, writeLedger } from './ledger.js';
import { Endpoint } from './harness.js';

const topic = `poison-${Date.now()}`;
const HOSTS = 4;
const CONNS = scale(500, 5000);
const POISON_EVERY = 5; // one poison record after every fifth good batch
let kafka: KafkaMock;
let dir: string;
const procs = new Procs();

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
  dir = tempDir('poison');
});

afterAll(() => release(kafka, dir));

describe('fault: poison and malformed records on the topic', () => {
  it('dead-letters each one, keeps going, and stores every good connection once', async () => {
    const rnd = mulberry32(8);
    let good = 0;
    const poison: string[] = [];
    await withProducer(kafka.brokers, 'poison', async (producer) => {
      for (let h = 0; h < HOSTS; h++) {
        const host = `poison-${h}`;
        const recs = lifecycleRecords(host, `run-${h}`, CONNS, h + 1);
        const messages: { key: string; value: Buffer }[] = [];
        for (let b = 0; b * 60 < recs.length; b++) {
          const batch = encodeBatch(recs.slice(b * 60, (b + 1) * 60));
          messages.push({ key: host, value: batch });
          good++;
          if (b % POISON_EVERY === POISON_EVERY - 1) {
            const kind = poison.length % 3;
            const value = kind === 0 ? Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 2000) }, () => Math.floor(rnd() * 256)))
              : kind === 1 ? batch.subarray(0, Math.floor(batch.length / 2)) : Buffer.alloc(0);
            messages.push({ key: host, value });
            poison.push(['random bytes', 'a batch cut short', 'an empty value'][kind]!);
          }
        }
        await producer.send({ topic, messages });
      }
    });

    const chdb = path.join(dir, 'chdb');
    const ops = new Endpoint();
    const [p, i] = procs.start(['process', '--kafka-brokers', kafka.brokers.join(','), '--kafka-topic', topic, '--clickhouse-url', `chdb:${chdb}`,
      '--metrics-listen', ops.listen, '--process-checkpoint', '1s']);
    const letters = async () => {
      const m = await ops.metrics().catch(() => '');
      return Number(/^ctpipe_processor_dead_letters_total\{reason="RECORD_DECODE"\} (\S+)$/m.exec(m)?.[1] ?? 0);
    };
    await procs.waitLog(i, 'joined the consumer group');
    const t0 = Date.now();
    // the processor holds the embedded store: follow its progress in its metrics (its log sums dead
    // letters up past the first 20), then stop it and count
    let seen = 0;
    await waitWhile(async () => (seen = await letters()) < poison.length, { within: 120_000, every: 250, alive: p, why: () => `${seen} dead letters; ${procs.logs[i]!.slice(-3000)}` });
    await sleep(3000);
    expect(p.exitCode).toBe(null);
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);
    const seconds = (Date.now() - t0) / 1000;

    const store = await openStore({ url: `chdb:${chdb}`, database: 'ctpipe' });
    try {
      const one = (sql: string) => scalar(store, sql);
      const dead = await one('SELECT count() FROM ctpipe.dead_letters');
      const stored = await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
      const rows = await one("SELECT count() FROM ctpipe.flows WHERE end_reason = 'destroy'");
      const rightCounters = await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy' AND reply_bytes = 3000 AND orig_packets = 4");
      const rollup = await one('SELECT sum(flows) FROM ctpipe.flows_1m');
      expect(dead).toBe(poison.length);
      expect(stored).toBe(HOSTS * CONNS);
      expect(rows).toBe(HOSTS * CONNS); // no final row written twice
      expect(rightCounters).toBe(HOSTS * CONNS);
      expect(rollup).toBe(HOSTS * CONNS);
      const reasons = await select<{ reason: string }>(store, 'SELECT DISTINCT reason FROM ctpipe.dead_letters');
      expect(reasons.every((r) => r.reason.startsWith('RECORD_DECODE: not a ctpipe.v1.Batch'))).toBe(true);
      writeLedger({
        fault: 'poison records on the topic', injected: `${poison.length} poison records (random bytes, batches cut short, empty values) among ${good} good batches of ${HOSTS} hosts`,
        sent: HOSTS * CONNS, received: HOSTS * CONNS, stored, duplicated: rows - stored, lost: HOSTS * CONNS - stored, recovery_s: null,
        notes: `${dead} dead letters; processed in ${seconds.toFixed(0)} s without a restart`,
      });
    } finally {
      await store.close();
    }
  });
});
