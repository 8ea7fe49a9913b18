/**
 * Shared steps of the fault suite: a ctpipe operator endpoint and its metrics, the arguments of
 * the collector and processor runs, the spool, reading a whole topic, and processing it into a store.
 */
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { exited, Procs } from '../helpers/procs.js';
import { consumeAll } from '../../lab/kafka-mock.js';
import type { Lab } from '../../lab/lab.js';

/** A ctpipe operator endpoint on a random loopback port: `listen` for --metrics-listen, then reading it. */
export class Endpoint {
  readonly listen = `127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}`;

  /** /metrics, as text. */
  async metrics(): Promise<string> {
    return (await fetch(`http://${this.listen}/metrics`)).text();
  }

  /** /healthz's status code. */
  async health(): Promise<number> {
    return (await fetch(`http://${this.listen}/healthz`)).status;
  }
}

/** A Prometheus sample's value from /metrics text (the first series of `name`), NaN if absent. */
export const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** `ctpipe process` on the topic into the store at `url`, checkpointing every second, its endpoint `ops`. */
export const processArgs = (brokers: string[], topic: string, url: string, ops: Endpoint): string[] =>
  ['process', '--kafka-brokers', brokers.join(','), '--kafka-topic', topic, '--clickhouse-url', url, '--metrics-listen', ops.listen, '--process-checkpoint', '1s'];

/**
 * `ctpipe collect` on the lab firewall as `host` to the topic (20 ms linger), spooling to `spool`,
 * statistics every second. With `buffer`, a memory buffer that small and short Kafka timeouts:
 * records reach the spool soon in an outage.
 */
export function collectArgs(o: { lab: Lab; brokers: string[]; topic: string; host: string; spool: string; buffer?: string }): string[] {
  const outage = o.buffer ? ['--kafka-buffer-bytes', o.buffer, '--kafka-request-timeout-ms', '1500', '--kafka-connection-timeout-ms', '1000'] : [];
  return ['collect', '--netns', o.lab.netnsPath('fw'), '--host', o.host, '--no-metrics-enabled', '--kafka-brokers', o.brokers.join(','),
    '--kafka-topic', o.topic, '--kafka-linger', '20ms', '--kafka-spool-dir', o.spool, '--stats-interval', '1s', ...outage];
}

/** Whether the spool at `dir` holds a segment (records waiting for Kafka). */
export const spooled = (dir: string): boolean => readdirSync(dir).some((f) => f.endsWith('.seg'));

/** Every record on the topic, in partition order, once `done` says they are all there. */
export async function topicRecords(brokers: string[], topic: string, done: (rs: CtpipeRecord[]) => boolean): Promise<CtpipeRecord[]> {
  const msgs = await consumeAll(brokers, topic, (m) => done(m.flatMap((x) => decodeBatch(x.value).records)), 60_000);
  return msgs.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset)).flatMap((m) => decodeBatch(m.value).records);
}

/**
 * `ctpipe process` on the topic into chDB at `dir` until it has processed `records` records (its
 * metrics say so), then stopped; the store is left for queryStore.
 */
export async function processTopic(brokers: string[], topic: string, dir: string, records: number, procs = new Procs()): Promise<void> {
  const ops = new Endpoint();
  const [p, i] = procs.start(processArgs(brokers, topic, `chdb:${dir}`, ops));
  for (let t = 0; ; t += 500) {
    if (t > 180_000 || p.exitCode !== null) throw new Error(`ctpipe process did not finish: ${procs.logs[i]!.slice(-3000)}`);
    const text = await ops.metrics().catch(() => '');
    if (metric(text, 'ctpipe_processor_records_total') >= records) break;
    await sleep(500);
  }
  await sleep(2000);
  p.kill('SIGTERM');
  const code = await exited(p);
  if (code !== 0) throw new Error(`ctpipe process exited ${String(code)}: ${procs.logs[i]!.slice(-3000)}`);
}
