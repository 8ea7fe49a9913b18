/**
 * Fault: the spool's disk fills while Kafka is away. A real `ctpipe collect` on the lab firewall,
 * Kafka frozen, a burst of new connections, memory buffer and spool (a 96 KiB tmpfs) both too
 * small: the collector keeps running, drops what fits nowhere, reports exactly those records in
 * loss records, and once Kafka is back delivers everything else. Every sequence number is either
 * delivered or inside a reported loss range; none is missing silently.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord, LossRecord } from '../../contract/records.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';
import { consumeAll, KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { collectArgs, spooled } from './harness.js';
import { scale, writeLedger } from './ledger.js';

const topic = `spool-full-${Date.now()}`;
let lab: Lab;
let kafka: KafkaMock;
let spool: string;
const procs = new Procs();

beforeAll(async () => {
  expect(process.getuid?.(), 'the fault suite needs root').toBe(0);
  kafka = await KafkaMock.start(1);
  lab = await Lab.create();
  await lab.tcpServer(8080);
  spool = tempDir('spool-full');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'ctpipe-spool-full', spool], { encoding: 'utf8' });
  expect(m.status, `mount a 96 KiB tmpfs: ${m.stderr}`).toBe(0);
});

afterAll(async () => {
  await release(lab, kafka);
  if (spool) {
    spawnSync('umount', [spool]);
    rmSync(spool, { recursive: true, force: true });
  }
});

describe('fault: the spool disk is full while Kafka is away', () => {
  it('keeps running, drops only what fits nowhere, reports it, and delivers the rest', async () => {
    const [p, i] = procs.start(collectArgs({ lab, brokers: kafka.brokers, topic, host: 'spool-full', spool, buffer: '64KiB' }));
    await procs.waitLog(i, '"msg":"collecting"');
    for (let k = 0; k < 5; k++) await lab.tcpConnect(ADDR.server4, 8080, 100);
    await sleep(1000);

    kafka.pause();
    const outageAt = Date.now();
    const flows = scale(4000, 20_000);
    // one new connection per destination port: each is a NEW record, about 100 bytes encoded
    await lab.exec('client', 'hping3', ['-q', '--udp', '-c', String(flows), '-i', 'u300', '-p', '++2000', ADDR.server4], { allowFail: true, timeoutMs: 120_000 });
    await procs.waitLog(i, 'the spool refused records: dropping them', 60_000);
    expect(procs.logs[i]).toMatch(/"err":"writing the spool failed: ENOSPC/);
    expect(p.exitCode).toBe(null); // still running
    await sleep(scale(2000, 50_000));
    kafka.resume();
    const backAt = Date.now();
    for (let k = 0; k < 5; k++) await lab.tcpConnect(ADDR.server4, 8080, 100);
    // the spool drains once Kafka answers
    await waitWhile(() => spooled(spool), { within: 60_000, every: 250, why: () => 'the spool did not drain' });
    const recoveryS = (Date.now() - backAt) / 1000;
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);
    const stopped = procs.logLine<{ seq: number; dropped: number }>(i, '"msg":"stopped"');

    const msgs = await consumeAll(kafka.brokers, topic, (m) => m.some((x) => decodeBatch(x.value).records.some((r) => r.seq === stopped.seq)), 60_000);
    const all: CtpipeRecord[] = msgs.flatMap((m) => decodeBatch(m.value).records);
    const delivered = new Set(all.map((r) => r.seq));
    const losses = all.filter((r): r is LossRecord => r.type === 'loss' && r.source === 'publish');
    const reported = new Set<number>();
    for (const l of losses) {
      expect(l.reason).toBe('spool_full');
      for (let s = l.first_seq!; s <= l.last_seq!; s++) reported.add(s);
    }
    expect(reported.size).toBe(stopped.dropped);
    expect(reported.size).toBeGreaterThan(0);
    const silent: number[] = [];
    for (let s = 1; s <= stopped.seq; s++) {
      expect(delivered.has(s) && reported.has(s), `seq ${s} both delivered and reported lost`).toBe(false);
      if (!delivered.has(s) && !reported.has(s)) silent.push(s);
    }
    expect(silent).toEqual([]);
    // order per host: delivered records come in sequence order on the partition, apart from the spool's older ones first
    expect(new Set(msgs.map((m) => m.partition)).size).toBe(1);
    writeLedger({
      fault: 'spool disk full', injected: `Kafka frozen ${((backAt - outageAt) / 1000).toFixed(0)} s, ${flows} new UDP connections, 64 KiB memory buffer, 96 KiB tmpfs spool`,
      sent: stopped.seq, received: delivered.size, stored: null, duplicated: all.length - delivered.size, lost: silent.length,
      reported_lost: reported.size, recovery_s: recoveryS, notes: 'dropped records reported as spool_full loss records',
    });
  });
});
