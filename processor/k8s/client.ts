/**
 * The one file that imports @kubernetes/client-node: pods, services and nodes listed (in pages)
 * and watched, each change applied to the names (names.ts). A watch that ends (the API server's
 * timeout, a dropped connection) resumes from the last resourceVersion it saw; one the server
 * answers 410 Gone (the version is too old) relists, and objects missing from the new list count as
 * deleted; errors wait with backoff and retry, never stopping the processor. Objects are parsed
 * from untrusted JSON (objects.ts) and only their names and addresses are kept, not the objects
 * (unlike the library's ListWatch cache).
 */
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Backoff } from '../../common/backoff.js';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { K8sConfig } from './config.js';
import { K8sNames, type Kind, type WatchEvent } from './names.js';
import { parseNode, parsePod, parseService } from './objects.js';

const PATHS: Record<Kind, string> = { pods: '/api/v1/pods', services: '/api/v1/services', nodes: '/api/v1/nodes' };
const PAGE = 500;
const RV = /^[0-9A-Za-z._-]{1,64}$/;

export interface K8sWatchOptions {
  kubeconfig?: string;
  limits: K8sConfig;
  log: Logger;
  registry: Registry;
  /** Backoff between failed attempts (tests shorten it). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/** What a status says: a 410 Gone asks for a relist. */
const statusOf = (e: unknown): number | undefined => {
  const o = e as { code?: unknown; statusCode?: unknown } | null;
  const c = typeof o?.code === 'number' ? o.code : typeof o?.statusCode === 'number' ? o.statusCode : undefined;
  return c;
};

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (e) {
    throw new CtpipeError('CONFIG_INVALID', `--kubernetes: cannot load the kubeconfig${file ? ` ${file}` : ''}: ${errorMessage(e)}`);
  }
  if (!kc.getCurrentCluster()) throw new CtpipeError('CONFIG_INVALID', `--kubernetes: the kubeconfig${file ? ` ${file}` : ''} names no current cluster (and no in-cluster service account was found)`);
  return kc;
}

export class K8sWatcher {
  readonly names: K8sNames;
  private readonly api: CoreV1Api;
  private readonly watch: Watch;
  private stopped = false;
  private readonly aborts = new Set<AbortController>();
  private readonly loops: Promise<void>[] = [];
  private readonly listed = new Set<Kind>();
  private readonly m;
  private readonly pruneTimer: NodeJS.Timeout;
  private wake: (() => void) | undefined;

  constructor(private readonly o: K8sWatchOptions, kc = loadKubeConfig(o.kubeconfig)) {
    this.names = new K8sNames({ maxOpen: o.limits.max_open, maxEnded: o.limits.max_ended, keepMs: o.limits.history });
    this.api = kc.makeApiClient(CoreV1Api);
    this.watch = new Watch(kc);
    const names = this.names;
    this.m = {
      reconnects: new Counter({ name: 'ctpipe_k8s_watch_reconnects_total', help: 'Kubernetes watches started again: closed (resumed from its resourceVersion), gone (410: relisted), error (after a backoff)', labelNames: ['kind', 'reason'], registers: [o.registry] }),
      rejected: new Counter({ name: 'ctpipe_k8s_rejected_objects_total', help: 'Kubernetes objects refused (names or addresses no API server sends)', labelNames: ['kind'], registers: [o.registry] }),
    };
    new Gauge({ name: 'ctpipe_k8s_objects', help: 'Kubernetes objects known that hold addresses', labelNames: ['kind'], registers: [o.registry],
      collect() { for (const k of Object.keys(PATHS) as Kind[]) this.set({ kind: k }, names.known(k)); } });
    new Gauge({ name: 'ctpipe_k8s_address_holdings', help: 'Address holdings kept: open (held now) and ended (kept for k8s.history)', labelNames: ['state'], registers: [o.registry],
      collect() {
        const hs = [names.pods, names.services, names.nodes];
        this.set({ state: 'open' }, hs.reduce((n, h) => n + h.openCount, 0));
        this.set({ state: 'ended' }, hs.reduce((n, h) => n + h.endedCount, 0));
      } });
    new Gauge({ name: 'ctpipe_k8s_refused_total', help: 'Address holdings refused by k8s.max_open (their addresses stay unnamed)', registers: [o.registry],
      collect() { this.set(names.pods.refused + names.services.refused + names.nodes.refused); } });
    this.pruneTimer = setInterval(() => this.names.prune(Date.now()), 60_000).unref();
  }

  /** Starts the watches; resolves once every kind was listed, or after `waitMs` (names arrive later then). */
  async start(waitMs = 10_000): Promise<boolean> {
    for (const kind of Object.keys(PATHS) as Kind[]) this.loops.push(this.loop(kind));
    const t0 = Date.now();
    while (this.listed.size < 3 && Date.now() - t0 < waitMs) {
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 100).unref(); });
    }
    return this.listed.size === 3;
  }

  get ready(): boolean {
    return this.listed.size === 3;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pruneTimer);
    for (const a of this.aborts) a.abort();
    // a request still waiting for the server's headers cannot be aborted yet: not waited for past 2 s
    await Promise.race([Promise.all(this.loops), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  private apply(kind: Kind, ev: WatchEvent, obj: unknown): string | undefined {
    const now = Date.now();
    if (kind === 'pods') {
      const p = parsePod(obj);
      if (p) this.names.pod(ev, p, now);
      else this.m.rejected.inc({ kind });
      return p?.uid;
    }
    if (kind === 'services') {
      const s = parseService(obj);
      if (s) this.names.service(ev, s, now);
      else this.m.rejected.inc({ kind });
      return s?.uid;
    }
    const n = parseNode(obj);
    if (n) this.names.node(ev, n, now);
    else this.m.rejected.inc({ kind });
    return n?.uid;
  }

  private async loop(kind: Kind): Promise<void> {
    const backoff = new Backoff(this.o.retryMinMs ?? 500, this.o.retryMaxMs ?? 30_000);
    let rv = '';
    while (!this.stopped) {
      try {
        if (!rv) {
          rv = await this.list(kind);
          this.listed.add(kind);
          this.wake?.();
        }
        const end = await this.watchOnce(kind, rv);
        if (this.stopped) break;
        rv = end.gone ? '' : end.rv;
        this.m.reconnects.inc({ kind, reason: end.gone ? 'gone' : 'closed' });
        if (end.events > 0) backoff.reset();
        else await this.sleep(backoff.next()); // a server that ends every watch at once is not hammered
      } catch (e) {
        if (this.stopped) break;
        if (statusOf(e) === 410) rv = '';
        this.m.reconnects.inc({ kind, reason: statusOf(e) === 410 ? 'gone' : 'error' });
        this.o.log.warn({ kind, err: errorMessage(e), status: statusOf(e) }, 'Kubernetes list or watch failed; retrying (names of new objects wait meanwhile)');
        await this.sleep(backoff.next());
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const a = new AbortController();
      this.aborts.add(a);
      const done = () => {
        clearTimeout(t);
        this.aborts.delete(a);
        r();
      };
      const t = setTimeout(done, ms);
      a.signal.addEventListener('abort', done);
    });
  }

  /** A full list, page by page; returns its resourceVersion. Known objects absent from it were deleted meanwhile. */
  private async list(kind: Kind): Promise<string> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv: string;
    do {
      const req = { limit: PAGE, _continue: cont };
      const page = kind === 'pods' ? await this.api.listPodForAllNamespaces(req)
        : kind === 'services' ? await this.api.listServiceForAllNamespaces(req)
          : await this.api.listNode(req);
      for (const item of page.items ?? []) {
        const uid = this.apply(kind, 'ADDED', item);
        if (uid) seen.add(uid);
      }
      const md = page.metadata;
      rv = typeof md?.resourceVersion === 'string' && RV.test(md.resourceVersion) ? md.resourceVersion : '';
      cont = typeof md?._continue === 'string' && md._continue !== '' && md._continue.length < 4096 ? md._continue : undefined;
    } while (cont && !this.stopped);
    this.names.relisted(kind, seen, Date.now());
    if (!rv) throw new Error(`the ${kind} list has no resourceVersion to watch from`);
    this.o.log.info({ kind, objects: this.names.known(kind) }, 'Kubernetes objects listed');
    return rv;
  }

  /** One watch stream from `rv` until it ends; what it saw. */
  private watchOnce(kind: Kind, from: string): Promise<{ rv: string; gone: boolean; events: number }> {
    let rv = from;
    let gone = false;
    let events = 0;
    return new Promise((resolve, reject) => {
      const params = { allowWatchBookmarks: true, resourceVersion: from, timeoutSeconds: Math.round(this.o.limits.watch_timeout / 1000) };
      let controller: AbortController | undefined;
      let ended = false;
      const done = (err: unknown) => {
        ended = true;
        if (controller) this.aborts.delete(controller);
        if (err && !this.stopped && statusOf(err) !== 410) reject(err instanceof Error ? err : new Error(errorMessage(err)));
        else resolve({ rv, gone: gone || statusOf(err) === 410, events });
      };
      const onEvent = (type: string, obj: unknown) => {
        if (type === 'ERROR') {
          // a Status object: 410 Gone means our version is too old for the server's history
          if ((obj as { code?: unknown } | null)?.code === 410) gone = true;
          return;
        }
        const next = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          events++;
          this.apply(kind, type, obj);
        } else if (type !== 'BOOKMARK') return;
        if (typeof next === 'string' && RV.test(next)) rv = next;
      };
      this.watch.watch(PATHS[kind], params, onEvent, done).then((c: AbortController) => {
        controller = c;
        if (this.stopped) c.abort();
        else if (!ended) this.aborts.add(c);
      }, reject);
    });
  }
}

/** The names for `ctpipe process` and `ctpipe run` when `--kubernetes` is on (undefined when off). */
export async function startKubernetesNames(cfg: { kubernetes: boolean; kubeconfig?: string; k8s: K8sConfig }, log: Logger, registry: Registry): Promise<K8sWatcher | undefined> {
  if (!cfg.kubernetes) return undefined;
  const w = new K8sWatcher({ kubeconfig: cfg.kubeconfig, limits: cfg.k8s, log, registry });
  const ready = await w.start();
  if (ready) log.info({ pods: w.names.known('pods'), services: w.names.known('services'), nodes: w.names.known('nodes') }, 'Kubernetes names: watching pods, services and nodes');
  else log.warn('Kubernetes names: the first lists did not finish in 10 s; processing starts, and rows name addresses once they arrive');
  return w;
}
