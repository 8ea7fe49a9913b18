/** Shared steps of the fault suite: reading a whole topic, and processing it into a store. */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { exited, Procs } from '../helpers/procs.js';
import { consumeAll } from '../../lab/kafka-mock.js';

/** Every record on the topic, in partition order, once the record with `lastSeq` of `run` is there. */
export async function topicRecords(brokers: string[], topic: string, done: (rs: CtpipeRecord[]) => boolean): Promise<CtpipeRecord[]> {
  const msgs = await consumeAll(brokers, topic, (m) => done(m.flatMap((x) => decodeBatch(x.value).records)), 60_000);
  return msgs.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset)).flatMap((m) => decodeBatch(m.value).records);
}

/**
 * `ctpipe process` on the topic into chDB at `dir` until it has processed `records` records (its
 * metrics say so), then stopped; returns a query function on the store it leaves.
 */
export async function processTopic(brokers: string[], topic: string, dir: string, records: number, procs = new Procs(() => ({}))): Promise<void> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const [p, i] = procs.start(['process', '--kafka-brokers', brokers.join(','), '--kafka-topic', topic, '--clickhouse-url', `chdb:${dir}`,
    '--metrics-listen', `127.0.0.1:${port}`, '--process-checkpoint', '1s']);
  for (let t = 0; ; t += 500) {
    if (t > 180_000 || p.exitCode !== null) throw new Error(`ctpipe process did not finish: ${procs.logs[i]!.slice(-3000)}`);
    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
    const m = /^ctpipe_processor_records_total (\d+)/m.exec(text);
    if (m && Number(m[1]) >= records) break;
    await sleep(500);
  }
  await sleep(2000);
  p.kill('SIGTERM');
  const code = await exited(p);
  if (code !== 0) throw new Error(`ctpipe process exited ${String(code)}: ${procs.logs[i]!.slice(-3000)}`);
}

/** A Prometheus sample's value from /metrics text (the first series of `name`), NaN if absent. */
export const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

export async function queryStore<T = Record<string, string>>(dir: string, sql: string): Promise<T[]> {
  const store = await openStore({ url: `chdb:${dir}` });
  try {
    return await (await store.query({ query: sql, format: 'JSONEachRow' })).json<T>();
  } finally {
    await store.close();
  }
}
