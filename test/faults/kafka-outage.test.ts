/**
 * Fault: the Kafka broker gone for a while (60 s in the full run), the collector running on the lab
 * firewall with traffic throughout. Records wait in memory, then in the disk spool, and all reach
 * Kafka when it is back: every sequence number of the run, in order on the partition, none lost.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { collectArgs, spooled, topicRecords } from './harness.js';
import { scale, writeLedger } from './ledger.js';

const topic = `kafka-outage-${Date.now()}`;
const OUTAGE_S = scale(15, 60);
let lab: Lab;
let kafka: KafkaMock;
let dir: string;
const procs = new Procs();

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
  lab = await Lab.create();
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  dir = tempDir('kafka-outage');
});

afterAll(() => release(lab, kafka, dir));

describe('fault: Kafka gone and back while the collector runs', () => {
  it('buffers, spools and then delivers every record of the run, in order', async () => {
    const spool = path.join(dir, 'spool');
    const [p, i] = procs.start(collectArgs({ lab, brokers: kafka.brokers, topic, host: 'outage', spool, buffer: '64KiB' }));
    await procs.waitLog(i, '"msg":"collecting"');
    const stop = { now: false };
    let exchanges = 0;
    const traffic = (async () => {
      while (!stop.now) {
        await lab.tcpConnect(ADDR.server4, 8080, 500);
        await lab.udpExchange(ADDR.server4, 5353, 1, 50);
        exchanges++;
      }
    })();
    let outageAt: number;
    let backAt: number;
    let recoveryS: number;
    try {
      await sleep(3000);
      kafka.pause();
      outageAt = Date.now();
      await sleep(OUTAGE_S * 1000);
      // at least OUTAGE_S, and on until the memory buffer has overflowed into the spool (a loaded
      // machine makes traffic slowly: each exchange is a process in the client namespace)
      await waitWhile(() => !spooled(spool), { within: 120_000, every: 250, why: () => 'no record went to the spool' });
      kafka.resume();
      backAt = Date.now();
      await waitWhile(() => spooled(spool), { within: 120_000, every: 250, why: () => 'the spool did not drain' });
      recoveryS = (Date.now() - backAt) / 1000;
      await sleep(2000);
    } finally {
      kafka.resume();
      stop.now = true;
      await traffic;
    }
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);
    const stopped = procs.logLine<{ seq: number; dropped: number; run?: string }>(i, '"msg":"stopped"');
    expect(stopped.dropped).toBe(0);

    const recs = await topicRecords(kafka.brokers, topic, (rs) => rs.some((r) => r.seq === stopped.seq));
    const seqs = recs.map((r) => r.seq);
    const unique = new Set(seqs);
    const missing: number[] = [];
    for (let s = 1; s <= stopped.seq; s++) if (!unique.has(s)) missing.push(s);
    expect(missing).toEqual([]);
    expect(recs.filter((r) => r.type === 'loss')).toEqual([]);
    // order: after dropping the at-least-once repeats, sequence numbers only grow along the partition
    const seen = new Set<number>();
    const outOfOrder: number[] = [];
    let last = 0;
    for (const s of seqs) {
      if (seen.has(s)) continue;
      if (s < last) outOfOrder.push(s);
      seen.add(s);
      last = Math.max(last, s);
    }
    expect(outOfOrder).toEqual([]);
    expect(recs.filter((r) => r.type === 'new').length).toBeGreaterThanOrEqual(exchanges * 2);
    writeLedger({
      fault: 'Kafka broker gone', injected: `broker frozen ${((backAt - outageAt) / 1000).toFixed(0)} s with traffic throughout (${exchanges} TCP+UDP exchanges), 64 KiB memory buffer then spool`,
      sent: stopped.seq, received: unique.size, stored: null, duplicated: seqs.length - unique.size, lost: missing.length, recovery_s: recoveryS,
    });
  });
});
