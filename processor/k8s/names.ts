/**
 * Kubernetes names for flow rows: the pods, services and nodes the watches report (client.ts) go
 * into address histories (ip-history.ts), and a row's addresses are looked up at its first_seen.
 * An address no owner held at that time stays empty: a name is never guessed. Pure; the watches'
 * wall clock (`now`) dates what the objects themselves do not (a deletion, an address change).
 */
import type { FlowRow } from '../clickhouse/flow-columns.js';
import { ipKey, type NodeInfo, type PodInfo, type ServiceInfo } from './objects.js';
import { IpHistory, type HistoryLimits } from './ip-history.js';

export type WatchEvent = 'ADDED' | 'MODIFIED' | 'DELETED';
export type Kind = 'pods' | 'services' | 'nodes';

interface PodNames { namespace: string; pod: string; workload: string; node: string }
interface ServiceNames { namespace: string; service: string }

interface Held { ips: string[] }

/** The row's first_seen in ms. */
const msOf = (t: { sec: number; nsec: number }): number => t.sec * 1000 + Math.floor(t.nsec / 1e6);

export class K8sNames {
  readonly pods: IpHistory<PodNames>;
  readonly services: IpHistory<ServiceNames>;
  readonly nodes: IpHistory<string>;
  /** What each known object holds now, by kind and uid (to see addresses come and go). */
  private readonly held: Record<Kind, Map<string, Held>> = { pods: new Map(), services: new Map(), nodes: new Map() };
  /** Objects the API sent that were refused (names or addresses no API server would send). */
  rejected = 0;

  constructor(limits: HistoryLimits) {
    this.pods = new IpHistory(limits);
    this.services = new IpHistory(limits);
    this.nodes = new IpHistory(limits);
  }

  known(kind: Kind): number {
    return this.held[kind].size;
  }

  private history(kind: Kind): IpHistory<unknown> {
    return (kind === 'pods' ? this.pods : kind === 'services' ? this.services : this.nodes) as IpHistory<unknown>;
  }

  /** An object's new set of addresses: those it gave up end now (or at `endMs`), new ones start at `startMs`. */
  private set(kind: Kind, uid: string, ips: string[], startMs: number, names: unknown, now: number, endMs = now): void {
    const h = this.history(kind);
    const before = this.held[kind].get(uid)?.ips ?? [];
    for (const ip of before) if (!ips.includes(ip)) h.release(ip, uid, endMs);
    // an address added to an object that already had others is new now; a first one is since its start
    // (only what the bound took is remembered: refused objects cost nothing)
    const kept = ips.filter((ip) => h.hold(ip, uid, before.length === 0 || before.includes(ip) ? startMs : Math.max(startMs, now), names));
    if (kept.length === 0) this.held[kind].delete(uid);
    else this.held[kind].set(uid, { ips: kept });
  }

  pod(ev: WatchEvent, p: PodInfo, now: number): void {
    const names: PodNames = { namespace: p.namespace, pod: p.name, workload: p.workload, node: p.node };
    const gone = ev === 'DELETED' || p.ended;
    // a finished pod's address went with its last container; a deleted one's by the time we hear of it
    const end = Math.min(now, p.endedMs ?? now);
    this.set('pods', p.uid, gone ? [] : p.ips, p.startMs, names, now, end);
  }

  service(ev: WatchEvent, s: ServiceInfo, now: number): void {
    this.set('services', s.uid, ev === 'DELETED' ? [] : s.ips, s.startMs, { namespace: s.namespace, service: s.name }, now);
  }

  node(ev: WatchEvent, n: NodeInfo, now: number): void {
    this.set('nodes', n.uid, ev === 'DELETED' ? [] : n.ips, n.startMs, n.name, now);
  }

  /** After a full list: objects known before but absent from it were deleted while no watch ran. */
  relisted(kind: Kind, listed: ReadonlySet<string>, now: number): void {
    for (const uid of [...this.held[kind].keys()]) {
      if (!listed.has(uid)) this.set(kind, uid, [], 0, undefined, now);
    }
  }

  prune(now: number): void {
    this.pods.prune(now);
    this.services.prune(now);
    this.nodes.prune(now);
  }

  /**
   * Fills the row's Kubernetes columns (in place) from the owners of its addresses at first_seen.
   * A destination that is a service's ClusterIP gets the service, and its pod is the one the
   * connection was translated to (the reply's source), if that is a pod.
   */
  fill(row: FlowRow): void {
    const t = msOf(row.first_seen);
    const src = ipKey(row.orig_src);
    const dst = ipKey(row.orig_dst);
    if (src !== undefined) {
      const p = this.pods.at(src, t);
      if (p) setPod(row, 'src', p);
      else row.orig_src_k8s_node = this.nodes.at(src, t) ?? '';
    }
    if (dst === undefined) return;
    const svc = this.services.at(dst, t);
    let target = dst;
    if (svc) {
      row.orig_dst_k8s_service = svc.service;
      row.orig_dst_k8s_namespace = svc.namespace;
      target = ipKey(row.reply_src) ?? '';
      if (target === dst) return; // not translated: no pod behind it known
    }
    const p = this.pods.at(target, t);
    if (p) setPod(row, 'dst', p);
    else if (!svc) row.orig_dst_k8s_node = this.nodes.at(target, t) ?? '';
  }
}

/** One end's pod names on a row. */
function setPod(row: FlowRow, end: 'src' | 'dst', p: PodNames): void {
  row[`orig_${end}_k8s_namespace`] = p.namespace;
  row[`orig_${end}_k8s_pod`] = p.pod;
  row[`orig_${end}_k8s_workload`] = p.workload;
  row[`orig_${end}_k8s_node`] = p.node;
}
