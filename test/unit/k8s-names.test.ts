/**
 * The pure parts of the Kubernetes names: objects from untrusted JSON (objects.ts), address
 * holdings by time and their bounds (ip-history.ts). The watches against an API server are proven
 * in test/integration/k8s-watch.test.ts, the rows in k8s-run.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { IpHistory } from '../../processor/k8s/ip-history.js';
import { K8sNames } from '../../processor/k8s/names.js';
import { NO_K8S_NAMES } from '../../processor/k8s/columns.js';
import { cronJobOf } from '../../processor/k8s/cronjob.js';
import { ipKey, parseNode, parsePod, parseService } from '../../processor/k8s/objects.js';
import { finished, node, pod, service } from '../helpers/fake-k8s.js';

const T = Date.parse('2026-12-01T10:00:00Z');
const base = { name: 'web-5d8f7c9b4-x2x7q', namespace: 'shop', ip: '10.244.1.5', node: 'node-1', startMs: T };

describe('Kubernetes objects from untrusted JSON', () => {
  it('finds the workload: a Deployment through its ReplicaSet, StatefulSet, DaemonSet, Job; none without a controller', () => {
    const wl = (owner?: { kind: string; name: string }, hash?: string) => parsePod(pod({ ...base, owner, hash }))!.workload;
    expect(wl({ kind: 'ReplicaSet', name: 'web-5d8f7c9b4' }, '5d8f7c9b4')).toBe('web');
    expect(wl({ kind: 'ReplicaSet', name: 'web-5d8f7c9b4' }, 'other')).toBe('web-5d8f7c9b4'); // a bare ReplicaSet keeps its name
    expect(wl({ kind: 'StatefulSet', name: 'pg' })).toBe('pg');
    expect(wl({ kind: 'DaemonSet', name: 'agent' })).toBe('agent');
    expect(wl({ kind: 'Job', name: 'migrate' })).toBe('migrate');
    expect(wl({ kind: 'Node', name: 'node-1' })).toBe(''); // a static pod's mirror
    expect(wl()).toBe('');
  });

  it('names a CronJob\'s pods by the CronJob, read from its Job\'s name (<cronjob>-<schedule minute since the epoch>)', () => {
    const wl = (job: string, startMs = T) => parsePod(pod({ ...base, owner: { kind: 'Job', name: job }, startMs }))!.workload;
    const minute = Math.floor(T / 60_000) - 5; // scheduled five minutes before the pod
    expect(wl(`backup-${minute}`)).toBe('backup');
    expect(wl(`db-nightly-backup-${minute}`)).toBe('db-nightly-backup');
    expect(wl(`backup-${minute}`, T + 3 * 86_400_000)).toBe('backup'); // a retry days later
    expect(cronJobOf(`${'a'.repeat(52)}-${minute}`, T)).toBe('a'.repeat(52)); // the longest CronJob name
    // not a schedule time: the Job keeps its own name
    expect(wl(`report-${Math.floor(T / 60_000) + 2 * 1440}`)).toBe(`report-${Math.floor(T / 60_000) + 2 * 1440}`); // after the pod, beyond a day's skew
    expect(wl('migrate-20240101')).toBe('migrate-20240101'); // a date, read as minutes: 2008, before Kubernetes
    expect(wl(`load-${Math.floor(T / 1000)}`)).toBe(`load-${Math.floor(T / 1000)}`); // seconds: far in the future as minutes
    expect(wl('backup-7')).toBe('backup-7');
    expect(wl(`${'a'.repeat(53)}-${minute}`)).toBe(`${'a'.repeat(53)}-${minute}`); // longer than a CronJob name may be
    expect(wl(String(minute))).toBe(String(minute)); // digits alone: no CronJob name before them
    // only a Job's name is read so: a StatefulSet named like one keeps its name
    expect(parsePod(pod({ ...base, owner: { kind: 'StatefulSet', name: `pg-${minute}` } }))!.workload).toBe(`pg-${minute}`);
  });

  it('reads a pod\'s addresses, times and node, and none for a hostNetwork pod (those are the node\'s)', () => {
    expect(parsePod(pod(base))).toMatchObject({ namespace: 'shop', name: base.name, node: 'node-1', ips: ['10.244.1.5'], startMs: T, ended: false });
    const host = pod(base);
    host.spec.hostNetwork = true;
    expect(parsePod(host)!.ips).toEqual([]);
    expect(parsePod(finished(pod(base), T + 60_000))).toMatchObject({ ended: true, endedMs: T + 60_000 });
    const dual = pod(base);
    dual.status.podIPs = [{ ip: '10.244.1.5' }, { ip: 'fd00:10:244:1::5' }];
    expect(parsePod(dual)!.ips).toEqual(['10.244.1.5', ipKey('fd00:10:244:1::5')]);
  });

  it('refuses an object whose names, addresses or times no API server would send', () => {
    const bad: [string, (o: Record<string, any>) => void][] = [
      ['name with a quote', (o) => (o.metadata.name = "x'y")],
      ['name with a newline', (o) => (o.metadata.name = 'x\ny')],
      ['upper-case namespace', (o) => (o.metadata.namespace = 'Shop')],
      ['namespace too long', (o) => (o.metadata.namespace = 'a'.repeat(64))],
      ['name too long', (o) => (o.metadata.name = 'a'.repeat(254))],
      ['no uid', (o) => delete o.metadata.uid],
      ['address that is none', (o) => (o.status.podIPs = [{ ip: '10.244.1.500' }])],
      ['address not a string', (o) => (o.status.podIPs = [{ ip: 167_772_161 }])],
      ['node name with a space', (o) => (o.spec.nodeName = 'node 1')],
      ['creation time that is no time', (o) => (o.metadata.creationTimestamp = 'yesterday')],
      ['not an object', (o) => (o.metadata = ['x'])],
    ];
    for (const [why, spoil] of bad) {
      const o = pod(base);
      spoil(o);
      expect(parsePod(o), why).toBeUndefined();
    }
    expect(parsePod(null)).toBeUndefined();
    expect(parsePod('pod')).toBeUndefined();
    const svc = service('pg', 'db', '10.96.0.20', T);
    expect(parseService(svc)).toMatchObject({ name: 'pg', namespace: 'db', ips: ['10.96.0.20'] });
    svc.spec.clusterIPs = ['None'];
    expect(parseService(svc)!.ips).toEqual([]); // headless
    const n = node('node-1', '10.0.0.11', T);
    expect(parseNode(n)).toMatchObject({ name: 'node-1', ips: ['10.0.0.11'] });
    n.status.addresses.push({ type: 'InternalIP', address: 'node-1.example' });
    expect(parseNode(n)).toBeUndefined();
  });

  it('keys an address once whatever its spelling', () => {
    expect(ipKey('2001:DB8::1')).toBe(ipKey('2001:0db8:0:0:0:0:0:1'));
    expect(ipKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(ipKey('010.000.000.001')).toBe('10.0.0.1');
    expect(ipKey('10.0.0')).toBeUndefined();
    expect(ipKey('x'.repeat(100))).toBeUndefined();
  });
});

describe('address holdings by time', () => {
  const limits = { maxOpen: 100, maxEnded: 100, keepMs: 3_600_000 };

  it('names each time by the owner then: a reused address, a gap between owners, a newcomer that takes an address over', () => {
    const h = new IpHistory<string>(limits);
    h.hold('10.0.0.1', 'a', 1000, 'pod-a');
    h.release('10.0.0.1', 'a', 5000);
    h.hold('10.0.0.1', 'b', 6000, 'pod-b');
    expect([999, 1000, 4999, 5000, 5999, 6000, 1e12].map((t) => h.at('10.0.0.1', t))).toEqual([undefined, 'pod-a', 'pod-a', undefined, undefined, 'pod-b', 'pod-b']);
    // c takes it while b still holds it (b's end not heard yet): b ends where c starts
    h.hold('10.0.0.1', 'c', 9000, 'pod-c');
    expect([8999, 9000].map((t) => h.at('10.0.0.1', t))).toEqual(['pod-b', 'pod-c']);
    // a start claimed before the previous owner's end is moved to that end
    h.release('10.0.0.1', 'c', 12_000);
    h.hold('10.0.0.1', 'd', 10_000, 'pod-d');
    expect([11_000, 12_000].map((t) => h.at('10.0.0.1', t))).toEqual(['pod-c', 'pod-d']);
    expect([h.openCount, h.endedCount]).toEqual([1, 3]);
  });

  it('keeps ended holdings for keepMs and at most maxEnded, the oldest dropped first; refuses open ones past maxOpen', () => {
    const h = new IpHistory<string>({ maxOpen: 5, maxEnded: 3, keepMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      h.hold(`10.0.0.${i}`, `p${i}`, i * 1000, `p${i}`);
      h.release(`10.0.0.${i}`, `p${i}`, i * 1000 + 500);
    }
    h.prune(5000);
    expect(h.endedCount).toBe(3);
    expect([0, 1, 2, 3, 4].map((i) => h.at(`10.0.0.${i}`, i * 1000 + 100))).toEqual([undefined, undefined, 'p2', 'p3', 'p4']);
    h.prune(13_600); // 10 s after p3's end
    expect([2, 3, 4].map((i) => h.at(`10.0.0.${i}`, i * 1000 + 100))).toEqual([undefined, undefined, 'p4']);
    for (let i = 0; i < 7; i++) h.hold(`10.1.0.${i}`, `q${i}`, 0, `q${i}`);
    expect([h.openCount, h.refused]).toEqual([5, 2]);
    expect(h.at('10.1.0.6', 1)).toBeUndefined();
    // churn between prunes: the ended ones never pass twice their bound
    const c = new IpHistory<string>({ maxOpen: 10, maxEnded: 50, keepMs: 1e9 });
    for (let i = 0; i < 1000; i++) {
      c.hold('10.2.0.1', `r${i}`, i * 10, `r${i}`);
      c.release('10.2.0.1', `r${i}`, i * 10 + 5);
      expect(c.endedCount).toBeLessThanOrEqual(100);
    }
    expect(c.at('10.2.0.1', 9991)).toBe('r999');
  });

  it('remembers no object the bound refused', () => {
    const names = new K8sNames({ maxOpen: 1, maxEnded: 10, keepMs: 1e9 });
    names.pod('ADDED', parsePod(pod(base))!, T);
    names.pod('ADDED', parsePod(pod({ ...base, name: 'other', ip: '10.244.1.6' }))!, T);
    expect([names.known('pods'), names.pods.refused]).toEqual([1, 1]);
  });

  it('fills an IPv6 flow\'s names, whatever the spelling of its addresses', () => {
    const names = new K8sNames(limits);
    const p = pod({ ...base, ip: 'fd00:10:244:1::5' });
    names.pod('ADDED', parsePod(p)!, T + 1000);
    const row = { ...NO_K8S_NAMES, orig_src: 'fd00:10:244:1:0:0:0:5', orig_dst: '2001:db8::1', reply_src: '2001:db8::1', first_seen: { sec: T / 1000 + 10, nsec: 0 } } as unknown as FlowRow;
    names.fill(row);
    expect([row.orig_src_k8s_pod, row.orig_src_k8s_namespace, row.orig_dst_k8s_pod]).toEqual([base.name, 'shop', '']);
  });
});
