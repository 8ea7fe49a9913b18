/**
 * Every network namespace of a host in one collector (`collect.netns` all or containers): one
 * Collector (its own sockets, start dump, resyncs and loss accounting) per namespace, all writing
 * to one sink under one Stamper, so the run's sequence stays gap-free across namespaces and each
 * record says its namespace (`netns`). A scan every `intervalMs` picks up namespaces created since
 * and lets go of removed ones (a poll rather than inotify: /run/netns entries are bind mounts that
 * inotify reports before the mount is in place, and /proc has no inotify at all).
 *
 * - `all`: every named namespace, the nsfs mounts under /run/netns (as `ip netns` makes them).
 * - `containers`: those and the namespaces of running processes (/proc/PID/ns/net), the host's own
 *   among them, deduplicated by inode.
 *
 * A namespace is named by its entry under /run/netns, else `inode:N`. Entering one (setns) needs
 * CAP_SYS_ADMIN besides CAP_NET_ADMIN: checked at start (requireSysAdmin).
 */
import { readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CtpipeError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { Collector, type CollectorOptions } from './collector.js';
import type { NetnsMetrics } from './netns-metrics.js';

export const NETNS_MODES = ['all', 'containers'] as const;
export type NetnsMode = (typeof NETNS_MODES)[number];

/** The follow mode `collect.netns` asks for, or undefined for one namespace (a path, or none). */
export function netnsMode(netns: string | undefined): NetnsMode | undefined {
  return (NETNS_MODES as readonly string[]).includes(netns ?? '') ? (netns as NetnsMode) : undefined;
}

export interface NamespaceRef {
  /** Its name under /run/netns, else `inode:N`. */
  name: string;
  /** A path that enters it now; undefined for the collector's own namespace (no setns needed). */
  path: string | undefined;
  /** Device and inode of the nsfs file: a namespace's identity while it lives. */
  id: string;
}

/** What discovery reads; tests give their own. */
export interface NetnsFs {
  list(dir: string): string[];
  /** Device and inode, or undefined when the file is gone or not an nsfs file (a mount not yet in place). */
  nsId(file: string): { dev: number; ino: number } | undefined;
}

const NSFS_MAGIC = 0x6e736673;

export const realNetnsFs: NetnsFs = {
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return []; // no /run/netns: no named namespace yet
    }
  },
  nsId: (file) => {
    try {
      if (statfsSync(file).type !== NSFS_MAGIC) return undefined;
      const st = statSync(file);
      return { dev: st.dev, ino: st.ino };
    } catch {
      return undefined; // gone, or a process we may not look into
    }
  },
};

export const RUN_NETNS = '/run/netns';

/** The namespaces to follow now, named ones first (a named namespace a process also holds keeps its name). */
export function discoverNamespaces(mode: NetnsMode, fs: NetnsFs = realNetnsFs, runNetns = RUN_NETNS): NamespaceRef[] {
  const own = fs.nsId('/proc/self/ns/net');
  const found = new Map<string, NamespaceRef>();
  const add = (file: string, name: (ino: number) => string) => {
    const st = fs.nsId(file);
    if (!st) return;
    const id = `${st.dev}:${st.ino}`;
    if (found.has(id)) return;
    const mine = own !== undefined && own.dev === st.dev && own.ino === st.ino;
    found.set(id, { name: name(st.ino), path: mine ? undefined : file, id });
  };
  for (const n of fs.list(runNetns).sort()) add(path.join(runNetns, n), () => n);
  if (mode === 'containers') {
    for (const pid of fs.list('/proc')) {
      if (/^\d+$/.test(pid)) add(`/proc/${pid}/ns/net`, (ino) => `inode:${ino}`);
    }
  }
  return [...found.values()];
}

const CAP_SYS_ADMIN = 21;

/** Fails with NETNS_UNAVAILABLE, before anything starts, when this process cannot enter other namespaces. */
export function requireSysAdmin(mode: NetnsMode, status = readFileSync('/proc/self/status', 'utf8')): void {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (m && ((BigInt(`0x${m[1]}`) >> BigInt(CAP_SYS_ADMIN)) & 1n) === 1n) return;
  throw new CtpipeError('NETNS_UNAVAILABLE',
    `--netns ${mode} enters every network namespace (setns), which needs CAP_SYS_ADMIN as well as CAP_NET_ADMIN, and this process lacks it. ` +
    'Grant both (systemd AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_ADMIN, docker/compose cap_add: [NET_ADMIN, SYS_ADMIN], ' +
    'Kubernetes securityContext.capabilities.add: [NET_ADMIN, SYS_ADMIN] with hostPID for containers), or run one collector per namespace ' +
    'inside it (ip netns exec NAME ctpipe collect), which needs CAP_NET_ADMIN only');
}

export interface FollowerOptions {
  mode: NetnsMode;
  /** How often to look for new and removed namespaces. */
  intervalMs: number;
  /** The options every namespace's Collector shares (sink, stamper, sockets, metrics...). */
  collector: Omit<CollectorOptions, 'netns' | 'netnsName' | 'netnsMetrics'>;
  metrics: NetnsMetrics;
  log: Logger;
  fs?: NetnsFs;
  runNetns?: string;
  /** Called for each namespace picked up, before its collector starts (the sysctl report). */
  onNamespace?: (ns: NamespaceRef, log: Logger) => void;
}

interface Followed {
  ref: NamespaceRef;
  collector: Collector;
  log: Logger;
}

export class NetnsFollower {
  private readonly followed = new Map<string, Followed>();
  /** Namespaces that could not be entered, by id: tried again only once gone and back. */
  private readonly failed = new Set<string>();
  private timer?: NodeJS.Timeout;
  private scanning: Promise<void> = Promise.resolve();
  private stopped = false;
  lastError: string | undefined;

  constructor(private readonly o: FollowerOptions) {}

  get run(): string {
    return this.o.collector.stamper.run;
  }

  get lastSeq(): number {
    return this.o.collector.stamper.lastSeq;
  }

  get healthy(): boolean {
    return [...this.followed.values()].every((f) => f.collector.healthy);
  }

  get heldEvents(): number {
    return this.sum((c) => c.heldEvents);
  }

  get waitingBytes(): number {
    return this.sum((c) => c.waitingBytes);
  }

  /** A count over every followed namespace's collector. */
  private sum(of: (c: Collector) => number): number {
    let n = 0;
    for (const f of this.followed.values()) n += of(f.collector);
    return n;
  }

  /** The names of the namespaces followed now. */
  get namespaces(): string[] {
    return [...this.followed.values()].map((f) => f.ref.name);
  }

  async start(): Promise<void> {
    this.scanning = this.scan(); // a stop meanwhile waits for it
    await this.scanning;
    this.o.log.info({ mode: this.o.mode, namespaces: this.namespaces }, `following ${this.followed.size} network namespaces (--netns ${this.o.mode}); new ones are picked up every ${this.o.intervalMs} ms`);
    this.timer = setInterval(() => {
      this.scanning = this.scanning.then(() => this.scan()).catch((e: unknown) => this.o.log.error({ err: errorMessage(e) }, 'network namespace scan failed'));
    }, this.o.intervalMs);
  }

  private async scan(): Promise<void> {
    if (this.stopped) return;
    const now = discoverNamespaces(this.o.mode, this.o.fs, this.o.runNetns);
    const ids = new Set(now.map((n) => n.id));
    for (const id of this.failed) if (!ids.has(id)) this.failed.delete(id);
    for (const [id, f] of this.followed) if (!ids.has(id)) await this.letGo(id, f);
    for (const ref of now) {
      if (this.stopped) return;
      if (!this.followed.has(ref.id) && !this.failed.has(ref.id)) await this.follow(ref);
    }
    this.o.metrics.followed.set(this.followed.size);
  }

  private async follow(ref: NamespaceRef): Promise<void> {
    const log = this.o.log.child({ netns: ref.name });
    // processingNice 0: favorReaders knows one collector's readers and would lower the others'
    // (and readers started later inherit the lowered value), so with several namespaces it is off
    const collector = new Collector({ ...this.o.collector, processingNice: 0, netns: ref.path, netnsName: ref.name, netnsMetrics: this.o.metrics, log });
    try {
      this.o.onNamespace?.(ref, log);
      await collector.start();
    } catch (e) {
      // gone between the scan and the start, or not ours to enter: said once, counted, not retried
      await collector.stop().catch(() => undefined);
      this.failed.add(ref.id);
      this.o.metrics.failed.inc();
      this.lastError = `network namespace ${ref.name}: ${errorMessage(e)}`;
      log.warn({ err: errorMessage(e), path: ref.path }, `cannot follow the network namespace ${ref.name}: ${errorMessage(e)}`);
      return;
    }
    this.followed.set(ref.id, { ref, collector, log });
    this.o.metrics.added.inc();
    this.o.metrics.up.set({ netns: ref.name }, 1);
    // zero from the start, so "no loss" is a value a query sees, not a missing series
    for (const c of [this.o.metrics.events, this.o.metrics.lost, this.o.metrics.enobufs]) c.inc({ netns: ref.name }, 0);
    log.info({ path: ref.path ?? '(own)', id: ref.id }, `following the network namespace ${ref.name}`);
  }

  private async letGo(id: string, f: Followed): Promise<void> {
    this.followed.delete(id);
    await f.collector.stop();
    const m = this.o.metrics;
    const netns = f.ref.name;
    m.removed.inc();
    // the namespace's series go with it (containers come and go: the label set stays bounded); the
    // log line keeps its totals
    for (const g of [m.up, m.events, m.lost, m.enobufs]) g.remove({ netns });
    this.o.collector.metrics.conntrack.forget(netns);
    f.log.info({ ...f.collector.totals }, `let go of the network namespace ${netns}: it was removed`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    await this.scanning.catch(() => undefined);
    await Promise.all([...this.followed.values()].map((f) => f.collector.stop()));
  }
}
