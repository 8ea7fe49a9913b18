/**
 * A Kubernetes API server for tests, speaking what ctpipe's watches use: GET /api/v1/{pods,
 * services,nodes} as a list (with limit/continue pages) and, with ?watch=true, a stream of JSON
 * lines from a resourceVersion on (ADDED/MODIFIED/DELETED, BOOKMARK; an ERROR Status 410 for a
 * version older than its history, as the real server answers). Objects look like `kubectl get -o
 * json` output. The real client library reaches it through a kubeconfig (kubeconfig()), which sends
 * a bearer token the server checks.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export type Kind = 'pods' | 'services' | 'nodes';
type Obj = Record<string, any>;
interface Event { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj }

export const TOKEN = 'fake-k8s-token';

export class FakeK8s {
  private rv = 1000;
  private readonly state: Record<Kind, Map<string, Obj>> = { pods: new Map(), services: new Map(), nodes: new Map() };
  private readonly history: Record<Kind, Event[]> = { pods: [], services: [], nodes: [] };
  /** Versions at or below this are gone from the history (a watch from them gets 410). */
  private compactedAt = 0;
  private readonly streams = new Set<{ kind: Kind; res: http.ServerResponse }>();
  /** Every request: path, query and whether it carried the token. */
  readonly requests: { kind: string; query: URLSearchParams; auth: boolean }[] = [];
  private server!: http.Server;
  port = 0;
  /** While true every request gets 503 (the API server unreachable). */
  down = false;

  static async start(): Promise<FakeK8s> {
    const f = new FakeK8s();
    f.server = http.createServer((req, res) => f.handle(req, res));
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    f.port = (f.server.address() as AddressInfo).port;
    return f;
  }

  /** A kubeconfig file in `dir` pointing at this server. */
  kubeconfig(dir: string): string {
    const file = path.join(dir, 'kubeconfig');
    writeFileSync(file, [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: fake', '  cluster:', `    server: http://127.0.0.1:${this.port}`, '    insecure-skip-tls-verify: true', // the client refuses plain HTTP without it
      'users:', '- name: ctpipe', '  user:', `    token: ${TOKEN}`,
      'contexts:', '- name: fake', '  context:', '    cluster: fake', '    user: ctpipe',
      'current-context: fake', '',
    ].join('\n'), { mode: 0o600 });
    return file;
  }

  /** Applies a change as the API server would and streams it to open watches. */
  emit(kind: Kind, type: Event['type'], object: Obj): void {
    const rv = ++this.rv;
    const o = structuredClone(object);
    o.metadata.resourceVersion = String(rv);
    const key = `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (type === 'DELETED') this.state[kind].delete(key);
    else this.state[kind].set(key, o);
    const ev: Event = { rv, type, object: o };
    this.history[kind].push(ev);
    for (const s of this.streams) if (s.kind === kind) s.res.write(`${JSON.stringify({ type, object: o })}\n`);
  }

  /** A raw line into the open watches of `kind` (hostile input). */
  raw(kind: Kind, line: string): void {
    for (const s of this.streams) if (s.kind === kind) s.res.write(`${line}\n`);
  }

  /** Ends every open watch (of `kind`), as an API server restart or a load balancer would. */
  closeWatches(kind?: Kind): void {
    for (const s of [...this.streams]) {
      if (kind && s.kind !== kind) continue;
      s.res.end();
      this.streams.delete(s);
    }
  }

  /** Forgets the history so far: a watch resuming from an older version gets 410 Gone. */
  compact(): void {
    this.compactedAt = this.rv;
    for (const k of Object.keys(this.history) as Kind[]) this.history[k] = [];
  }

  watches(kind: Kind): number {
    return [...this.streams].filter((s) => s.kind === kind).length;
  }

  async stop(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/(pods|services|nodes)$/.exec(url.pathname);
    const auth = req.headers.authorization === `Bearer ${TOKEN}`;
    this.requests.push({ kind: m?.[1] ?? url.pathname, query: url.searchParams, auth });
    if (this.down) return json(res, 503, status(503, 'the server is currently unable to handle the request', 'ServiceUnavailable'));
    if (!auth) return json(res, 401, status(401, 'Unauthorized'));
    if (!m || req.method !== 'GET') return json(res, 404, status(404, 'not found'));
    const kind = m[1] as Kind;
    const q = url.searchParams;
    if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(kind, q, res);
    const all = [...this.state[kind].values()];
    const limit = Number(q.get('limit') ?? 0) || all.length;
    const from = Number(q.get('continue') ?? 0);
    const items = all.slice(from, from + limit);
    const more = from + limit < all.length;
    json(res, 200, {
      kind: `${kind === 'pods' ? 'Pod' : kind === 'services' ? 'Service' : 'Node'}List`, apiVersion: 'v1',
      metadata: { resourceVersion: String(this.rv), ...(more ? { continue: String(from + limit) } : {}) },
      items,
    });
  }

  private watch(kind: Kind, q: URLSearchParams, res: http.ServerResponse): void {
    const from = Number(q.get('resourceVersion') ?? 0);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // as the API server does: the client's watch starts with the headers
    if (from > 0 && from < this.compactedAt) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, `too old resource version: ${from} (${this.compactedAt})`, 'Expired') })}\n`);
      return;
    }
    for (const ev of this.history[kind]) if (ev.rv > from) res.write(`${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
    const s = { kind, res };
    this.streams.add(s);
    res.on('close', () => this.streams.delete(s));
  }
}

function status(code: number, message: string, reason = ''): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** RFC 3339 as the API server writes it (seconds). */
export const stamp = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

let uids = 0;
const uid = () => `5f0c${String(++uids).padStart(4, '0')}-7e1a-4b7e-9d1e-3b5c8a${String(uids).padStart(6, '0')}`;

export interface PodSpec {
  name: string;
  namespace: string;
  ip: string;
  node: string;
  /** Owner kind and name: ReplicaSet (with hash) of a Deployment, StatefulSet, DaemonSet, Job. */
  owner?: { kind: string; name: string };
  hash?: string;
  startMs: number;
  uid?: string;
}

/** A running pod as `kubectl get pod -o json` shows one. */
export function pod(p: PodSpec): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: p.name, namespace: p.namespace, uid: p.uid ?? uid(), creationTimestamp: stamp(p.startMs - 2000),
      labels: { app: p.name.split('-')[0], ...(p.hash ? { 'pod-template-hash': p.hash } : {}) },
      ...(p.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: p.owner.kind, name: p.owner.name, uid: uid(), controller: true, blockOwnerDeletion: true }] } : {}),
    },
    spec: {
      nodeName: p.node, serviceAccountName: 'default', restartPolicy: 'Always', dnsPolicy: 'ClusterFirst',
      containers: [{ name: 'main', image: 'registry.example/app:1.4.2', ports: [{ containerPort: 8080, protocol: 'TCP' }] }],
    },
    status: {
      phase: 'Running', hostIP: '10.0.0.11', hostIPs: [{ ip: '10.0.0.11' }], podIP: p.ip, podIPs: [{ ip: p.ip }], startTime: stamp(p.startMs),
      qosClass: 'BestEffort',
      conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: stamp(p.startMs + 1000) }],
      containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'registry.example/app:1.4.2', imageID: 'registry.example/app@sha256:0f3e', containerID: 'containerd://9a1b', started: true, state: { running: { startedAt: stamp(p.startMs + 500) } } }],
    },
  };
}

/** The pod finished: its containers terminated at `endMs`. */
export function finished(p: Obj, endMs: number): Obj {
  const o = structuredClone(p);
  o.status.phase = 'Succeeded';
  o.status.containerStatuses[0].ready = false;
  o.status.containerStatuses[0].state = { terminated: { exitCode: 0, reason: 'Completed', startedAt: o.status.containerStatuses[0].state.running?.startedAt, finishedAt: stamp(endMs) } };
  return o;
}

export function service(name: string, namespace: string, clusterIP: string, createdMs: number): Obj {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name, namespace, uid: uid(), creationTimestamp: stamp(createdMs), labels: { app: name } },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ipFamilies: ['IPv4'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], selector: { app: name } },
    status: { loadBalancer: {} },
  };
}

export function node(name: string, ip: string, createdMs: number): Obj {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, uid: uid(), creationTimestamp: stamp(createdMs), labels: { 'kubernetes.io/hostname': name } },
    spec: { podCIDR: '10.244.1.0/24' },
    status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }], conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
