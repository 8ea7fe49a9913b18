/**
 * Fault: ClickHouse unavailable for a while (60 s in the full run) while records keep arriving.
 * The processor pauses (its /healthz says so), loses nothing, and once ClickHouse is back catches
 * up: every connection stored once, the lag back to zero.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord } from '../../contract/records.js';
import { openStore, type Store } from '../../processor/clickhouse/store.js';
import { exited, Procs } from '../helpers/procs.js';
import { lifecycleRecords } from '../helpers/records.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { scale, writeLedger } from './ledger.js';

const topic = `ch-outage-${Date.now()}`;
const HOSTS = 4;
const CONNS = scale(600, 6000);
const OUTAGE_S = scale(15, 60);
let kafka: KafkaMock;
let front: ClickHouseFront;
let store: Store;
let dir: string;
const procs = new Procs(() => ({}));

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-ch-outage-'));
  front = await ClickHouseFront.start(path.join(dir, 'ch'));
  store = await openStore({ url: front.url });
});

afterAll(async () => {
  await store?.close();
  await front?.close();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function produce(records: CtRecord[][]): Promise<void> {
  const producer = new kafkajs.Kafka({ clientId: 'ch-outage', brokers: kafka.brokers, logLevel: kafkajs.logLevel.NOTHING }).producer();
  await producer.connect();
  for (const recs of records) {
    const messages = [];
    for (let i = 0; i < recs.length; i += 100) messages.push({ key: recs[0]!.host, value: encodeBatch(recs.slice(i, i + 100)) });
    await producer.send({ topic, messages });
  }
  await producer.disconnect();
}

const stored = async () => Number((await (await store.query({
  query: "SELECT count() AS n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'", format: 'JSONEachRow',
})).json<{ n: string }>())[0]!.n);

describe('fault: ClickHouse unavailable while records arrive', () => {
  it('pauses, loses nothing, and catches up when ClickHouse is back', async () => {
    const all = Array.from({ length: HOSTS }, (_, h) => lifecycleRecords(`cho-${h}`, `run-${h}`, CONNS, h + 1));
    const half = (k: 0 | 1) => all.map((r) => r.slice(k === 0 ? 0 : Math.floor(r.length / 2), k === 0 ? Math.floor(r.length / 2) : r.length));
    await produce(half(0));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const [p, i] = procs.start(['process', '--kafka-brokers', kafka.brokers.join(','), '--kafka-topic', topic, '--clickhouse-url', front.url,
      '--metrics-listen', `127.0.0.1:${port}`, '--process-checkpoint', '1s']);
    for (let t = 0; (await stored().catch(() => 0)) === 0; t += 250) {
      expect(t < 60_000 && p.exitCode === null, procs.logs[i]!.slice(-3000)).toBe(true);
      await sleep(250);
    }
    await sleep(2000);
    const before = await stored();

    await front.stop();
    const downAt = Date.now();
    await produce(half(1));
    await sleep(OUTAGE_S * 1000);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(503); // unhealthy while ClickHouse is away
    expect(procs.logs[i]).toMatch(/ClickHouse (insert|call) failed/);
    expect(p.exitCode).toBe(null);

    await front.start();
    const upAt = Date.now();
    for (let t = 0; (await stored()) < HOSTS * CONNS; t += 250) {
      expect(t < 120_000, `stored ${await stored()} of ${HOSTS * CONNS}`).toBe(true);
      await sleep(250);
    }
    const recoveryS = (Date.now() - upAt) / 1000;
    let lag = '';
    for (let t = 0; t < 30_000; t += 500) {
      lag = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      if (/^ctpipe_processor_lag_records\{partition="\d+"\} 0$/m.test(lag) && !/^ctpipe_processor_lag_records\{.*\} [1-9]/m.test(lag)) break;
      await sleep(500);
    }
    expect(lag).not.toMatch(/^ctpipe_processor_lag_records\{.*\} [1-9]/m);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);

    const n = await stored();
    const raw = Number((await (await store.query({ query: "SELECT count() AS n FROM ctpipe.flows WHERE end_reason = 'destroy'", format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
    const rollup = Number((await (await store.query({ query: 'SELECT sum(flows) AS n FROM ctpipe.flows_1m', format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
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
