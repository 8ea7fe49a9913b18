/**
 * The scan detector as it was before its sources were sharded (processor/anomaly/scans.ts at
 * 498a516, one Map of sources per window): the reference test/unit/scans-sharded.test.ts holds the
 * current detector to, row for row. Not used by ctpipe.
 */
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
import type { FlowRow, Time } from '../../../processor/lifecycle/flow-row.js';
import { versionOf, type AnomalyRow } from '../../../processor/anomaly/row.js';

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
interface Source {
  /** Rows of this source in the window. */
  n: number;
  s0: number;
  rej: number;
  ports: number | Set<number>;
  hosts: string | Set<string>;
  flows: string | string[];
}

const sizeOf = (v: number | string | Set<unknown>): number => (typeof v === 'object' ? v.size : 1);
const flowsOf = (s: Source): string[] => (typeof s.flows === 'string' ? [s.flows] : s.flows);
/** A saved list back to the lazy form: one value as itself. */
const lazy = <T>(xs: T[]): T | Set<T> => (xs.length === 1 ? xs[0]! : new Set(xs));

/**
 * Sources followed at most per window and host. A flood from spoofed addresses (a million
 * sources, a flow each) would otherwise hold a million records until its window is judged; past
 * the bound the sources with the fewest rows so far are forgotten (thin), never one that could be
 * near a threshold (those have many rows), so memory stays bounded and scanners still show.
 */
const MAX_SOURCES = 20_000;

/**
 * The sources with the most rows, those past the smallest cut (1, then 2, 4, ...) that frees half
 * the bound. Copied, not deleted in place: in a flood every source goes, and deleting 20,000 keys
 * one by one (the map shrinking as it empties) cost more than the rows that filled it.
 */
function thin(m: Map<string, Source>): Map<string, Source> {
  for (let cut = 1; ; cut *= 2) {
    const kept = new Map<string, Source>();
    m.forEach((s, src) => { // no [key, value] pair made per entry
      if (s.n > cut) kept.set(src, s);
    });
    if (kept.size <= MAX_SOURCES / 2) return kept;
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
  windows: Map<number, Map<string, Source>>;
  /** Latest event time seen (s), and rows that came after their window was judged. */
  now: number;
  late: number;
  open: Partial<Record<Kind, Open>>;
  /** The window the last row went to, and its sources (rows come in runs of one window): not saved. */
  lastW?: number;
  lastM?: Map<string, Source>;
}

type SavedSource = [string, Omit<Source, 'ports' | 'hosts' | 'n' | 'flows'> & { n?: number; ports: number[]; hosts: string[]; flows: string[] }];
export type ScanState = [string, { next: number; windows: [number, SavedSource[]][]; now: number; late: number; open: HostState['open'] }][];

export class ReferenceScanDetector {
  private readonly hosts = new Map<string, HostState>();
  /** The last row's host and its state: a partition's rows come in runs of one host. */
  private lastHost: string | undefined;
  private lastH: HostState | undefined;

  constructor(private readonly o: ScanOptions) {}

  exportState(): ScanState {
    return [...this.hosts].map(([host, h]) => [host, {
      next: h.next, now: h.now, late: h.late, open: h.open,
      windows: [...h.windows].map(([w, m]) => [w, [...m].map(([src, x]): SavedSource => [src, { ...x, ports: listOf(x.ports), hosts: listOf(x.hosts), flows: flowsOf(x) }])]),
    }]);
  }

  importState(st: ScanState): void {
    this.lastHost = this.lastH = undefined;
    for (const [host, h] of st) {
      if (!('windows' in h)) continue; // a checkpoint from before late rows were kept: start afresh
      const windows = new Map(h.windows.map(([w, m]) => [w, new Map(m.map(([src, x]): [string, Source] => [src, {
        ...x, n: x.n ?? x.s0 + x.rej, ports: lazy(x.ports), hosts: lazy(x.hosts), flows: x.flows.length === 1 ? x.flows[0]! : x.flows,
      }]))]));
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
      if (!m) h.windows.set(w, (m = new Map()));
      h.lastW = w;
      h.lastM = m;
      let s = m.get(r.orig_src);
      if (!s) {
        if (m.size >= MAX_SOURCES) h.windows.set(w, (h.lastM = m = thin(m)));
        m.set(r.orig_src, (s = { n: 1, s0: 0, rej: 0, ports: r.orig_dport, hosts: r.orig_dst, flows: r.flow_id }));
      } else {
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
      out.push(...this.closeWindow(host, h, h.next, h.windows.get(h.next) ?? new Map()));
      h.windows.delete(h.next);
      if (h.lastW === h.next) h.lastW = h.lastM = undefined; // its sources go now, not at the next row
      h.next++;
      if (Object.keys(h.open).length === 0) h.next = Math.min(last + 1, ...[...h.windows.keys()]);
    }
    return out;
  }

  private closeWindow(host: string, h: HostState, w: number, sources: Map<string, Source>): AnomalyRow[] {
    const end: Time = { sec: (w + 1) * this.o.windowS, nsec: 0 };
    const measure: Record<Kind, (s: Source) => number> = {
      handshake_failures: (s) => s.s0, rej_storm: (s) => s.rej, port_scan: (s) => sizeOf(s.ports), host_scan: (s) => sizeOf(s.hosts),
    };
    const limit: Record<Kind, number> = { handshake_failures: this.o.s0, rej_storm: this.o.rej, port_scan: this.o.ports, host_scan: this.o.hosts };
    const out: AnomalyRow[] = [];
    for (const kind of KINDS) {
      const over = [...sources].filter(([, s]) => measure[kind](s) >= limit[kind]);
      let a = h.open[kind];
      if (over.length) {
        const worst = Math.max(...over.map(([, s]) => measure[kind](s)));
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
