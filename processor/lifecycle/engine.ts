/**
 * Rebuilds connection lifecycles from collector records (docs/RECORDS.md). Pure: records in,
 * rows and health events out, no I/O and no wall clock: every decision that produces a row is
 * taken on event time, so replaying the same records yields the same rows (effectively-once).
 *
 * Key: (host, zone, conntrack id, original tuple). The run id is not part of the key, so a flow
 * seen again in the table dump of a restarted collector continues its lifecycle instead of
 * starting a duplicate; ids are reused by the kernel, so a NEW for a key that already ended
 * starts a new generation with its own flow id.
 *
 * Delivery: per (host, run) the sequence numbers are checked: a record at or below the highest
 * seq seen is a duplicate (at-least-once delivery) and is dropped; a jump is a gap, reported.
 * Within the stream, events may still come out of order with the table dump (a DESTROY before the
 * dump row of the same flow): recently ended keys are remembered so late rows do not resurrect them.
 */
import type { CtRecord, CtpipeRecord, Tuple } from '../../contract/records.js';
import { IPS_ASSURED, IPS_EXPECTED, IPS_SEEN_REPLY, TCP_STATE_NAMES } from '../../collector/conntrack/constants.js';
import { closeInit } from './conn-state.js';
import { toRow, type FlowRow, type Lifecycle, type Time } from './flow-row.js';

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

export interface EngineOptions {
  /** Open lifecycles kept at most; past it the oldest idle unassured ones are closed as lost. */
  maxOpen: number;
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
  lostByTimeout: number;
  rows: number;
}

export function tupleKey(t: Tuple): string {
  return `${t.proto}|${t.src}|${t.sport ?? ''}|${t.dst}|${t.dport ?? ''}|${t.icmp_type ?? ''}|${t.icmp_code ?? ''}|${t.icmp_id ?? ''}`;
}

/** 64-bit FNV-1a of a string, as 16 hex digits: stable across processes and replays. */
export function hash64(s: string): string {
  let h1 = 0x811c9dc5 >>> 0;
  let h2 = 0xcbf29ce4 >>> 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

const later = (a: Time, b: Time) => a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);
const addMs = (t: Time, ms: number): Time => {
  const ns = t.nsec + Math.round((ms % 1000) * 1e6);
  return { sec: t.sec + Math.floor(ms / 1000) + Math.floor(ns / 1e9), nsec: ns % 1e9 };
};

export interface Ended {
  flowId: string;
  generation: number;
  at: Time;
}

/** Everything the engine knows, in JSON-able form: what a checkpoint stores. */
export interface EngineState {
  open: Lifecycle[];
  ended: [string, Ended][];
  byTuple: [string, string][];
  maxSeq: [string, number][];
  watermark: [string, Time][];
}

export class LifecycleEngine {
  private readonly open = new Map<string, Lifecycle>();
  /** Ended keys (for late rows, id reuse and RELATED lookups), bounded. */
  private readonly ended = new Map<string, Ended>();
  /** host|zone|orig tuple -> flow id of the newest helper lifecycle with that tuple (RELATED masters). */
  private readonly byTuple = new Map<string, string>();
  /** Open lifecycles by conntrack id: the per-event lookup, with no key string to build. */
  private readonly byId = new Map<number, Lifecycle[]>();
  /** Highest seq per host|run; boxed so the current run's entry is held across records. */
  private readonly maxSeq = new Map<string, { seq: number }>();
  private curHost = '';
  private curRun = '';
  private cur: { seq: number } | undefined;
  /** Latest event time per host (updated in place; copy before keeping it). */
  private readonly watermark = new Map<string, Time>();
  private curWm: Time | undefined;
  readonly counters: EngineCounters = { records: 0, duplicates: 0, late: 0, evictions: 0, lostByTimeout: 0, rows: 0 };

  constructor(private readonly o: EngineOptions) {}

  get openCount(): number {
    return this.open.size;
  }

  apply(r: CtpipeRecord): void {
    this.counters.records++;
    if (r.host !== this.curHost || r.run !== this.curRun || !this.cur) {
      this.curHost = r.host;
      this.curRun = r.run;
      this.cur = this.maxSeq.get(`${r.host}|${r.run}`);
      this.curWm = this.watermark.get(r.host);
    }
    const at = { sec: r.sec, nsec: r.nsec };
    const cur = this.cur;
    if (cur === undefined) {
      this.o.onHealth({ host: r.host, run: r.run, kind: 'run_start', at, count: 0, first_seq: r.seq, detail: `first seq ${r.seq}` });
      if (r.seq > 1) this.gap(r.host, r.run, at, 1, r.seq - 1);
      this.maxSeq.set(`${r.host}|${r.run}`, (this.cur = { seq: r.seq }));
    } else if (r.seq <= cur.seq) {
      this.counters.duplicates++;
      return;
    } else {
      if (r.seq > cur.seq + 1) this.gap(r.host, r.run, at, cur.seq + 1, r.seq - 1);
      cur.seq = r.seq;
    }
    const wm = this.curWm;
    if (!wm) this.watermark.set(r.host, (this.curWm = { sec: r.sec, nsec: r.nsec }));
    else if (later(at, wm)) {
      wm.sec = r.sec;
      wm.nsec = r.nsec;
    }
    switch (r.type) {
      case 'new': case 'update': case 'destroy': case 'snapshot':
        this.applyFlow(r);
        break;
      case 'loss':
        this.o.onHealth({ host: r.host, run: r.run, kind: 'loss', at, count: r.count, first_seq: r.first_seq, last_seq: r.last_seq, detail: `${r.source}: ${r.reason}` });
        break;
      default:
        break; // stats, expectations and INVALID samples are for the detectors
    }
  }

  private gap(host: string, run: string, at: Time, first: number, last: number): void {
    this.o.onHealth({ host, run, kind: 'gap', at, count: last - first + 1, first_seq: first, last_seq: last, detail: `seq ${first}..${last} never arrived` });
  }

  private applyFlow(r: CtRecord): void {
    const zone = r.zone ?? 0;
    const at = { sec: r.sec, nsec: r.nsec };
    let l = this.findOpen(r, zone);
    if (!l) {
      const key = `${r.host}|${zone}|${r.id}|${tupleKey(r.orig)}`;
      const gone = this.ended.get(key);
      // A row for a flow that already ended (dump racing a DESTROY, or a late update): ignore.
      // Only NEW starts a new generation of a reused key.
      if (gone && r.type !== 'new') {
        this.counters.late++;
        return;
      }
      l = this.create(r, key, zone, gone ? gone.generation + 1 : 0, at);
      this.addOpen(l);
      if (this.open.size > this.o.maxOpen) this.evict(r.host);
    }
    this.update(l, r, at);
    if (r.type === 'destroy') {
      l.endReason = 'destroy';
      l.endedAt = at;
      this.close(l);
    }
  }

  private findOpen(r: CtRecord, zone: number): Lifecycle | undefined {
    const list = this.byId.get(r.id);
    if (!list) return undefined;
    const o = r.orig;
    for (const l of list) {
      const t = l.orig;
      if (l.host === r.host && l.zone === zone && t.src === o.src && t.dst === o.dst && t.proto === o.proto && t.sport === o.sport &&
        t.dport === o.dport && t.icmp_type === o.icmp_type && t.icmp_code === o.icmp_code && t.icmp_id === o.icmp_id) return l;
    }
    return undefined;
  }

  private addOpen(l: Lifecycle): void {
    this.open.set(l.key, l);
    const list = this.byId.get(l.ctId);
    if (list) list.push(l);
    else this.byId.set(l.ctId, [l]);
  }

  private removeOpen(l: Lifecycle): void {
    this.open.delete(l.key);
    const list = this.byId.get(l.ctId);
    if (!list) return;
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byId.delete(l.ctId);
  }

  private create(r: CtRecord, key: string, zone: number, generation: number, at: Time): Lifecycle {
    const flowId = hash64(generation ? `${key}#${generation}` : key);
    const tcpFirst = r.tcp_state !== undefined ? TCP_STATE_NAMES[r.tcp_state] : undefined;
    const l: Lifecycle = {
      key, flowId, host: r.host, run: r.run, zone, ctId: r.id, family: r.family, proto: r.proto, orig: r.orig,
      reply: r.reply, firstSeen: at, lastEvent: at, states: [], endReason: 'open', status: 0,
      sawHandshake: tcpFirst === 'SYN_SENT' || tcpFirst === 'SYN_RECV',
      related: (r.status & IPS_EXPECTED) !== 0, fromSnapshot: r.type === 'snapshot', closeInitOrig: false,
      closeInitReply: false, events: 0, generation, emittedEvents: 0,
    };
    // Only a flow with a helper can be a master (its helper creates the expectations).
    if (r.helper !== undefined) this.indexMaster(`${r.host}|${zone}|${tupleKey(r.orig)}`, flowId);
    if (r.master) {
      l.master = r.master;
      l.masterFlowId = this.byTuple.get(`${r.host}|${zone}|${tupleKey(r.master)}`);
    }
    return l;
  }

  /** Bounded like `ended`: the oldest masters are forgotten first. */
  private indexMaster(key: string, flowId: string): void {
    this.byTuple.delete(key);
    this.byTuple.set(key, flowId);
    if (this.byTuple.size > this.o.maxOpen) this.byTuple.delete(this.byTuple.keys().next().value!);
  }

  private update(l: Lifecycle, r: CtRecord, at: Time): void {
    l.events++;
    if (later(at, l.lastEvent)) l.lastEvent = at;
    l.status |= r.status;
    l.reply = r.reply;
    if (r.tcp_state !== undefined) {
      const name = TCP_STATE_NAMES[r.tcp_state] ?? String(r.tcp_state);
      if (l.states[l.states.length - 1]?.state !== name) l.states.push({ state: name, at });
      if (name === 'ESTABLISHED' && !l.establishedAt) l.establishedAt = at;
    } else if (l.proto !== 6 && !l.establishedAt && r.status & IPS_SEEN_REPLY) {
      l.establishedAt = at;
    }
    if (r.status & IPS_SEEN_REPLY && !l.seenReplyAt) l.seenReplyAt = at;
    if (r.status & IPS_ASSURED && !l.assuredAt) l.assuredAt = at;
    if (closeInit(r.tcp_flags_orig)) l.closeInitOrig = true;
    if (closeInit(r.tcp_flags_reply)) l.closeInitReply = true;
    if (r.timeout !== undefined) l.timeout = r.timeout;
    if (r.counters) l.counters = { ...l.counters, ...r.counters };
    if (r.start !== undefined) l.start = r.start;
    if (r.stop !== undefined) l.stop = r.stop;
    if (r.helper !== undefined && l.helper === undefined) {
      l.helper = r.helper;
      this.indexMaster(`${l.host}|${l.zone}|${tupleKey(l.orig)}`, l.flowId);
    } else if (r.helper !== undefined) l.helper = r.helper;
    if (r.mark !== undefined) l.mark = r.mark;
    if (r.master && !l.master) {
      l.master = r.master;
      l.masterFlowId = this.byTuple.get(`${r.host}|${l.zone}|${tupleKey(r.master)}`);
    }
  }

  private close(l: Lifecycle): void {
    this.removeOpen(l);
    this.ended.delete(l.key); // re-insert: the map's order is the order keys ended
    this.ended.set(l.key, { flowId: l.flowId, generation: l.generation, at: l.endedAt ?? l.lastEvent });
    if (this.ended.size > this.o.maxOpen) {
      // forget the oldest ended keys (Map iteration is insertion order)
      let drop = this.ended.size - this.o.maxOpen;
      for (const k of this.ended.keys()) {
        if (drop-- <= 0) break;
        this.ended.delete(k);
      }
    }
    this.emit(l);
  }

  private emit(l: Lifecycle): void {
    this.counters.rows++;
    this.o.onRow(toRow(l));
  }

  /** Memory bound: close the oldest idle unassured lifecycles first (as the kernel's early_drop does). */
  private evict(host: string): void {
    const target = Math.floor(this.o.maxOpen * 0.99);
    const victims = [...this.open.values()]
      .sort((a, b) => Number(a.assuredAt !== undefined) - Number(b.assuredAt !== undefined) || a.lastEvent.sec - b.lastEvent.sec || a.lastEvent.nsec - b.lastEvent.nsec)
      .slice(0, this.open.size - target);
    for (const l of victims) {
      l.endReason = 'lost';
      l.lostBy = 'evicted';
      l.endedAt = { ...(this.watermark.get(host) ?? l.lastEvent) };
      this.counters.evictions++;
      this.close(l);
    }
  }

  /**
   * Advances event time for a host: closes flows whose kernel timeout passed without a DESTROY
   * (`lost`) and refreshes rows of open flows that changed. Call after each batch of records.
   */
  tick(host: string): void {
    const wm = this.watermark.get(host);
    if (!wm) return;
    for (const l of [...this.open.values()]) {
      if (l.host !== host) continue;
      const timeoutMs = (l.timeout ?? DEFAULT_TIMEOUT[l.proto] ?? 600) * 1000;
      const expires = addMs(l.lastEvent, timeoutMs);
      if (later(wm, addMs(expires, this.o.graceMs))) {
        l.endReason = 'lost';
        l.lostBy = 'timeout';
        l.endedAt = expires;
        this.counters.lostByTimeout++;
        this.close(l);
        continue;
      }
      // Long-lived flows become visible before they end: a row once they are refreshMs old, then
      // at most one per refreshMs while they change. Short flows only get their final row.
      if (l.events > l.emittedEvents && !later(addMs(l.emittedAt ?? l.firstSeen, this.o.refreshMs), wm)) {
        l.emittedAt = { sec: wm.sec, nsec: wm.nsec };
        l.emittedEvents = l.events;
        this.emit(l);
      }
    }
  }

  /** Rows for every open flow now (shutdown: open lifecycles are visible, not lost). */
  flushOpen(): void {
    for (const l of this.open.values()) this.emit(l);
  }

  exportState(): EngineState {
    return {
      open: [...this.open.values()],
      ended: [...this.ended],
      byTuple: [...this.byTuple],
      maxSeq: [...this.maxSeq].map(([k, v]) => [k, v.seq]),
      watermark: [...this.watermark].map(([k, v]) => [k, { sec: v.sec, nsec: v.nsec }]),
    };
  }

  importState(s: EngineState): void {
    this.open.clear();
    this.byId.clear();
    for (const l of s.open) this.addOpen(l);
    for (const [k, v] of s.ended) this.ended.set(k, v);
    for (const [k, v] of s.byTuple) this.byTuple.set(k, v);
    for (const [k, v] of s.maxSeq) this.maxSeq.set(k, { seq: v });
    for (const [k, v] of s.watermark) this.watermark.set(k, { sec: v.sec, nsec: v.nsec });
    this.cur = undefined;
    this.curWm = undefined;
  }
}
