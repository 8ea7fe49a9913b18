/**
 * Kubernetes names end to end: `ctpipe run --kubernetes` on real lab traffic, names from the fake
 * API server (test/helpers/fake-k8s.ts) through a kubeconfig, rows read back from chDB. The lab's
 * client and server addresses are two pods' addresses; then the client's address moves to another
 * pod (the first one finished and was deleted): new flows carry the new pod, the flows from before
 * keep the old one, even those whose final row was written after the move.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR, Lab } from '../../lab/lab.js';
import { FakeK8s, finished, node, pod } from '../helpers/fake-k8s.js';
import { BIN } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let lab: Lab;
let api: FakeK8s;
let dir: string;
let stderr = '';
let exitCode: number | null = null;
const before: number[] = [];
const after: number[] = [];

interface Row {
  orig_sport: number; end_reason: string;
  orig_src_k8s_namespace: string; orig_src_k8s_pod: string; orig_src_k8s_workload: string; orig_src_k8s_node: string;
  orig_dst_k8s_namespace: string; orig_dst_k8s_pod: string; orig_dst_k8s_workload: string; orig_dst_k8s_node: string; orig_dst_k8s_service: string;
}
let rows: Row[] = [];

const T0 = Date.now() - 3_600_000;
const web = pod({ name: 'web-5d8f7c9b4-x2x7q', namespace: 'shop', ip: ADDR.client4, node: 'node-1', owner: { kind: 'ReplicaSet', name: 'web-5d8f7c9b4' }, hash: '5d8f7c9b4', startMs: T0 });
const pg = pod({ name: 'pg-0', namespace: 'db', ip: ADDR.server4, node: 'node-2', owner: { kind: 'StatefulSet', name: 'pg' }, startMs: T0 });

beforeAll(async () => {
  lab = await Lab.create();
  api = await FakeK8s.start();
  dir = tempDir('k8s-run');
  api.emit('nodes', 'ADDED', node('node-1', '10.0.0.11', T0));
  api.emit('nodes', 'ADDED', node('node-2', '10.0.0.12', T0));
  api.emit('pods', 'ADDED', web);
  api.emit('pods', 'ADDED', pg);
  await lab.tcpServer(8080);
  const p = spawn(process.execPath, [BIN, 'run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', `chdb:${dir}/store`, '--host', 'lab-fw',
    '--kubernetes', '--kubeconfig', api.kubeconfig(dir), '--process-flush', '300ms', '--no-metrics-enabled'], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => p.on('exit', (code) => { exitCode = code; r(); }));
  for (let i = 0; i < 150 && !stderr.includes('running: collector and processor'); i++) await sleep(100);
  expect(stderr).toContain('Kubernetes names: watching pods, services and nodes');
  for (let i = 0; i < 3; i++) before.push((await lab.tcpConnect(ADDR.server4, 8080, 500)).local);
  await sleep(1500); // the API's times are whole seconds: the move is in a later second than these flows
  const move = Date.now();
  api.emit('pods', 'MODIFIED', finished(web, move));
  api.emit('pods', 'DELETED', finished(web, move));
  const startMs = move + 1000;
  api.emit('pods', 'ADDED', pod({ name: 'api-6b7d9f8c5-m8n4p', namespace: 'shop', ip: ADDR.client4, node: 'node-2', owner: { kind: 'ReplicaSet', name: 'api-6b7d9f8c5' }, hash: '6b7d9f8c5', startMs }));
  await sleep(startMs - Date.now() + 1000);
  for (let i = 0; i < 3; i++) after.push((await lab.tcpConnect(ADDR.server4, 8080, 500)).local);
  await sleep(300);
  await lab.conntrack(['-F']); // every flow, the first ones too, gets its final row now: after the move
  await sleep(1500);
  p.kill('SIGTERM');
  await exited;
  rows = await queryStore<Row>(`${dir}/store`, `SELECT orig_sport, end_reason, orig_src_k8s_namespace, orig_src_k8s_pod, orig_src_k8s_workload, orig_src_k8s_node,
    orig_dst_k8s_namespace, orig_dst_k8s_pod, orig_dst_k8s_workload, orig_dst_k8s_node, orig_dst_k8s_service
    FROM ctpipe.flows FINAL WHERE host = 'lab-fw' AND orig_dport = 8080`);
}, 180_000);

afterAll(async () => {
  await api?.stop();
  await release(lab, dir);
});

const dst = { orig_dst_k8s_namespace: 'db', orig_dst_k8s_pod: 'pg-0', orig_dst_k8s_workload: 'pg', orig_dst_k8s_node: 'node-2', orig_dst_k8s_service: '' };

describe('ctpipe run --kubernetes on lab traffic', () => {
  it('stops cleanly', () => {
    expect(exitCode).toBe(0);
    expect(stderr).toContain('"stopped"');
  });

  it('names both ends of the flows between two pods: namespaces, pods, workloads, nodes', () => {
    expect(rows).toHaveLength(before.length + after.length);
    for (const sport of before) {
      expect(rows.find((r) => r.orig_sport === sport), `flow from port ${sport}`).toEqual({
        orig_sport: sport, end_reason: 'destroy',
        orig_src_k8s_namespace: 'shop', orig_src_k8s_pod: 'web-5d8f7c9b4-x2x7q', orig_src_k8s_workload: 'web', orig_src_k8s_node: 'node-1', ...dst,
      });
    }
  });

  it('after the address moves to another pod, new flows carry the new pod and the earlier rows the old', () => {
    for (const sport of after) {
      expect(rows.find((r) => r.orig_sport === sport), `flow from port ${sport}`).toEqual({
        orig_sport: sport, end_reason: 'destroy',
        orig_src_k8s_namespace: 'shop', orig_src_k8s_pod: 'api-6b7d9f8c5-m8n4p', orig_src_k8s_workload: 'api', orig_src_k8s_node: 'node-2', ...dst,
      });
    }
  });
});
