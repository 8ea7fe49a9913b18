/**
 * Handshake failures and scans, from finished lifecycles (flow rows), per host in tumbling windows
 * of event time (`windowS`, by when each lifecycle ended: rows arrive in that order, while their
 * start times lag by up to a flow's timeout): per source address, connections that never
 * got a reply (conn_state S0), refused ones (REJ), and the distinct destination ports and hosts it
 * tried. A window whose worst source passes a threshold opens (or continues) the host's anomaly of
 * that kind; the sources over the threshold are its evidence, with sample flow ids.
 *
 * kinds: `handshake_failures` (S0 burst), `rej_storm`, `port_scan` (many ports), `host_scan`
 * (many destinations). Rows arrive when lifecycles end, so an S0 burst shows once the kernel (or
 * the engine's timeout) closes those flows: after nf_conntrack_tcp_timeout_syn_sent (120 s). A
 * flow the kernel never reports destroyed (its garbage collector can take a minute) is closed by
 * the engine `grace` after its timeout, dated at the timeout: so a window is judged only `lateS`
 * after it ends, and rows later than that are counted as too late.
 */
import type { FlowRow, Time } from '../lifecycle/flow-row.js';
import { versionOf, type AnomalyRow } from './row.js';

export interface ScanOptions {
  windowS: number;
  s0: number;
  rej: number;
  ports: number;
  hosts: number;
  /** Clear windows in a row before an anomaly closes. */
  closeAfter: number;
  /** How long after its end a window waits for late rows before it is judged. */
  lateS: number;
}

/**
 * A source's rows in one window. Its distinct ports and hosts, and its sample flows, are kept as the
 * one value until a second comes: a flood or a DESTROY storm brings a new source per row, and two
 * Sets and an array for each were a fifth of the detectors' time and much of the garbage.
 */
class Source {
  /** Rows of this source in the window. */
  n = 1;
  s0 = 0;
  rej = 0;
  ports: number | Set<number>;
  hosts: string | Set<string>;
  flows: string | string[];
  /** When it came in its window (order of arrival: the order anomalies list sources and flows in). */
  readonly seq: number;

  /**
   * V8 holds a class's full instance shape (its fields added one by one) only from its instances;
   * when the last one dies (a detector dropped, every window judged) a full GC frees the shape and
   * throws away the optimized code that knew it: each detector then ran unoptimized for a while
   * (the `scans` bench: 50 -> 200 ns a row). One instance of each, in the fields' general forms, keeps them.
   */
  static readonly shape = Object.assign(new Source(-1, 0, '', ''), { ports: new Set<number>(), hosts: new Set<string>(), flows: [] as string[] });

  constructor(seq: number, port: number, host: string, flow: string) {
    this.seq = seq;
    this.ports = port;
    this.hosts = host;
    this.flows = flow;
  }
}

const sizeOf = (v: number | string | Set<unknown>): number => (typeof v === 'object' ? v.size : 1);
const flowsOf = (s: Source): string[] => (typeof s.flows === 'string' ? [s.flows] : s.flows);
/** A saved list back to the lazy form: one value as itself. */
const lazy = <T>(xs: T[]): T | Set<T> => (xs.length === 1 ? xs[0]! : new Set(xs));
const bySeq = (a: [string, Source], b: [string, Source]): number => a[1].seq - b[1].seq;

/**
 * Sources followed at most per window and host. A flood from spoofed addresses (a million
 * sources, a flow each) would otherwise hold a million records until its window is judged; past
 * the bound the sources with the fewest rows so far are forgotten (thin), never one that could be
 * near a threshold (those have many rows), so memory stays bounded and scanners still show.
 */
export const MAX_SOURCES = 20_000;

/**
 * A window's sources, spread over SHARDS maps by a hash of the address once there are SPLIT_AT of
 * them. V8's Map costs about 30 ns an insert up to a few thousand entries, and 150 to 300 ns past
 * that: in a flood every row inserts, and one map of up to 20,000 sources was most of the detector's
 * cost per row. Fewer sources (normal traffic) stay in one map, with no hash to compute per row.
 * Arrival order, which one map kept, is each source's seq.
 */
const SHARDS = 16;
const SPLIT_AT = 2048;

/** Which shard: a multiplicative hash of the address's last (most varied) characters. */
function shardOf(src: string): number {
  let h = src.length;
  for (let i = Math.max(0, src.length - 6); i < src.length; i++) h = Math.imul(h ^ src.charCodeAt(i), 0x9e3779b1);
  return (h >>> 28) & (SHARDS - 1);
}

class Sources {
  /** See Source.shape. */
  static readonly shape = new Sources();
  shards: Map<string, Source>[] = [new Map()];
  size = 0;
  /** The seq the next source gets. */
  private seq = 0;

  /** The map a source is (or goes) in. */
  private mapOf(src: string): Map<string, Source> {
    return this.shards.length === 1 ? this.shards[0]! : this.shards[shardOf(src)]!;
  }

  private static empty(): Map<string, Source>[] {
    const out: Map<string, Source>[] = [];
    for (let i = 0; i < SHARDS; i++) out.push(new Map());
    return out;
  }

  /** Whether the last at() made its source (its first row, counted in it already). */
  made = false;

  /** A row of this source: its record, made with the row's values if new (the window thinned first when full). */
  at(src: string, port: number, host: string, flow: string): Source {
    let s = this.mapOf(src).get(src);
    this.made = !s;
    if (s) return s;
    if (this.size >= MAX_SOURCES) this.thin();
    else if (this.size === SPLIT_AT && this.shards.length === 1) this.split();
    this.mapOf(src).set(src, (s = new Source(this.seq++, port, host, flow)));
    this.size++;
    return s;
  }

  /** A saved source, in the order saved. */
  restore(src: string, x: Omit<Source, 'seq'>): void {
    const s = new Source(this.seq++, 0, '', '');
    Object.assign(s, x);
    if (this.size === SPLIT_AT && this.shards.length === 1) this.split();
    this.mapOf(src).set(src, s);
    this.size++;
  }

  /** In order of arrival, as one map would list them. */
  list(): [string, Source][] {
    const out: [string, Source][] = [];
    for (const m of this.shards) m.forEach((s, src) => out.push([src, s]));
    return out.sort(bySeq);
  }

  /** One map into SHARDS. */
  private split(): void {
    const into = Sources.empty();
    this.shards[0]!.forEach((s, src) => into[shardOf(src)]!.set(src, s));
    this.shards = into;
  }

  /**
   * Keeps the sources with the most rows, those past the smallest cut (1, then 2, 4, ...) that
   * frees half the bound. Copied, not deleted in place: in a flood every source goes, and deleting
   * 20,000 keys one by one (the maps shrinking as they empty) cost more than the rows that filled them.
   */
  private thin(): void {
    for (let cut = 1; ; cut *= 2) {
      const kept = Sources.empty();
      for (const m of this.shards) {
        m.forEach((s, src) => { // no [key, value] pair made per entry
          if (s.n > cut) kept[shardOf(src)]!.set(src, s);
        });
      }
      let size = 0;
      for (const k of kept) size += k.size;
      if (size <= MAX_SOURCES / 2) {
        this.shards = kept;
        this.size = size;
        return;
      }
    }
  }
}

/** No anomaly rows: shared by the calls (one a flow row) that return none; frozen, so no caller can add to it. */
export const NONE = Object.freeze([]) as unknown as AnomalyRow[];

const listOf = <T>(v: T | Set<T>): T[] => (v instanceof Set ? [...v] : [v]);

type Kind = 'handshake_failures' | 'rej_storm' | 'port_scan' | 'host_scan';
const KINDS: Kind[] = ['handshake_failures', 'rej_storm', 'port_scan', 'host_scan'];

interface Open {
  startedAt: Time;
  peak: number;
  clear: number;
  sources: Record<string, number>;
  flows: string[];
}

interface HostState {
  /** The next window to judge; the rows of windows not judged yet, per source. */
  next: number;
  windows: Map<number, Sources>;
  /** Latest event time seen (s), and rows that came after their window was judged. */
  now: number;
  late: number;
  open: Partial<Record<Kind, Open>>;
  /** The window the last row went to, and its sources (rows come in runs of one window): not saved. */
  lastW?: number;
  lastM?: Sources;
}

type SavedSource = [string, Omit<Source, 'ports' | 'hosts' | 'n' | 'flows' | 'seq'> & { n?: number; ports: number[]; hosts: string[]; flows: string[] }];
export type ScanState = [string, { next: number; windows: [number, SavedSource[]][]; now: number; late: number; open: HostState['open'] }][];

export class ScanDetector {
  private readonly hosts = new Map<string, HostState>();
  /** The last row's host and its state: a partition's rows come in runs of one host. */
  private lastHost: string | undefined;
  private lastH: HostState | undefined;

  constructor(private readonly o: ScanOptions) {}

  exportState(): ScanState {
    return [...this.hosts].map(([host, h]) => [host, {
      next: h.next, now: h.now, late: h.late, open: h.open,
      windows: [...h.windows].map(([w, m]) => [w, m.list().map(([src, x]): SavedSource => [src, { n: x.n, s0: x.s0, rej: x.rej, ports: listOf(x.ports), hosts: listOf(x.hosts), flows: flowsOf(x) }])]),
    }]);
  }

  importState(st: ScanState): void {
    this.lastHost = this.lastH = undefined;
    for (const [host, h] of st) {
      if (!('windows' in h)) continue; // a checkpoint from before late rows were kept: start afresh
      const windows = new Map<number, Sources>();
      for (const [w, m] of h.windows) {
        const sources = new Sources();
        for (const [src, x] of m) {
          sources.restore(src, { ...x, n: x.n ?? x.s0 + x.rej, ports: lazy(x.ports), hosts: lazy(x.hosts), flows: x.flows.length === 1 ? x.flows[0]! : x.flows });
        }
        windows.set(w, sources);
      }
      this.hosts.set(host, { next: h.next, now: h.now, late: h.late, open: h.open, windows });
    }
  }

  /** A flow row (final rows only); returns anomaly rows when windows of this host are judged. */
  onFlow(r: FlowRow): AnomalyRow[] {
    if (r.end_reason === 'open') return NONE;
    const sec = (r.ended_at ?? r.first_seen).sec;
    const w = Math.floor(sec / this.o.windowS);
    let h = r.host === this.lastHost ? this.lastH : this.hosts.get(r.host);
    if (!h) this.hosts.set(r.host, (h = { next: w, windows: new Map(), now: sec, late: 0, open: {} }));
    this.lastHost = r.host;
    this.lastH = h;
    if (w < h.next) {
      h.late++;
    } else {
      let m = h.lastW === w ? h.lastM : h.windows.get(w);
      if (!m) h.windows.set(w, (m = new Sources()));
      h.lastW = w;
      h.lastM = m;
      const s = m.at(r.orig_src, r.orig_dport, r.orig_dst, r.flow_id);
      if (!m.made) {
        s.n++;
        // written out per field (not one generic helper): each stays monomorphic, and a field is
        // only written when its form changes
        const ports = s.ports;
        if (typeof ports === 'number') {
          if (ports !== r.orig_dport && this.o.ports >= 1) s.ports = new Set([ports, r.orig_dport]);
        } else if (ports.size <= this.o.ports) ports.add(r.orig_dport);
        const hosts = s.hosts;
        if (typeof hosts === 'string') {
          if (hosts !== r.orig_dst && this.o.hosts >= 1) s.hosts = new Set([hosts, r.orig_dst]);
        } else if (hosts.size <= this.o.hosts) hosts.add(r.orig_dst);
        if (typeof s.flows === 'string') s.flows = [s.flows, r.flow_id];
        else if (s.flows.length < 5) s.flows.push(r.flow_id);
      }
      if (r.conn_state === 'S0') s.s0++;
      if (r.conn_state === 'REJ') s.rej++;
    }
    return this.advanceTo(r.host, h, sec);
  }

  /**
   * Event time moved on for a host (its statistics arrive every interval, flows or not): windows
   * past their wait are judged, so an anomaly closes even when no more flows come.
   */
  advance(host: string, t: Time): AnomalyRow[] {
    const h = this.hosts.get(host);
    return h ? this.advanceTo(host, h, t.sec) : [];
  }

  private advanceTo(host: string, h: HostState, sec: number): AnomalyRow[] {
    if (sec > h.now) h.now = sec;
    const last = Math.floor((h.now - this.o.lateS) / this.o.windowS) - 1; // the last window past its wait
    if (h.next > last) return NONE; // most rows: nothing to judge, and no array made for it
    const out: AnomalyRow[] = [];
    // Each window is judged in turn (empty ones count as clear) while anything is open; with nothing
    // open, the judging skips ahead to the next window that holds rows.
    while (h.next <= last) {
      out.push(...this.closeWindow(host, h, h.next, h.windows.get(h.next) ?? new Sources()));
      h.windows.delete(h.next);
      if (h.lastW === h.next) h.lastW = h.lastM = undefined; // its sources go now, not at the next row
      h.next++;
      if (Object.keys(h.open).length === 0) h.next = Math.min(last + 1, ...[...h.windows.keys()]);
    }
    return out;
  }

  private closeWindow(host: string, h: HostState, w: number, sources: Sources): AnomalyRow[] {
    const end: Time = { sec: (w + 1) * this.o.windowS, nsec: 0 };
    const measure: Record<Kind, (s: Source) => number> = {
      handshake_failures: (s) => s.s0, rej_storm: (s) => s.rej, port_scan: (s) => sizeOf(s.ports), host_scan: (s) => sizeOf(s.hosts),
    };
    const limit: Record<Kind, number> = { handshake_failures: this.o.s0, rej_storm: this.o.rej, port_scan: this.o.ports, host_scan: this.o.hosts };
    // one pass over the sources for all four kinds (a flood's window holds up to 20,000), then the
    // few over a threshold in order of arrival
    const overs: Record<Kind, [string, Source][]> = { handshake_failures: [], rej_storm: [], port_scan: [], host_scan: [] };
    for (const m of sources.shards) {
      m.forEach((s, src) => {
        if (s.s0 >= limit.handshake_failures) overs.handshake_failures.push([src, s]);
        if (s.rej >= limit.rej_storm) overs.rej_storm.push([src, s]);
        if (sizeOf(s.ports) >= limit.port_scan) overs.port_scan.push([src, s]);
        if (sizeOf(s.hosts) >= limit.host_scan) overs.host_scan.push([src, s]);
      });
    }
    const out: AnomalyRow[] = [];
    for (const kind of KINDS) {
      const over = overs[kind].sort(bySeq);
      let a = h.open[kind];
      if (over.length) {
        let worst = -Infinity;
        for (const [, s] of over) worst = Math.max(worst, measure[kind](s));
        if (!a) h.open[kind] = a = { startedAt: { sec: w * this.o.windowS, nsec: 0 }, peak: 0, clear: 0, sources: {}, flows: [] };
        a.peak = Math.max(a.peak, worst);
        a.clear = 0;
        for (const [src, s] of over) {
          a.sources[src] = Math.max(a.sources[src] ?? 0, measure[kind](s));
          for (const f of flowsOf(s)) if (a.flows.length < 20) a.flows.push(f);
        }
      } else if (a) {
        a.clear++;
      }
      if (!a) continue;
      const closed = a.clear >= this.o.closeAfter;
      out.push({
        host, kind, severity: a.peak >= 10 * limit[kind] ? 'critical' : 'warning', started_at: a.startedAt, ended_at: closed ? end : null,
        score: a.peak / limit[kind], baseline: limit[kind], observed: a.peak,
        details: { window_s: this.o.windowS, late_rows: h.late, sources: Object.entries(a.sources).sort((x, y) => y[1] - x[1]).slice(0, 10).map(([src, n]) => ({ src, n })) },
        flow_ids: a.flows, version: versionOf(end),
      });
      if (closed) delete h.open[kind];
    }
    return out;
  }
}
