/**
 * Two processors in one consumer group over two hosts' partitions: a second processor joins
 * (rebalance), then the first leaves (its partitions move). Every connection of both hosts is
 * stored exactly once and the rollup counts each once.
 *
 * chDB is a single process's store, so here each processor writes its own and the test reads
 * both: this proves the group's hand-over (nothing lost, nothing written twice). State restored
 * from a shared store's checkpoint is proven by process.test.ts (a SIGKILL and a restart).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { openStore, type Store } from '../../processor/clickhouse/store.js';
import { KafkaMock } from '../lab/kafka-mock.js';
import { ADDR, Lab } from '../lab/lab.js';
import { parseConntrackEvent, type OracleEvent } from '../lab/oracle.js';

const BIN = path.join(packageRoot(), 'bin', 'ctpipe.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two host names the default partitioner puts in different partitions of a 4-partition topic. */
function hostsOnTwoPartitions(): [string, string] {
  const part = kafkajs.Partitioners.DefaultPartitioner();
  const meta = [0, 1, 2, 3].map((p) => ({ partitionId: p, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  const of = (h: string) => part({ topic: 't', partitionMetadata: meta, message: { key: h, value: null } });
  const a = 'fw-a';
  for (let i = 0; ; i++) if (of(`fw-b${i}`) !== of(a)) return [a, `fw-b${i}`];
}

let lab: Lab;
let kafka: KafkaMock;
let dir: string;
let store: Store;
let oracleText = '';
const topic = `rebal-${Date.now()}`;
const [hostA, hostB] = hostsOnTwoPartitions();
const logs: string[] = [];

function ctpipe(args: string[]): ChildProcessWithoutNullStreams {
  const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CTPIPE_KAFKA_BROKERS: kafka.brokers.join(','), CTPIPE_KAFKA_TOPIC: topic, CTPIPE_METRICS_ENABLED: 'false', CTPIPE_KAFKA_SPOOL_DIR: '' } });
  const i = logs.push('') - 1;
  p.stderr.on('data', (d: Buffer) => (logs[i] += d.toString()));
  return p;
}
const exit = (p: ChildProcessWithoutNullStreams) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.on('exit', (c) => r(c))));
async function waitLog(i: number, re: RegExp, ms = 60_000): Promise<void> {
  for (let t = 0; t < ms && !re.test(logs[i]!); t += 100) await sleep(100);
  if (!re.test(logs[i]!)) throw new Error(`no ${re} in log ${i}: ${logs[i]!.slice(-1500)}\n--- all logs:\n${logs.map((l, k) => `[${k}] ${l.slice(-1500)}`).join('\n')}`);
}
const traffic = async (n: number) => {
  for (let i = 0; i < n; i++) await lab.tcpConnect(ADDR.server4, 8080, 100 + i);
};

let rows: { host: string; ct_id: number }[] = [];
let finals = 0;
let rollup = 0;

beforeAll(async () => {
  lab = await Lab.create();
  kafka = await KafkaMock.start();
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-rebal-'));
  await lab.tcpServer(8080);
  const oracle = lab.spawn('fw', 'conntrack', ['-E', '-o', 'extended,id']);
  oracle.stdout!.on('data', (d: Buffer) => (oracleText += d.toString()));
  // Two collectors on the same firewall, as two hosts: each sees every connection.
  const ca = ctpipe(['collect', '--netns', lab.netnsPath('fw'), '--host', hostA, '--kafka-linger', '100ms']);
  const cb = ctpipe(['collect', '--netns', lab.netnsPath('fw'), '--host', hostB, '--kafka-linger', '100ms']);
  await waitLog(0, /"collecting"/);
  await waitLog(1, /"collecting"/);
  // chDB is one process's store: both processors write to a server in production; here each has
  // its own embedded store and the test reads both (rows are per host, hosts per partition).
  const args = (n: string) => ['process', '--clickhouse-url', `chdb:${path.join(dir, n)}`, '--process-checkpoint', '1s', '--process-session-timeout', '6s'];
  const p1 = ctpipe(args('p1'));
  await waitLog(2, /joined the consumer group/);
  await traffic(3);
  await sleep(2000);
  const p2 = ctpipe(args('p2'));
  await waitLog(3, /"partitions":\[\d[^\]]*\],"msg":"joined the consumer group"/);
  await traffic(3);
  await sleep(2000);
  p1.kill('SIGTERM');
  expect(await exit(p1)).toBe(0);
  await waitLog(3, /"partitions":\[0,1,2,3\],"msg":"joined the consumer group"/);
  await traffic(3);
  await lab.conntrack(['-F']);
  await sleep(1500);
  ca.kill('SIGTERM');
  cb.kill('SIGTERM');
  await Promise.all([exit(ca), exit(cb)]);
  await sleep(3000);
  p2.kill('SIGTERM');
  expect(await exit(p2)).toBe(0);
  oracle.kill('SIGTERM');
  for (const n of ['p1', 'p2']) {
    store = await openStore({ url: `chdb:${path.join(dir, n)}` });
    const q = async <T>(sql: string) => (await (await store.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
    rows.push(...(await q<{ host: string; ct_id: number }>(`SELECT host, ct_id FROM ctpipe.flows FINAL WHERE end_reason != 'open'`)));
    finals += Number((await q<{ n: string }>(`SELECT count() n FROM ctpipe.flows WHERE end_reason != 'open'`))[0]!.n);
    rollup += Number((await q<{ n: string }>(`SELECT sum(flows) n FROM ctpipe.flows_1m`))[0]!.n);
    await store.close();
  }
}, 300_000);

afterAll(async () => {
  await kafka?.stop();
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('two processors, a rebalance, a departure', () => {
  it('stores every connection of both hosts', () => {
    const destroys = oracleText.split('\n').map(parseConntrackEvent).filter((e): e is OracleEvent => e?.type === 'destroy');
    expect(destroys.length).toBeGreaterThanOrEqual(9);
    for (const host of [hostA, hostB]) {
      const mine = rows.filter((r) => r.host === host).map((r) => r.ct_id).sort();
      expect(new Set(mine).size, host).toBe(mine.length);
      expect(mine, host).toEqual(destroys.map((d) => d.id).sort());
    }
  });

  it('wrote each final row once and the rollup counts each flow once', () => {
    expect(finals).toBe(rows.length);
    expect(rollup).toBe(rows.length);
  });
});
