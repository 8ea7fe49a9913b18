/**
 * Fault: ClickHouse unavailable for a while (60 s in the full run) while records keep arriving.
 * The processor pauses (its /healthz says so), loses nothing, and once ClickHouse is back catches
 * up: every connection stored once, the lag back to zero.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CtRecord } from '../../contract/records.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { produceBatches } from '../helpers/kafka.js';
import { exited, Procs } from '../helpers/procs.js';
import { lifecycleRecords } from '../helpers/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { scalar } from '../helpers/store.js';
import { waitWhile } from '../helpers/wait.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { Endpoint, processArgs } from './harness.js';
import { scale, writeLedger } from './ledger.js';

const topic = `ch-outage-${Date.now()}`;
const HOSTS = 4;
const CONNS = scale(600, 6000);
const OUTAGE_S = scale(15, 60);
let kafka: KafkaMock;
let front: ClickHouseFront;
let store: Store;
let dir: string;
const procs = new Procs();

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
  dir = tempDir('ch-outage');
  front = await ClickHouseFront.start(path.join(dir, 'ch'));
  store = await openStore({ url: front.url, database: 'ctpipe' });
});

afterAll(() => release(store, front, kafka, dir));

const produce = (records: CtRecord[][]) => produceBatches(kafka.brokers, 'ch-outage', topic, records, 100);
const stored = () => scalar(store, "SELECT count() AS n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");

describe('fault: ClickHouse unavailable while records arrive', () => {
  it('pauses, loses nothing, and catches up when ClickHouse is back', async () => {
    const all = Array.from({ length: HOSTS }, (_, h) => lifecycleRecords(`cho-${h}`, `run-${h}`, CONNS, h + 1));
    const half = (k: 0 | 1) => all.map((r) => r.slice(k === 0 ? 0 : Math.floor(r.length / 2), k === 0 ? Math.floor(r.length / 2) : r.length));
    await produce(half(0));
    const ops = new Endpoint();
    const [p, i] = procs.start(processArgs(kafka.brokers, topic, front.url, ops));
    await waitWhile(async () => (await stored().catch(() => 0)) === 0, { within: 60_000, every: 250, alive: p, why: () => procs.logs[i]!.slice(-3000) });
    await sleep(2000);
    const before = await stored();

    await front.stop();
    const downAt = Date.now();
    await produce(half(1));
    await sleep(OUTAGE_S * 1000);
    expect(await ops.health()).toBe(503); // unhealthy while ClickHouse is away
    expect(procs.logs[i]).toMatch(/ClickHouse (insert|call) failed/);
    expect(p.exitCode).toBe(null);

    await front.start();
    const upAt = Date.now();
    await waitWhile(async () => (await stored()) < HOSTS * CONNS, { within: 120_000, every: 250, why: async () => `stored ${await stored()} of ${HOSTS * CONNS}` });
    const recoveryS = (Date.now() - upAt) / 1000;
    let lag = '';
    for (let t = 0; t < 30_000; t += 500) {
      lag = await ops.metrics();
      if (/^ctpipe_processor_lag_records\{partition="\d+"\} 0$/m.test(lag) && !/^ctpipe_processor_lag_records\{.*\} [1-9]/m.test(lag)) break;
      await sleep(500);
    }
    expect(lag).not.toMatch(/^ctpipe_processor_lag_records\{.*\} [1-9]/m);
    expect(await ops.health()).toBe(200);
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);

    const n = await stored();
    const raw = await scalar(store, "SELECT count() AS n FROM ctpipe.flows WHERE end_reason = 'destroy'");
    const rollup = await scalar(store, 'SELECT sum(flows) AS n FROM ctpipe.flows_1m');
    expect(n).toBe(HOSTS * CONNS);
    expect(raw).toBe(HOSTS * CONNS);
    expect(rollup).toBe(HOSTS * CONNS);
    writeLedger({
      fault: 'ClickHouse unavailable', injected: `ClickHouse stopped ${((upAt - downAt) / 1000).toFixed(0)} s while ${HOSTS * CONNS - before} more connections arrived`,
      sent: HOSTS * CONNS, received: HOSTS * CONNS, stored: n, duplicated: raw - n, lost: HOSTS * CONNS - n, recovery_s: recoveryS,
      notes: '/healthz 503 while away, 200 after; lag back to 0',
    });
  });
});
