/**
 * Pods, services and nodes as the Kubernetes API sends them (JSON from a list or a watch line),
 * reduced to what names an address. Everything here is untrusted: an object whose names are not
 * Kubernetes names, or whose addresses do not parse, is refused (undefined) rather than half used,
 * so a row never carries a string the API server should not have sent.
 */
import { ipv4ToU32, parseAddr, u32ToIpv4 } from '../../contract/addr.js';
import { cronJobOf } from './cronjob.js';

/** A pod that holds addresses, with the times bounding when it can have held them. */
export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  workload: string;
  node: string;
  /** Canonical address keys (ipKey) of its own network (none for a hostNetwork pod: those are the node's). */
  ips: string[];
  /** When the kubelet took the pod (status.startTime, else creation): no address before it (ms). */
  startMs: number;
  /** The pod is done (Succeeded/Failed): its sandbox and address are released (ms of its last container's end, when known). */
  endedMs?: number;
  ended: boolean;
  resourceVersion: string;
}

export interface ServiceInfo {
  uid: string;
  namespace: string;
  name: string;
  ips: string[];
  startMs: number;
  resourceVersion: string;
}

export interface NodeInfo {
  uid: string;
  name: string;
  ips: string[];
  startMs: number;
  resourceVersion: string;
}

// RFC 1123 subdomains (pods, nodes, workloads) and labels (namespaces, services): what the API
// server itself accepts, so anything else did not come from a real one.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UID = /^[A-Za-z0-9-]{1,64}$/;
const RV = /^[0-9A-Za-z._-]{0,64}$/;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v.slice(0, 64) : []);

/** An address as one key for every spelling of it (IPv4 dotted, IPv6 as 32 hex digits); undefined if it is none. */
export function ipKey(s: string): string | undefined {
  if (s.length > 45) return undefined;
  const v4 = ipv4ToU32(s);
  if (v4 >= 0) return u32ToIpv4(v4);
  try {
    const b = parseAddr(s);
    // an IPv4-mapped IPv6 address is the IPv4 one (rows hold IPv4 as a.b.c.d)
    if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return u32ToIpv4(b.readUInt32BE(12));
    return b.toString('hex');
  } catch {
    return undefined;
  }
}

/** A timestamp (RFC 3339 text from a watch, a Date from the typed list) in ms, or undefined. */
function timeMs(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.getTime() : undefined;
  const s = str(v);
  if (s === undefined || s.length > 40 || !/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(s)) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

interface Meta { uid: string; name: string; namespace: string; createdMs: number; resourceVersion: string }

function meta(o: Obj, namespaced: boolean): Meta | undefined {
  const m = obj(o.metadata);
  if (!m) return undefined;
  const uid = str(m.uid);
  const name = str(m.name);
  const namespace = namespaced ? str(m.namespace) : '';
  const createdMs = timeMs(m.creationTimestamp);
  const rv = str(m.resourceVersion) ?? '';
  if (!uid || !UID.test(uid) || !name || !SUBDOMAIN.test(name) || namespace === undefined || (namespaced && !LABEL.test(namespace))) return undefined;
  if (createdMs === undefined || !RV.test(rv)) return undefined;
  return { uid, name, namespace, createdMs, resourceVersion: rv };
}

function keys(values: unknown[]): string[] | undefined {
  const out: string[] = [];
  for (const v of values) {
    const k = typeof v === 'string' ? ipKey(v) : undefined;
    if (k === undefined) return undefined;
    if (!out.includes(k)) out.push(k);
  }
  return out;
}

/**
 * The workload that owns a pod: its controller owner, and for a ReplicaSet the Deployment that made
 * it (a Deployment's ReplicaSet is named `<deployment>-<pod-template-hash>`, the hash also being the
 * pod's label; without both the ReplicaSet's own name stays). A Job named as the CronJob
 * controller names its Jobs is its CronJob (cronjob.ts: read from the name, as the RBAC grants no
 * read of Jobs); another Job stays the Job.
 */
export function workloadOf(o: Obj, createdMs: number): string {
  const m = obj(o.metadata)!;
  const owners = arr(m.ownerReferences).map(obj).filter((r): r is Obj => r !== undefined);
  const ctl = owners.find((r) => r.controller === true) ?? (owners.length === 1 ? owners[0] : undefined);
  const kind = str(ctl?.kind);
  const name = str(ctl?.name);
  if (!kind || !name || !SUBDOMAIN.test(name)) return '';
  if (kind === 'ReplicaSet') {
    const hash = str(obj(m.labels)?.['pod-template-hash']);
    if (hash && /^[a-z0-9]{1,16}$/.test(hash) && name.endsWith(`-${hash}`) && name.length > hash.length + 1) return name.slice(0, -hash.length - 1);
    return name;
  }
  if (kind === 'Job') return cronJobOf(name, createdMs) ?? name;
  return ['StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicationController', 'Deployment'].includes(kind) ? name : '';
}

export function parsePod(v: unknown): PodInfo | undefined {
  const o = obj(v);
  const md = o && meta(o, true);
  if (!o || !md) return undefined;
  const spec = obj(o.spec) ?? {};
  const status = obj(o.status) ?? {};
  const node = str(spec.nodeName) ?? '';
  if (node !== '' && !SUBDOMAIN.test(node)) return undefined;
  const phase = str(status.phase) ?? '';
  const listed = arr(status.podIPs).map((p) => obj(p)?.ip);
  const ips = spec.hostNetwork === true ? [] : keys(listed.length > 0 ? listed : status.podIP === undefined ? [] : [status.podIP]);
  if (ips === undefined) return undefined;
  const ended = phase === 'Succeeded' || phase === 'Failed';
  let endedMs: number | undefined;
  if (ended) {
    // the last container's end: after it the sandbox, and the address, go
    for (const c of arr(status.containerStatuses)) {
      const t = timeMs(obj(obj(obj(c)?.state)?.terminated)?.finishedAt);
      if (t !== undefined) endedMs = Math.max(endedMs ?? 0, t);
    }
  }
  return {
    uid: md.uid, namespace: md.namespace, name: md.name, workload: workloadOf(o, md.createdMs), node, ips,
    startMs: Math.max(md.createdMs, timeMs(status.startTime) ?? md.createdMs), ended, endedMs, resourceVersion: md.resourceVersion,
  };
}

export function parseService(v: unknown): ServiceInfo | undefined {
  const o = obj(v);
  const md = o && meta(o, true);
  if (!o || !md || !LABEL.test(md.name)) return undefined;
  const spec = obj(o.spec) ?? {};
  const listed = arr(spec.clusterIPs);
  const all = (listed.length > 0 ? listed : spec.clusterIP === undefined ? [] : [spec.clusterIP]).filter((ip) => ip !== 'None' && ip !== '');
  const ips = keys(all);
  if (ips === undefined) return undefined;
  return { uid: md.uid, namespace: md.namespace, name: md.name, ips, startMs: md.createdMs, resourceVersion: md.resourceVersion };
}

export function parseNode(v: unknown): NodeInfo | undefined {
  const o = obj(v);
  const md = o && meta(o, false);
  if (!o || !md) return undefined;
  const addrs = arr(obj(o.status)?.addresses).map(obj)
    .filter((a) => a?.type === 'InternalIP' || a?.type === 'ExternalIP').map((a) => a!.address);
  const ips = keys(addrs);
  if (ips === undefined) return undefined;
  return { uid: md.uid, name: md.name, ips, startMs: md.createdMs, resourceVersion: md.resourceVersion };
}
