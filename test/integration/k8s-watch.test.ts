/**
 * Kubernetes names from a fake API server (test/helpers/fake-k8s.ts) through the real client
 * library and a kubeconfig: the first lists name both ends of a flow, a closed watch resumes from
 * its resourceVersion, a 410 Gone relists, an address reused by a second pod names each flow by
 * its own pod, and what no API server would send is refused and counted.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { K8sWatcher } from '../../processor/k8s/client.js';
import { NO_K8S_NAMES } from '../../processor/k8s/columns.js';
import { FakeK8s, finished, node, pod, service } from '../helpers/fake-k8s.js';
import { release, tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';

const T0 = Date.now() - 3_600_000;
const IP = { a: '10.244.1.5', s: '10.244.2.7', c: '10.244.1.9', svc: '10.96.0.20', node1: '10.0.0.11', node2: '10.0.0.12', bad: '10.244.3.3' };
const podA = pod({ name: 'web-5d8f7c9b4-x2x7q', namespace: 'shop', ip: IP.a, node: 'node-1', owner: { kind: 'ReplicaSet', name: 'web-5d8f7c9b4' }, hash: '5d8f7c9b4', startMs: T0 });
const podS = pod({ name: 'pg-0', namespace: 'db', ip: IP.s, node: 'node-2', owner: { kind: 'StatefulSet', name: 'pg' }, startMs: T0 });

let api: FakeK8s;
let dir: string;
let w: K8sWatcher;
const registry = new Registry();

/** The names a row from `src` to `dst` at `atMs` gets (`replySrc`: where a ClusterIP was translated to). */
function names(src: string, dst: string, atMs: number, replySrc = dst): Record<string, string> {
  const row = { ...NO_K8S_NAMES, orig_src: src, orig_dst: dst, reply_src: replySrc, first_seen: { sec: Math.floor(atMs / 1000), nsec: (atMs % 1000) * 1e6 } } as unknown as FlowRow;
  w.names.fill(row);
  return Object.fromEntries(Object.keys(NO_K8S_NAMES).map((k) => [k.replace('orig_', '').replace('_k8s', ''), row[k as keyof typeof NO_K8S_NAMES]]).filter(([, v]) => v !== ''));
}

const metric = async (name: string, labels: Record<string, string>): Promise<number> => {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values as { value: number; labels: Record<string, string> }[] | undefined)?.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0) ?? 0;
};

const listRequests = (kind: string) => api.requests.filter((r) => r.kind === kind && r.query.get('watch') !== 'true').length;
const wait = (pending: () => boolean, why: string) => waitWhile(pending, { within: 10_000, every: 50, why: () => why });

beforeAll(async () => {
  api = await FakeK8s.start();
  dir = tempDir('k8s-watch');
  api.emit('nodes', 'ADDED', node('node-1', IP.node1, T0));
  api.emit('nodes', 'ADDED', node('node-2', IP.node2, T0));
  api.emit('pods', 'ADDED', podA);
  api.emit('pods', 'ADDED', podS);
  // names no API server accepts: refused whole, its address stays unnamed
  const bad = pod({ name: 'evil', namespace: 'shop', ip: IP.bad, node: 'node-1', startMs: T0 });
  bad.metadata.name = "evil'; DROP TABLE flows\n";
  api.emit('pods', 'ADDED', bad);
  api.emit('services', 'ADDED', service('pg', 'db', IP.svc, T0));
  w = new K8sWatcher({
    kubeconfig: api.kubeconfig(dir), log: silentLogger, registry, retryMinMs: 50, retryMaxMs: 200,
    limits: { history: 6 * 86_400_000, max_ended: 1000, max_open: 1000, watch_timeout: 300_000 },
  });
  expect(await w.start(10_000)).toBe(true);
  await wait(() => api.watches('pods') + api.watches('services') + api.watches('nodes') < 3, 'the watches did not open');
}, 30_000);

afterAll(async () => {
  await w?.stop();
  await api?.stop();
  await release(dir);
});

describe('Kubernetes names from the API server', () => {
  it('names both ends of a flow between two pods from the first lists, over the kubeconfig\'s credentials', () => {
    expect(names(IP.a, IP.s, Date.now())).toEqual({
      src_namespace: 'shop', src_pod: 'web-5d8f7c9b4-x2x7q', src_workload: 'web', src_node: 'node-1',
      dst_namespace: 'db', dst_pod: 'pg-0', dst_workload: 'pg', dst_node: 'node-2',
    });
    expect(api.requests.map((r) => `${r.kind}${r.query.get('watch') === 'true' ? ' watch' : ''}`).sort()).toEqual(['nodes', 'nodes watch', 'pods', 'pods watch', 'services', 'services watch']);
    expect(api.requests.every((r) => r.auth)).toBe(true);
    expect(api.requests.find((r) => r.kind === 'pods')!.query.get('limit')).toBe('500');
  });

  it('gives a ClusterIP destination its service, and the pod the connection was translated to', () => {
    expect(names(IP.a, IP.svc, Date.now(), IP.s)).toMatchObject({ dst_service: 'pg', dst_namespace: 'db', dst_pod: 'pg-0', dst_workload: 'pg' });
    expect(names(IP.a, IP.svc, Date.now())).toEqual(expect.objectContaining({ dst_service: 'pg', dst_namespace: 'db' }));
    expect(names(IP.a, IP.svc, Date.now())).not.toHaveProperty('dst_pod');
  });

  it('names a node address by its node, and leaves unknown addresses and times before a pod started empty', () => {
    expect(names(IP.node1, '192.0.2.1', Date.now())).toEqual({ src_node: 'node-1' });
    expect(names('192.0.2.1', '192.0.2.2', Date.now())).toEqual({});
    expect(names(IP.a, IP.s, T0 - 60_000)).toEqual({});
  });

  it('refuses an object holding what no API server sends, and keeps the rest', async () => {
    expect(await metric('ctpipe_k8s_rejected_objects_total', { kind: 'pods' })).toBe(1);
    expect(names(IP.bad, IP.s, Date.now())).not.toHaveProperty('src_pod');
    expect(await metric('ctpipe_k8s_objects', { kind: 'pods' })).toBe(2);
  });

  it('names a CronJob\'s pod by the CronJob (read from its Job\'s name), and another Job\'s pod by its Job', async () => {
    const minute = Math.floor((T0 - 60_000) / 60_000); // the schedule time, a minute before the pod
    const cron = pod({ name: `backup-${minute}-7xk2p`, namespace: 'ops', ip: '10.244.4.4', node: 'node-1', owner: { kind: 'Job', name: `backup-${minute}` }, startMs: T0 });
    const job = pod({ name: 'migrate-20240101-q9z8c', namespace: 'ops', ip: '10.244.4.5', node: 'node-2', owner: { kind: 'Job', name: 'migrate-20240101' }, startMs: T0 });
    api.emit('pods', 'ADDED', cron);
    api.emit('pods', 'ADDED', job);
    await wait(() => names('10.244.4.4', '10.244.4.5', Date.now()).dst_pod === undefined, 'the Job pods were not seen');
    expect(names('10.244.4.4', '10.244.4.5', Date.now())).toEqual({
      src_namespace: 'ops', src_pod: `backup-${minute}-7xk2p`, src_workload: 'backup', src_node: 'node-1',
      dst_namespace: 'ops', dst_pod: 'migrate-20240101-q9z8c', dst_workload: 'migrate-20240101', dst_node: 'node-2',
    });
    api.emit('pods', 'DELETED', cron);
    api.emit('pods', 'DELETED', job);
    await wait(() => names('10.244.4.4', '10.244.4.5', Date.now() + 1000).src_pod !== undefined, 'the Job pods were not let go');
  });

  it('resumes a watch the server closed from its last resourceVersion, and sees the later events', async () => {
    const before = api.requests.length;
    api.closeWatches('pods');
    await wait(() => api.watches('pods') === 0 || !api.requests.slice(before).some((r) => r.kind === 'pods'), 'the pods watch was not opened again');
    const resumed = api.requests.slice(before).find((r) => r.kind === 'pods')!;
    expect(resumed.query.get('watch')).toBe('true');
    // the version of the last pod event it saw (the refused pod's): nothing replayed, nothing skipped
    const lastPodRv = Number(api.requests.slice(0, before).filter((r) => r.kind === 'pods').at(-1)!.query.get('resourceVersion'));
    expect(Number(resumed.query.get('resourceVersion'))).toBeGreaterThanOrEqual(lastPodRv);
    expect(listRequests('pods')).toBe(1);
    expect(await metric('ctpipe_k8s_watch_reconnects_total', { kind: 'pods', reason: 'closed' })).toBeGreaterThanOrEqual(1);
    // a line that is not JSON and a pod with an address that is none are passed over; the next one applies
    api.raw('pods', '{"type":"ADDED","object":');
    api.emit('pods', 'ADDED', pod({ name: 'worker-a1', namespace: 'jobs', ip: '10.244.999.1', node: 'node-1', startMs: T0 }));
    api.emit('pods', 'ADDED', pod({ name: 'cache-7f9c6d5b8-q4w2e', namespace: 'shop', ip: IP.c, node: 'node-2', owner: { kind: 'ReplicaSet', name: 'cache-7f9c6d5b8' }, hash: '7f9c6d5b8', startMs: T0 }));
    await wait(() => names(IP.c, IP.s, Date.now()).src_pod === undefined, 'the pod added after the reconnect was not seen');
    expect(names(IP.c, IP.s, Date.now())).toMatchObject({ src_namespace: 'shop', src_pod: 'cache-7f9c6d5b8-q4w2e', src_workload: 'cache', src_node: 'node-2' });
    expect(await metric('ctpipe_k8s_rejected_objects_total', { kind: 'pods' })).toBe(2);
  });

  it('names each flow by its own pod when a second pod takes over an address', async () => {
    const move = Math.floor(Date.now() / 1000) * 1000 - 20_000;
    api.emit('pods', 'MODIFIED', finished(podA, move));
    api.emit('pods', 'DELETED', finished(podA, move));
    const podB = pod({ name: 'api-6b7d9f8c5-m8n4p', namespace: 'shop', ip: IP.a, node: 'node-2', owner: { kind: 'ReplicaSet', name: 'api-6b7d9f8c5' }, hash: '6b7d9f8c5', startMs: move + 2000 });
    api.emit('pods', 'ADDED', podB);
    await wait(() => names(IP.a, IP.s, Date.now()).src_pod !== 'api-6b7d9f8c5-m8n4p', 'the second pod was not seen');
    expect(names(IP.a, IP.s, move - 3000)).toMatchObject({ src_pod: 'web-5d8f7c9b4-x2x7q', src_workload: 'web', src_node: 'node-1' });
    expect(names(IP.a, IP.s, move + 3000)).toMatchObject({ src_pod: 'api-6b7d9f8c5-m8n4p', src_workload: 'api', src_node: 'node-2' });
    // between the first pod's end and the second's start nobody held it: no name rather than a wrong one
    expect(names(IP.a, IP.s, move + 1000)).not.toHaveProperty('src_pod');
  });

  it('relists after 410 Gone, and a pod deleted while no watch ran loses its address from then on', async () => {
    api.down = true;
    api.closeWatches();
    await wait(() => api.watches('pods') > 0, 'watches still open');
    const gone = Date.now();
    api.emit('pods', 'DELETED', podS); // no watch open: only a relist can tell
    api.compact();
    await new Promise((r) => setTimeout(r, 300));
    api.down = false;
    await wait(() => listRequests('pods') < 2, 'no relist after 410 Gone');
    await wait(() => names(IP.a, IP.s, Date.now() + 1000).dst_pod !== undefined, 'the deleted pod still names its address');
    expect(await metric('ctpipe_k8s_watch_reconnects_total', { kind: 'pods', reason: 'gone' })).toBeGreaterThanOrEqual(1);
    expect(await metric('ctpipe_k8s_watch_reconnects_total', { kind: 'pods', reason: 'error' })).toBeGreaterThanOrEqual(1);
    // flows from before it went keep it
    expect(names(IP.c, IP.s, gone - 5000)).toMatchObject({ dst_pod: 'pg-0', dst_namespace: 'db' });
    // and the watch goes on after the relist
    api.emit('pods', 'ADDED', pod({ name: 'pg-1', namespace: 'db', ip: IP.s, node: 'node-1', owner: { kind: 'StatefulSet', name: 'pg' }, startMs: Date.now() + 500 }));
    await wait(() => names(IP.a, IP.s, Date.now() + 2000).dst_pod !== 'pg-1', 'the pod added after the relist was not seen');
    expect(await metric('ctpipe_k8s_objects', { kind: 'pods' })).toBe(3); // cache, api, pg-1
  });

  it('stops its watches promptly', async () => {
    const t0 = Date.now();
    await w.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    await wait(() => api.watches('pods') + api.watches('services') + api.watches('nodes') > 0, 'watches left open');
  });
});
