/**
 * Rebuilds connection lifecycles from collector records (docs/RECORDS.md). Pure: records in,
 * rows and health events out, no I/O and no wall clock: every decision that produces a row is
 * taken on event time, so replaying the same records yields the same rows (effectively-once).
 *
 * Key: (host, network namespace, zone, conntrack id, original tuple): host and namespace as one
 * scope (scope.ts); resyncs and start dumps are per scope too. The run id is not part of the key, so a flow
 * seen again in the table dump of a restarted collector continues its lifecycle instead of
 * starting a duplicate; ids are reused by the kernel, so a NEW for a key that already ended
 * starts a new generation with its own flow id.
 *
 * Delivery: per (host, run) the sequence numbers are checked: a record at or below the highest
 * seq seen is a duplicate (at-least-once delivery) and is dropped; a jump is a gap, reported.
 * Within the stream, events may still come out of order with the table dump (a DESTROY before the
 * dump row of the same flow): recently ended keys are remembered so late rows do not resurrect them.
 *
 * Storage: open lifecycles live in a FlowTable (flow-table.ts, columns in typed arrays, about 200
 * bytes per flow); ended keys are remembered by a 53-bit hash, not their text (ended-keys.ts).
 */
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { IPS_ASSURED, IPS_EXPECTED, IPS_SEEN_REPLY } from '../../contract/kernel.js';
import { closeInit } from './conn-state.js';
import { EndedKeys } from './ended-keys.js';
import type { SnapshotReader, SnapshotWriter } from '../snapshot.js';
import { rowOf, type EndReason, type FlowRow, type Lifecycle, type LostBy, type Time } from './flow-row.js';
import { scopeOf, splitScope } from './scope.js';
import { F_CLOSE_ORIG, F_CLOSE_REPLY, F_HANDSHAKE, F_LIVE, F_RELATED, F_RESYNCED, F_SNAPSHOT, FlowTable, K, keyOf, T, tupleKey } from './flow-table.js';

const TCP_ESTABLISHED = 3;

/** Kernel default timeouts (seconds) when a record carries none (nf_conntrack-sysctl.rst). */
const DEFAULT_TIMEOUT: Record<number, number> = { 6: 432000, 17: 120, 1: 30, 58: 30, 132: 432000, 47: 180 };

export type HealthKind = 'gap' | 'duplicate' | 'loss' | 'run_start';

export interface HealthEvent {
  host: string;
  run: string;
  kind: HealthKind;
  at: Time;
  /** gap: the missing seq range; loss: the count the collector reported; duplicate: records dropped. */
  count: number;
  first_seq?: number;
  last_seq?: number;
  detail: string;
}

/** Open lifecycles of every engine of a processor (one per partition) against one bound. */
export class OpenBudget {
  open = 0;
  constructor(readonly limit: number) {}
}

export interface EngineOptions {
  /** Open lifecycles kept at most; past it the oldest idle unassured ones are evicted (closed as lost). */
  maxOpen: number;
  /** Shared with the processor's other engines: the bound is then for all of them. */
  budget?: OpenBudget;
  /** Open flows get a refreshed row at this event-time interval (ms) while they change. */
  refreshMs: number;
  /** Extra event time (ms) past a flow's kernel timeout before it is closed as lost. */
  graceMs: number;
  onRow: (row: FlowRow) => void;
  onHealth: (h: HealthEvent) => void;
}

export interface EngineCounters {
  records: number;
  duplicates: number;
  late: number;
  evictions: number;
  /** Evicted lifecycles an event brought back (to give them their true end). */
  revived: number;
  lostByTimeout: number;
  rows: number;
}

export { tupleKey };

/** 64-bit FNV-1a-style hash of a string, as two 32-bit halves: stable across processes and replays. */
const H = new Uint32Array(2);
function hash64(s: string): Uint32Array {
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193);
  }
  H[0] = h1;
  H[1] = h2;
  return H;
}

/** (aSec, aNsec) later than (bSec, bNsec); nanoseconds may exceed a second (sums). */
function after(aSec: number, aNsec: number, bSec: number, bNsec: number): boolean {
  const a = aSec + Math.floor(aNsec / 1e9);
  const b = bSec + Math.floor(bNsec / 1e9);
  return a > b || (a === b && aNsec % 1e9 > bNsec % 1e9);
}

/**
 * Refresh rows made at most per tick: a million long-lived flows come of refresh age together
 * (after a restart, or a table dump), and one tick must not make a million rows at once.
 */
const REFRESH_PER_TICK = 20_000;

/** What an evicted lifecycle leaves for its true end (see LifecycleEngine.evicted). */
interface Evicted {
  hi: number;
  lo: number;
  generation: number;
  events: number;
  firstSec: number;
  firstNsec: number;
}

/** A checkpoint's ended keys: before version 2 the key text and its lifecycle; now hash -> generation. */
export type EndedEntry = [number, number] | [string, { generation: number }];

/** Everything the engine knew, as checkpoints stored it before binary snapshots (still loaded). */
export interface EngineState {
  open: Lifecycle[];
  ended: EndedEntry[];
  byTuple: [string, string][];
  maxSeq: [string, number][];
  watermark: [string, Time][];
}

export class LifecycleEngine {
  private readonly t = new FlowTable();
  /** Ended keys (for late rows and id reuse): key hash -> generation, bounded by maxOpen. */
  private readonly ended: EndedKeys;
  /** host|zone|orig tuple -> flow id of the newest helper lifecycle with that tuple (RELATED masters). */
  private readonly byTuple = new Map<string, string>();
  /** Highest seq per host|run; boxed so the current run's entry is held across records. */
  private readonly maxSeq = new Map<string, { seq: number }>();
  private curHost = '';
  private curRun = '';
  private cur: { seq: number } | undefined;
  /** Latest event time per host (updated in place; copy before keeping it). */
  private readonly watermark = new Map<string, Time>();
  private curWm: Time | undefined;
  /** Where the next tick's refreshes begin (see REFRESH_PER_TICK). */
  private refreshFrom = 0;
  /**
   * Resyncs under way, per host: open slot -> seq of the loss record (with resync) since which it
   * has had no event. An event or a snapshot row confirms the flow (marked resynced); the dump's
   * `dump_end` closes those still waiting from before the dump began: they ended unseen.
   */
  private readonly resync = new Map<string, Map<number, number>>();
  /**
   * Per host, the first seq of its current run and the last event time before it: the flows a new
   * run's start dump no longer holds ended while nothing watched (lost_by `downtime`), unlike those
   * a resync after a kernel overrun closes.
   */
  private readonly runStart = new Map<string, { seq: number; before?: Time }>();
  /** Host -> the scopes of its namespaces that have held flows (a new run arms them all; ticks close them). */
  private readonly scopes = new Map<string, Set<string>>();
  /**
   * Evicted lifecycles by key (53 bits of its hash): what a later event of the flow needs to give
   * it its true end under the same flow id and first_seen, so that its row replaces the lost one.
   * Evictions are rare, so a Map; bounded, the oldest forgotten first.
   */
  private readonly evicted = new Map<number, Evicted>();
  private readonly budget: OpenBudget;
  readonly counters: EngineCounters = { records: 0, duplicates: 0, late: 0, evictions: 0, lostByTimeout: 0, rows: 0, revived: 0 };

  constructor(private readonly o: EngineOptions) {
    this.ended = new EndedKeys(o.maxOpen);
    this.budget = o.budget ?? new OpenBudget(o.maxOpen);
  }

  get openCount(): number {
    return this.t.size;
  }

  /** This engine's open flows leave the shared budget (its partition moved away). */
  dispose(): void {
    this.budget.open -= this.t.size;
  }

  /** Bytes held in the open-flow table's typed arrays (outside the JS heap). */
  get tableBytes(): number {
    return this.t.typedBytes();
  }

  /** Applies a record; false when it was a duplicate and was dropped. */
  apply(r: CtpipeRecord): boolean {
    this.counters.records++;
    if (r.host !== this.curHost || r.run !== this.curRun || !this.cur) {
      this.curHost = r.host;
      this.curRun = r.run;
      this.cur = this.maxSeq.get(`${r.host}|${r.run}`);
      this.curWm = this.watermark.get(r.host);
    }
    const cur = this.cur;
    if (cur === undefined) {
      const at = { sec: r.sec, nsec: r.nsec };
      this.o.onHealth({ host: r.host, run: r.run, kind: 'run_start', at, count: 0, first_seq: r.seq, detail: `first seq ${r.seq}` });
      if (r.seq > 1) this.gap(r.host, r.run, at, 1, r.seq - 1);
      this.maxSeq.set(`${r.host}|${r.run}`, (this.cur = { seq: r.seq }));
      // A new run of a host whose flows are open (the collector or `ctpipe run` restarted): its
      // start dump confirms the flows the kernel still holds; those it lacks ended unseen meanwhile.
      const before = this.watermark.get(r.host);
      // Armed as of just before this record, which may be the dump's first row (it then confirms its flow);
      // each namespace's own start dump decides for its flows.
      for (const scope of [r.host, ...(this.scopes.get(r.host) ?? [])]) {
        this.runStart.set(scope, { seq: r.seq - 1, before: before && { ...before } });
        this.armResync(scope, r.seq - 1, true);
      }
    } else if (r.seq <= cur.seq) {
      this.counters.duplicates++;
      return false;
    } else {
      if (r.seq > cur.seq + 1) this.gap(r.host, r.run, { sec: r.sec, nsec: r.nsec }, cur.seq + 1, r.seq - 1);
      cur.seq = r.seq;
    }
    const wm = this.curWm;
    if (!wm) this.watermark.set(r.host, (this.curWm = { sec: r.sec, nsec: r.nsec }));
    else if (r.sec > wm.sec || (r.sec === wm.sec && r.nsec > wm.nsec)) {
      wm.sec = r.sec;
      wm.nsec = r.nsec;
    }
    switch (r.type) {
      case 'new': case 'update': case 'destroy': case 'snapshot':
        this.applyFlow(r);
        break;
      case 'loss':
        this.o.onHealth({ host: r.host, run: r.run, kind: 'loss', at: { sec: r.sec, nsec: r.nsec }, count: r.count, first_seq: r.first_seq, last_seq: r.last_seq,
          detail: `${r.netns ? `netns ${r.netns}: ` : ''}${r.source}: ${r.reason}` });
        if (r.resync) this.armResync(scopeOf(r.host, r.netns), r.seq);
        break;
      case 'dump_end':
        this.finishResync(scopeOf(r.host, r.netns), r.start_seq, { sec: r.sec, nsec: r.nsec });
        break;
      default:
        break; // stats, expectations and INVALID samples are for the detectors
    }
    return true;
  }

  /** `restart`: a new run; its dump decides for every open flow, those already waiting included. */
  private armResync(scope: string, seq: number, restart = false): void {
    const t = this.t;
    const h = t.intern(scope);
    let waiting = this.resync.get(scope);
    for (let s = 0; s < t.top; s++) {
      if (!t.live(s) || t.hostIdx[s] !== h || (!restart && waiting?.has(s))) continue;
      if (!waiting) this.resync.set(scope, (waiting = new Map()));
      waiting.set(s, seq);
    }
  }

  private finishResync(scope: string, dumpStartSeq: number, at: Time): void {
    const waiting = this.resync.get(scope);
    if (!waiting) return;
    const start = this.runStart.get(scope);
    let down = 0;
    for (const [s, since] of waiting) {
      if (since >= dumpStartSeq) continue;
      const downtime = since === start?.seq;
      if (downtime) down++;
      this.close(s, 'lost', at, downtime ? 'downtime' : 'resync'); // close() drops it from `waiting`
    }
    if (waiting.size === 0) this.resync.delete(scope);
    if (down > 0) {
      // counted and seen: the flows whose end came while nothing watched, and for how long it did not
      const from = start?.before ? `${new Date(start.before.sec * 1000).toISOString()}` : 'unknown';
      const { host, netns } = splitScope(scope);
      this.o.onHealth({ host, run: this.curRun, kind: 'loss', at, count: down,
        detail: `${netns ? `netns ${netns}: ` : ''}downtime: ${down} flows ended while nothing collected (last event before ${from}, start dump ${new Date(at.sec * 1000).toISOString()}); closed with lost_by = downtime` });
    }
  }

  private gap(host: string, run: string, at: Time, first: number, last: number): void {
    this.o.onHealth({ host, run, kind: 'gap', at, count: last - first + 1, first_seq: first, last_seq: last, detail: `seq ${first}..${last} never arrived` });
  }

  private applyFlow(r: CtRecord): void {
    const zone = r.zone ?? 0;
    const scope = r.netns ? scopeOf(r.host, r.netns) : r.host;
    let s = this.t.find(scope, zone, r.id, r.orig);
    const known = s >= 0;
    if (s < 0) {
      const key = keyOf(scope, zone, r.id, r.orig);
      const h = hash64(key);
      const k53 = (h[0]! & 0x1fffff) * 4294967296 + h[1]!;
      const gone = this.ended.get(h[0]!, h[1]!);
      const ev = r.type === 'new' ? undefined : this.evicted.get(k53);
      if (ev) {
        // the memory bound closed it, the kernel did not: it continues where it was evicted
        this.evicted.delete(k53);
        s = this.revive(r, scope, zone, ev);
      } else if (gone !== undefined && r.type !== 'new') {
        // A row for a flow that already ended (dump racing a DESTROY, or a late update): ignore.
        // Only NEW starts a new generation of a reused key.
        this.counters.late++;
        return;
      } else {
        s = this.create(r, scope, key, zone, gone === undefined ? 0 : gone + 1);
      }
      if (this.budget.open > this.budget.limit) this.evict(r.host);
      if (!this.t.live(s)) return; // evicted at once (the table was full of fresher flows)
    }
    // a resync is rare: the per-record path pays one size check, not a lookup
    if (this.resync.size && this.resync.get(scope)?.delete(s)) this.t.flags[s]! |= F_RESYNCED;
    // A dump row of a known flow is a counter update (counter dumps come every interval): it counts
    // as an event, so the row version grows and a refresh row follows, only when it changes the row.
    if (known && r.type === 'snapshot' && !this.changes(s, r)) this.touch(s, r);
    else this.update(s, r);
    if (r.type === 'destroy') this.close(s, 'destroy', { sec: r.sec, nsec: r.nsec });
  }

  private create(r: CtRecord, scope: string, key: string, zone: number, generation: number): number {
    const t = this.t;
    const s = t.alloc();
    this.budget.open++;
    const h = generation ? hash64(`${key}#${generation}`) : H; // H: the key's hash, just computed
    t.hashHi[s] = h[0]!;
    t.hashLo[s] = h[1]!;
    t.ctId[s] = r.id;
    t.zone[s] = zone;
    t.hostIdx[s] = t.intern(scope);
    if (scope !== r.host) this.noteScope(r.host, scope);
    t.runIdx[s] = t.intern(r.run);
    t.setTuple(s, r.orig, r.family === 'ipv6' ? 6 : 4);
    t.generation[s] = generation;
    t.setTime(s, T.First, r.sec, r.nsec);
    t.setTime(s, T.Last, r.sec, r.nsec);
    const first = r.tcp_state;
    t.flags[s] = F_LIVE | (first === 1 || first === 2 ? F_HANDSHAKE : 0) | (r.status & IPS_EXPECTED ? F_RELATED : 0) | (r.type === 'snapshot' ? F_SNAPSHOT : 0);
    t.index(s);
    // Only a flow with a helper can be a master (its helper creates the expectations).
    if (r.helper !== undefined) this.indexMaster(`${scope}|${zone}|${tupleKey(r.orig)}`, t.flowId(s));
    if (r.master) t.master.set(s, { tuple: r.master, flowId: this.byTuple.get(`${scope}|${zone}|${tupleKey(r.master)}`) });
    return s;
  }

  private noteScope(host: string, scope: string): void {
    let set = this.scopes.get(host);
    if (!set) this.scopes.set(host, (set = new Set()));
    set.add(scope);
  }

  /** An evicted lifecycle back in a slot: its flow id, first_seen and event count as they were. */
  private revive(r: CtRecord, scope: string, zone: number, ev: Evicted): number {
    const s = this.create(r, scope, '', zone, ev.generation);
    const t = this.t;
    t.hashHi[s] = ev.hi;
    t.hashLo[s] = ev.lo;
    t.events[s] = ev.events; // the row's version stays above the evicted row's
    t.setTime(s, T.First, ev.firstSec, ev.firstNsec);
    t.flags[s] = t.flags[s]! | F_RESYNCED; // events of it went by while it was evicted
    this.counters.revived++;
    return s;
  }

  /** Bounded like `ended`: the oldest masters are forgotten first. */
  private indexMaster(key: string, flowId: string): void {
    this.byTuple.delete(key);
    this.byTuple.set(key, flowId);
    if (this.byTuple.size > this.o.maxOpen) this.byTuple.delete(this.byTuple.keys().next().value!);
  }

  /** Whether a record would change the flow's row: its counters, TCP state or status bits. */
  private changes(s: number, r: CtRecord): boolean {
    const t = this.t;
    if ((t.status[s]! | r.status) !== t.status[s]) return true;
    if (r.tcp_state !== undefined && t.lastState(s) !== r.tcp_state) return true;
    return r.counters !== undefined && !t.sameCounters(s, r.counters);
  }

  /** An unchanged flow seen in a dump: it is still in the kernel's table, with this much timeout left. */
  private touch(s: number, r: CtRecord): void {
    const t = this.t;
    if (t.laterThan(s, T.Last, r.sec, r.nsec)) t.setTime(s, T.Last, r.sec, r.nsec);
    if (r.timeout !== undefined) t.timeout[s] = r.timeout;
  }

  private update(s: number, r: CtRecord): void {
    const t = this.t;
    t.events[s] = t.events[s]! + 1;
    if (t.laterThan(s, T.Last, r.sec, r.nsec)) t.setTime(s, T.Last, r.sec, r.nsec);
    t.status[s] = t.status[s]! | r.status;
    t.setReply(s, r.reply, r.orig);
    if (r.tcp_state !== undefined) {
      if (t.lastState(s) !== r.tcp_state) t.pushState(s, r.tcp_state, r.sec, r.nsec);
      if (r.tcp_state === TCP_ESTABLISHED && !t.has(s, T.Established)) t.setTime(s, T.Established, r.sec, r.nsec);
    } else if (t.proto[s] !== 6 && !t.has(s, T.Established) && r.status & IPS_SEEN_REPLY) {
      t.setTime(s, T.Established, r.sec, r.nsec);
    }
    if (r.status & IPS_SEEN_REPLY && !t.has(s, T.SeenReply)) t.setTime(s, T.SeenReply, r.sec, r.nsec);
    if (r.status & IPS_ASSURED && !t.has(s, T.Assured)) t.setTime(s, T.Assured, r.sec, r.nsec);
    if (closeInit(r.tcp_flags_orig)) t.flags[s] = t.flags[s]! | F_CLOSE_ORIG;
    if (closeInit(r.tcp_flags_reply)) t.flags[s] = t.flags[s]! | F_CLOSE_REPLY;
    if (r.timeout !== undefined) t.timeout[s] = r.timeout;
    if (r.counters) t.setCounters(s, r.counters);
    if (r.start !== undefined) t.setKernelNs(s, K.Start, r.start);
    if (r.stop !== undefined) t.setKernelNs(s, K.Stop, r.stop);
    if (r.helper !== undefined) {
      if (t.helperIdx[s] === 0) this.indexMaster(`${t.host(s)}|${t.zone[s]}|${tupleKey(r.orig)}`, t.flowId(s));
      t.helperIdx[s] = t.intern(r.helper);
    }
    if (r.mark !== undefined) t.mark[s] = r.mark;
    if (r.master && !t.master.get(s)?.tuple) {
      t.master.set(s, { tuple: r.master, flowId: this.byTuple.get(`${t.host(s)}|${t.zone[s]}|${tupleKey(r.master)}`) });
    }
  }

  private close(s: number, reason: EndReason, endedAt: Time, lostBy?: LostBy): void {
    const t = this.t;
    const row = rowOf(t, s, reason, endedAt, lostBy);
    const scope = t.host(s);
    if (this.resync.size) this.resync.get(scope)?.delete(s);
    const gen = t.generation[s]!;
    // the slot's hash is the key's for the first generation; later ones hashed `key#generation`
    const h = gen === 0 ? undefined : hash64(keyOf(scope, t.zone[s]!, t.ctId[s]!, t.orig(s)));
    const hi = h ? h[0]! : t.hashHi[s]!;
    const lo = h ? h[1]! : t.hashLo[s]!;
    if (lostBy === 'evicted') {
      this.evicted.set((hi & 0x1fffff) * 4294967296 + lo, {
        hi: t.hashHi[s]!, lo: t.hashLo[s]!, generation: gen, events: t.events[s]!, firstSec: row.first_seen.sec, firstNsec: row.first_seen.nsec,
      });
      if (this.evicted.size > this.o.maxOpen) this.evicted.delete(this.evicted.keys().next().value!);
    }
    t.release(s);
    this.budget.open--;
    this.ended.set(hi, lo, gen);
    this.emit(row);
  }

  private emit(row: FlowRow): void {
    this.counters.rows++;
    this.o.onRow(row);
  }

  /**
   * Memory bound: closes the oldest idle unassured lifecycles first (as the kernel's early_drop
   * does), then the oldest assured, down to 99% of the bound, as lost (evicted). Selected in two
   * passes over the table (a histogram of last-event seconds finds the cut), not a sort, as it
   * can run again and again under a sustained flood.
   */
  private evict(host: string): void {
    const t = this.t;
    let need = this.budget.open - Math.floor(this.budget.limit * 0.99);
    const wm = this.watermark.get(host);
    for (const assured of [false, true]) {
      if (need <= 0) break;
      let min = Infinity;
      let max = -Infinity;
      for (let s = 0; s < t.top; s++) {
        if (!t.live(s) || t.has(s, T.Assured) !== assured) continue;
        const sec = t.times[(s * T.Count + T.Last) * 2]!;
        if (sec < min) min = sec;
        if (sec > max) max = sec;
      }
      if (min > max) continue;
      const counts = new Uint32Array(Math.min(max - min + 1, 1 << 20));
      const bucket = (sec: number) => Math.min(sec - min, counts.length - 1);
      for (let s = 0; s < t.top; s++) if (t.live(s) && t.has(s, T.Assured) === assured) counts[bucket(t.times[(s * T.Count + T.Last) * 2]!)]!++;
      let cut = 0;
      for (let n = 0; cut < counts.length && n + counts[cut]! < need; cut++) n += counts[cut]!;
      // every slot below the cut second, then slots of the cut second while some are needed
      for (let s = 0; s < t.top && need > 0; s++) {
        if (!t.live(s) || t.has(s, T.Assured) !== assured) continue;
        const b = bucket(t.times[(s * T.Count + T.Last) * 2]!);
        if (b > cut) continue;
        this.counters.evictions++;
        need--;
        this.close(s, 'lost', wm ? { sec: wm.sec, nsec: wm.nsec } : t.time(s, T.Last)!, 'evicted');
      }
    }
  }

  /**
   * Advances event time for hosts: closes flows whose kernel timeout passed without a DESTROY
   * (`lost`) and refreshes rows of open flows that changed. Call after each batch of records.
   */
  tick(...hosts: string[]): void {
    // One pass over the table for all the hosts of a batch (a partition holds many hosts), allocating
    // nothing per flow: it runs after every batch over every open flow.
    const t = this.t;
    const at: [number, Time][] = [];
    for (const host of hosts) {
      const wm = this.watermark.get(host);
      if (!wm) continue;
      // a host's event time is its namespaces' too
      at.push([t.intern(host), wm]);
      for (const scope of this.scopes.get(host) ?? []) at.push([t.intern(scope), wm]);
    }
    if (at.length === 0 || t.top === 0) return;
    // Watermarks by the scope's pool index (-1: none), typed arrays read per slot: a Map's get was
    // most of the pass, and a JS array indexed far past its end turns into a dictionary
    let n = 0;
    for (const [i] of at) n = Math.max(n, i + 1);
    const wmSec = new Float64Array(n).fill(-1);
    const wmNsec = new Float64Array(n);
    for (const [i, wm] of at) {
      wmSec[i] = wm.sec;
      wmNsec[i] = wm.nsec;
    }
    const times = t.times;
    const graceS = Math.floor(this.o.graceMs / 1000);
    const graceNs = (this.o.graceMs % 1000) * 1e6;
    const refreshS = Math.floor(this.o.refreshMs / 1000);
    const refreshNs = (this.o.refreshMs % 1000) * 1e6;
    let refreshed = 0;
    const top = t.top;
    // refreshes are capped per tick, so the pass starts where the last one stopped refreshing
    const from = this.refreshFrom % top;
    for (let k = 0, s = from; k < top; k++, s = s + 1 === top ? 0 : s + 1) {
      if (!t.live(s)) continue;
      const h = t.hostIdx[s]!;
      const wmS = h < n ? wmSec[h]! : -1;
      if (wmS < 0) continue;
      const wmN = wmNsec[h]!;
      const timeout = t.timeout[s]!;
      const timeoutS = timeout >= 0 ? timeout : DEFAULT_TIMEOUT[t.proto[s]!] ?? 600;
      const li = (s * T.Count + T.Last) * 2;
      // expired: the watermark is past last event + timeout + grace
      if (after(wmS, wmN, times[li]! + timeoutS + graceS, times[li + 1]! + graceNs)) {
        this.counters.lostByTimeout++;
        this.close(s, 'lost', { sec: times[li]! + timeoutS, nsec: times[li + 1]! }, 'timeout');
        continue;
      }
      // Long-lived flows become visible before they end: a row once they are refreshMs old, then
      // at most one per refreshMs while they change. Short flows only get their final row.
      if (refreshed >= REFRESH_PER_TICK || t.events[s]! <= t.emittedEvents[s]!) continue;
      const bi = (s * T.Count + (t.has(s, T.Emitted) ? T.Emitted : T.First)) * 2;
      if (after(times[bi]! + refreshS, times[bi + 1]! + refreshNs, wmS, wmN)) continue;
      t.setTime(s, T.Emitted, wmS, wmN);
      t.emittedEvents[s] = t.events[s]!;
      this.emit(rowOf(t, s));
      if (++refreshed === REFRESH_PER_TICK) this.refreshFrom = s + 1;
    }
  }

  /** Rows for every open flow now (shutdown: open lifecycles are visible, not lost). */
  flushOpen(): void {
    for (let s = 0; s < this.t.top; s++) if (this.t.live(s)) this.emit(rowOf(this.t, s));
  }

  /** Everything the engine knows into a snapshot (the engine must stay still until it is finished). */
  async save(w: SnapshotWriter): Promise<void> {
    const remap = await this.t.compact();
    if (remap) {
      for (const [host, waiting] of this.resync) this.resync.set(host, new Map([...waiting].map(([s, since]) => [remap[s]!, since])));
    }
    await this.t.save(w);
    this.ended.save(w);
    await w.entries('engine.byTuple', this.byTuple);
    await w.entries('engine.maxSeq', mapValues(this.maxSeq, (v) => v.seq));
    await w.entries('engine.watermark', this.watermark);
    await w.entries('engine.resync', flatResync(this.resync));
    await w.entries('engine.evicted', this.evicted);
  }

  /** A fresh engine takes a snapshot's state. */
  restore(r: SnapshotReader): void {
    this.t.restore(r);
    this.ended.restore(r);
    for (const [k, v] of r.entries<[string, string]>('engine.byTuple')) this.byTuple.set(k, v);
    for (const [k, v] of r.entries<[string, number]>('engine.maxSeq')) this.maxSeq.set(k, { seq: v });
    for (const [k, v] of r.entries<[string, Time]>('engine.watermark')) this.watermark.set(k, { sec: v.sec, nsec: v.nsec });
    for (const [k, v] of r.entries<[number, Evicted]>('engine.evicted')) this.evicted.set(k, v);
    this.budget.open += this.t.size;
    for (const [host, slot, since] of r.entries<[string, number, number]>('engine.resync')) {
      let waiting = this.resync.get(host);
      if (!waiting) this.resync.set(host, (waiting = new Map()));
      waiting.set(slot, since);
    }
    this.noteScopes();
    this.cur = undefined;
    this.curWm = undefined;
  }

  /** The scopes of namespaces among restored flows (not saved: they are in the flows' hosts). */
  private noteScopes(): void {
    const t = this.t;
    for (let s = 0; s < t.top; s++) {
      if (!t.live(s)) continue;
      const { host, netns } = splitScope(t.host(s));
      if (netns) this.noteScope(host, t.host(s));
    }
  }

  /** A checkpoint from before snapshots (JSON, Lifecycle objects) into a fresh engine. */
  importLegacy(s: EngineState): void {
    for (const l of s.open) {
      const slot = this.t.loadLifecycle(l);
      this.budget.open++;
      if (l.resyncPendingSince === undefined) continue;
      let waiting = this.resync.get(l.host);
      if (!waiting) this.resync.set(l.host, (waiting = new Map()));
      waiting.set(slot, l.resyncPendingSince);
    }
    for (const [k, v] of s.ended) {
      if (typeof k === 'number') this.ended.set(Math.floor(k / 4294967296), k % 4294967296, v as number);
      else {
        const h = hash64(k);
        this.ended.set(h[0]!, h[1]!, (v as { generation: number }).generation);
      }
    }
    for (const [k, v] of s.byTuple) this.byTuple.set(k, v);
    for (const [k, v] of s.maxSeq) this.maxSeq.set(k, { seq: v });
    for (const [k, v] of s.watermark) this.watermark.set(k, { sec: v.sec, nsec: v.nsec });
    this.noteScopes();
    this.cur = undefined;
    this.curWm = undefined;
  }
}

function* mapValues<K, V, W>(m: Map<K, V>, f: (v: V) => W): Generator<[K, W]> {
  for (const [k, v] of m) yield [k, f(v)];
}

function* flatResync(r: Map<string, Map<number, number>>): Generator<[string, number, number]> {
  for (const [host, waiting] of r) for (const [slot, since] of waiting) yield [host, slot, since];
}
