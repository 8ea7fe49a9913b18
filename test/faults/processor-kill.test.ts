/**
 * Fault: processors killed with SIGKILL mid-batch, again and again, with two members in the
 * consumer group on one ClickHouse (chDB behind its HTTP interface). Each kill comes right after a
 * burst of records, so the victim is inside a batch: rows inserted since its checkpoint are
 * replayed by whoever takes the partition, under the same tokens. Every connection must be
 * stored exactly once, with its counters, and the rollup must count it once.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CtRecord } from '../../contract/records.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { joinGroup } from '../helpers/group.js';
import { produceBatches } from '../helpers/kafka.js';
import { exited, Procs } from '../helpers/procs.js';
import { lifecycleRecords } from '../helpers/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { scalar } from '../helpers/store.js';
import { waitWhile } from '../helpers/wait.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { scale, writeLedger } from './ledger.js';

const topic = `processor-kill-${Date.now()}`;
const HOSTS = 8;
const CONNS = scale(600, 3000);
const KILLS = scale(3, 10);
let kafka: KafkaMock;
let front: ClickHouseFront;
let store: Store;
let dir: string;
const procs = Procs.onKafka(() => kafka.brokers, topic);

beforeAll(async () => {
  kafka = await KafkaMock.start();
  dir = tempDir('processor-kill');
  front = await ClickHouseFront.start(path.join(dir, 'ch'));
  store = await openStore({ url: front.url, database: 'ctpipe' });
});

afterAll(() => release(procs, store, front, kafka, dir));

const produce = (parts: CtRecord[][]) => produceBatches(kafka.brokers, 'processor-kill', topic, parts, 50);
const one = (sql: string) => scalar(store, sql);

describe('fault: processors killed mid-batch, repeatedly, two in the group', () => {
  it('stores every connection exactly once', { timeout: scale(180_000, 600_000) }, async () => {
    const all = Array.from({ length: HOSTS }, (_, h) => lifecycleRecords(`pk-${h}`, `run-${h}`, CONNS, h + 1));
    const parts = KILLS + 1;
    const part = (k: number) => all.map((r) => r.slice(Math.floor((r.length * k) / parts), Math.floor((r.length * (k + 1)) / parts)));
    await produce(part(0));
    const args = ['process', '--clickhouse-url', front.url, '--process-checkpoint', '1s', '--process-session-timeout', '6s'];
    let [a, la] = procs.start(args);
    await procs.waitLog(la, 'partition assigned');
    let [b, lb] = await joinGroup(procs, args, a);
    let lastKill = 0;
    for (let k = 1; k <= KILLS; k++) {
      await produce(part(k));
      await sleep(300); // the members are inside their batches now
      const victimIsA = k % 2 === 1;
      const [victim, survivor, survivorLog] = victimIsA ? [a, b, lb] : [b, a, la];
      victim.kill('SIGKILL');
      lastKill = Date.now();
      await exited(victim);
      // the survivor takes every partition once the victim's session expires
      const before = (procs.logs[survivorLog]!.match(/joined the consumer group/g) ?? []).length;
      await waitWhile(() => (procs.logs[survivorLog]!.match(/joined the consumer group/g) ?? []).length === before,
        { within: 30_000, every: 250, why: () => procs.logs[survivorLog]!.slice(-2000) });
      const [p, l] = await joinGroup(procs, args, survivor);
      if (victimIsA) [a, la] = [p, l];
      else [b, lb] = [p, l];
    }
    await waitWhile(async () => (await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'")) < HOSTS * CONNS,
      { within: 120_000, every: 500, why: async () => `stored ${await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'")} of ${HOSTS * CONNS}` });
    const recoveryS = (Date.now() - lastKill) / 1000;
    await sleep(3000); // a duplicate would have time to land
    for (const p of [a, b]) p.kill('SIGTERM');
    expect(await exited(a)).toBe(0);
    expect(await exited(b)).toBe(0);

    const stored = await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
    const raw = await one("SELECT count() FROM ctpipe.flows WHERE end_reason = 'destroy'");
    const counters = await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy' AND orig_packets = 4 AND reply_bytes = 3000");
    const rollup = await one('SELECT sum(flows) FROM ctpipe.flows_1m');
    // a kill inside a batch leaves rows stored past the victim's checkpoint: the next owner replays them
    const replayed = procs.logs.flatMap((l) => [...l.matchAll(/"replayRanges":(\d+),"msg":"partition assigned/g)].map((m) => Number(m[1])));
    expect(replayed.filter((n) => n > 0).length, 'no kill landed inside a batch').toBeGreaterThan(0);
    expect(stored).toBe(HOSTS * CONNS);
    expect(raw).toBe(HOSTS * CONNS);
    expect(counters).toBe(HOSTS * CONNS);
    expect(rollup).toBe(HOSTS * CONNS);
    writeLedger({
      fault: 'processor SIGKILL, repeatedly', injected: `${KILLS} SIGKILLs mid-batch, alternating between the two members of the group, each restarted`,
      sent: HOSTS * CONNS, received: HOSTS * CONNS, stored, duplicated: raw - stored, lost: HOSTS * CONNS - stored, recovery_s: recoveryS,
      notes: `${replayed.filter((n) => n > 0).length} takeovers replayed rows stored after the victim's checkpoint; recovery: from the last kill to every connection stored`,
    });
  });
});
