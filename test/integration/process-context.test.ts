/**
 * Fleet context through Kafka: lab traffic -> `ctpipe collect` -> Kafka (librdkafka's mock cluster)
 * -> `ctpipe process --networks FILE --kubernetes --kubeconfig K` (the fake API server of
 * test/helpers/fake-k8s.ts) -> chDB. Every lab flow row carries both ends' network names and roles
 * and both pods; after the file changes and `process` gets SIGHUP, new rows carry the new names
 * while the rows stored before keep theirs (the pods stay).
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { FakeK8s, node, pod } from '../helpers/fake-k8s.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

const HEADER = 'cidr,name,role,site,region,tenant';
const V1 = [HEADER, '198.51.100.0/24,lab-clients,client,par1,eu-west,acme', '203.0.113.0/24,lab-servers,server,ams1,eu-west,acme'].join('\n');
const V2 = [HEADER, '198.51.100.0/24,clients-v2,frontend,par2,eu-west,acme', '203.0.113.0/24,servers-v2,backend,ams2,eu-west,acme'].join('\n');

interface Row {
  orig_sport: number; orig_dport: number; first_seen: string; end_reason: string;
  orig_src_net_name: string; orig_src_net_role: string; orig_dst_net_name: string; orig_dst_net_role: string;
  orig_src_k8s_pod: string; orig_src_k8s_workload: string; orig_dst_k8s_pod: string; orig_dst_k8s_workload: string;
}

let lab: Lab;
let kafka: KafkaMock;
let api: FakeK8s;
let dir: string;
let spool: string;
const topic = `ctx-${Date.now()}`;
const procs = Procs.onKafka(() => kafka.brokers, topic);
let processLog = 0;
let processExit: number | null = null;
let collectorExit: number | null = null;
let rows: Row[] = [];
let switchedAt = 0;
const ports: { before: number[]; after: number[] } = { before: [], after: [] };

const T0 = Date.now() - 3_600_000;

async function traffic(into: number[]): Promise<void> {
  for (let i = 0; i < 2; i++) into.push((await lab.tcpConnect(ADDR.server4, 8080, 300)).local);
  into.push((await lab.udpExchange(ADDR.server4, 5353, 2, 100)).local);
  await sleep(200);
  await lab.conntrack(['-F']); // every flow ends now: its final row is written at the next flush
  await sleep(2500);
}

beforeAll(async () => {
  lab = await Lab.create();
  kafka = await KafkaMock.start();
  api = await FakeK8s.start();
  dir = tempDir('process-context');
  spool = tempDir('process-context-spool');
  api.emit('nodes', 'ADDED', node('node-1', '10.0.0.11', T0));
  api.emit('nodes', 'ADDED', node('node-2', '10.0.0.12', T0));
  api.emit('pods', 'ADDED', pod({ name: 'web-5d8f7c9b4-x2x7q', namespace: 'shop', ip: ADDR.client4, node: 'node-1', owner: { kind: 'ReplicaSet', name: 'web-5d8f7c9b4' }, hash: '5d8f7c9b4', startMs: T0 }));
  api.emit('pods', 'ADDED', pod({ name: 'pg-0', namespace: 'db', ip: ADDR.server4, node: 'node-2', owner: { kind: 'StatefulSet', name: 'pg' }, startMs: T0 }));
  const file = path.join(dir, 'networks.csv');
  writeFileSync(file, V1);
  await lab.tcpServer(8080);
  await lab.udpServer(5353);

  const [collector, cl] = procs.start(['collect', '--netns', lab.netnsPath('fw'), '--host', 'lab-fw', '--kafka-spool-dir', spool, '--kafka-linger', '100ms']);
  await procs.waitLog(cl, '"collecting"');
  const [p, pl] = procs.start(['process', '--clickhouse-url', `chdb:${path.join(dir, 'db')}`, '--process-flush', '300ms', '--process-checkpoint', '1s',
    '--networks', file, '--kubernetes', '--kubeconfig', api.kubeconfig(dir)]);
  processLog = pl;
  await procs.waitLog(pl, 'partition assigned');
  await procs.waitLog(pl, 'networks loaded');
  await procs.waitLog(pl, 'Kubernetes names: watching pods, services and nodes');
  await traffic(ports.before);

  // an editor's save (a new file renamed over the old one), then SIGHUP
  writeFileSync(`${file}.tmp`, V2);
  renameSync(`${file}.tmp`, file);
  p.kill('SIGHUP');
  await procs.waitLog(pl, 'SIGHUP: reloading the networks file', 30_000);
  await procs.until('the second load', async () => (procs.logs[pl]!.match(/networks loaded/g) ?? []).length >= 2, 30_000);
  await sleep(1100); // first_seen is kept to the nanosecond, the switch to the ms: a clear second between
  switchedAt = Date.now();
  await traffic(ports.after);
  collector.kill('SIGTERM');
  collectorExit = await exited(collector);
  await sleep(3000);
  p.kill('SIGTERM');
  processExit = await exited(p);
  rows = await queryStore<Row>(path.join(dir, 'db'), `SELECT orig_sport, orig_dport, toUnixTimestamp64Milli(first_seen) AS first_seen, end_reason,
    orig_src_net_name, orig_src_net_role, orig_dst_net_name, orig_dst_net_role,
    orig_src_k8s_pod, orig_src_k8s_workload, orig_dst_k8s_pod, orig_dst_k8s_workload
    FROM ctpipe.flows FINAL WHERE host = 'lab-fw' AND orig_dport IN (8080, 5353) ORDER BY first_seen`);
}, 240_000);

afterAll(async () => {
  await procs.killAll();
  await api?.stop();
  await release(lab, kafka, dir, spool);
});

const pods = { orig_src_k8s_pod: 'web-5d8f7c9b4-x2x7q', orig_src_k8s_workload: 'web', orig_dst_k8s_pod: 'pg-0', orig_dst_k8s_workload: 'pg' };

describe('ctpipe process --networks --kubernetes through Kafka', () => {
  it('reloads on SIGHUP and stops cleanly, the collector too', () => {
    expect(collectorExit).toBe(0);
    expect(processExit).toBe(0);
    expect(procs.logs[processLog]).toContain('SIGHUP: reloading the networks file');
    expect(procs.logs[processLog]).toContain('stopped: final checkpoints stored');
  });

  it('names both ends of every flow by network and pod; after the change and SIGHUP new rows get the new names, old rows keep theirs', () => {
    const of = (sports: number[]) => rows.filter((r) => sports.includes(r.orig_sport));
    expect(of(ports.before)).toHaveLength(ports.before.length);
    expect(of(ports.after)).toHaveLength(ports.after.length);
    for (const r of of(ports.before)) {
      expect(Number(r.first_seen)).toBeLessThan(switchedAt);
      expect(r, `flow from port ${r.orig_sport}`).toMatchObject({
        end_reason: 'destroy', orig_src_net_name: 'lab-clients', orig_src_net_role: 'client', orig_dst_net_name: 'lab-servers', orig_dst_net_role: 'server', ...pods,
      });
    }
    for (const r of of(ports.after)) {
      expect(r, `flow from port ${r.orig_sport}`).toMatchObject({
        end_reason: 'destroy', orig_src_net_name: 'clients-v2', orig_src_net_role: 'frontend', orig_dst_net_name: 'servers-v2', orig_dst_net_role: 'backend', ...pods,
      });
    }
  });
});
