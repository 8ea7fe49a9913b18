/**
 * The open lifecycles, stored column-wise: one typed array per numeric field, indexed by slot, and
 * an open-addressing index from conntrack id to slots. A processor keeps up to a million open
 * flows per partition; one JS object per flow (with its tuples, times and state path) cost about
 * 1 KB and most of the engine's time went to allocating and collecting them. Here a flow costs
 * about 200 bytes and no allocation while it is open: IPv4 addresses are numbers (taken from the
 * decoders' tuples, Tuple.src4/dst4; text is parsed only for tuples built by hand), host, run and
 * helper names indexes into a shared string pool. A row's address text comes back through the
 * decoders' string cache (u32ToIpv4), which also hands the number on to the RowBinary writer.
 * Rare data (IPv6 addresses, NAT reply tuples, masters, long state paths) lives in side maps keyed
 * by slot. The kernel's start and stop stamps are columns: every flow of a start dump (or a
 * DESTROY) with nf_conntrack_timestamp=1 has them, and as a side map they cost 120 MB of JS heap
 * at 1M flows.
 *
 * A slot's Lifecycle object (flow-row.ts) is built only to make a row or a checkpoint.
 */
import { ipv4ToU32, u32ToIpv4 } from '../../contract/addr.js';
import { nsSplit, split } from '../../contract/u64.js';
import { CtpipeError } from '../../common/errors.js';
import type { Tuple, U64 } from '../../contract/records.js';
import { TCP_STATE_NAMES } from '../../contract/kernel.js';
import type { Lifecycle, Time } from './flow-row.js';
import { generate, ident } from '../codegen.js';
import { natKind } from './nat.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { removeEntry } from './probe.js';
import { splitScope } from './scope.js';
import type { SnapshotReader, SnapshotWriter } from '../snapshot.js';

/** State transitions kept inline per slot; longer paths continue in a side map. */
const INLINE_STATES = 4;

// flags
export const F_HANDSHAKE = 1;
export const F_RELATED = 2;
export const F_SNAPSHOT = 4;
export const F_CLOSE_ORIG = 8;
export const F_CLOSE_REPLY = 16;
export const F_COUNTERS = 32;
export const F_LIVE = 64;
export const F_RESYNCED = 128;
// which optional tuple fields the original tuple has (its key spells absent ones as '')
const TUPLE_SPORT = 1;
const TUPLE_DPORT = 2;
export const TUPLE_ICMP_TYPE = 4;
export const TUPLE_ICMP_CODE = 8;
const TUPLE_ICMP_ID = 16;

/** Time fields, each a (sec, nsec) pair; sec 0 means absent. */
export const T = { First: 0, Last: 1, Established: 2, SeenReply: 3, Assured: 4, Emitted: 5, Count: 6 } as const;
export type T = (typeof T)[Exclude<keyof typeof T, 'Count'>];

/** The kernel's own stamps of a flow (nf_conntrack_timestamp=1), in `kernelTimes`. */
export const K = { Start: 0, Stop: 1 } as const;
export type K = (typeof K)[keyof typeof K];

/** Columns added after binary snapshots began: a snapshot from before leaves them at their `empty` value. */
const LATER_COLUMNS: ReadonlySet<string> = new Set(['kernelTimes']);

/** A typed-array constructor a column may use. */
type ArrayType = Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | Int32ArrayConstructor | Float64ArrayConstructor;

/**
 * The per-slot columns, the one place a numeric field is declared: each a typed array of `per`
 * values per slot, holding `empty` (0 unless given) in a newly allocated slot. The list makes the
 * table's arrays, grows them, resets a new slot and counts their bytes; columns() hands them out
 * in this order (a binary snapshot writes and reads them by iterating it).
 */
export const SLOT_COLUMNS = {
  ctId: { type: Uint32Array, per: 1 },
  status: { type: Uint32Array, per: 1 },
  events: { type: Uint32Array, per: 1 },
  emittedEvents: { type: Uint32Array, per: 1 },
  generation: { type: Uint32Array, per: 1 },
  mark: { type: Uint32Array, per: 1 },
  timeout: { type: Int32Array, per: 1, empty: -1 }, // -1: none
  hashHi: { type: Uint32Array, per: 1 },
  hashLo: { type: Uint32Array, per: 1 },
  zone: { type: Uint16Array, per: 1 },
  sport: { type: Uint16Array, per: 1 },
  dport: { type: Uint16Array, per: 1 },
  icmpId: { type: Uint16Array, per: 1 },
  proto: { type: Uint8Array, per: 1 },
  family: { type: Uint8Array, per: 1 },
  icmpType: { type: Uint8Array, per: 1 },
  icmpCode: { type: Uint8Array, per: 1 },
  tupleBits: { type: Uint8Array, per: 1 },
  flags: { type: Uint8Array, per: 1 },
  nStates: { type: Uint8Array, per: 1 },
  stateCode: { type: Uint8Array, per: INLINE_STATES },
  stateTime: { type: Uint32Array, per: INLINE_STATES * 2 }, // sec, nsec per inline transition
  times: { type: Uint32Array, per: T.Count * 2 }, // a (sec, nsec) pair per T
  kernelTimes: { type: Uint32Array, per: 4 }, // the kernel's start and stop stamps, (sec, nsec) each; sec 0: none
  counters: { type: Float64Array, per: 4 }, // orig packets, orig bytes, reply packets, reply bytes
  src4: { type: Uint32Array, per: 1 },
  dst4: { type: Uint32Array, per: 1 },
  hostIdx: { type: Uint32Array, per: 1 },
  runIdx: { type: Uint32Array, per: 1 },
  helperIdx: { type: Uint32Array, per: 1 }, // 0: none
} as const satisfies Record<string, { type: ArrayType; per: number; empty?: number }>;

export type SlotColumn = keyof typeof SLOT_COLUMNS;
export type SlotArrays = { -readonly [K in SlotColumn]: InstanceType<(typeof SLOT_COLUMNS)[K]['type']> };
export type SlotArray = SlotArrays[SlotColumn];

const COLUMNS = Object.entries(SLOT_COLUMNS).map(([name, c]) => ({ name: name as SlotColumn, type: c.type as ArrayType, per: c.per as number, empty: 'empty' in c ? c.empty : 0 }));

/** Puts every column of slot s at its `empty` value: generated (codegen.ts), as it runs per new flow. */
const resetSlot = generate<(t: SlotArrays, s: number) => void>(['t', 's'], COLUMNS.map((c) =>
  Array.from({ length: c.per }, (_, k) => `t.${ident(c.name)}[${c.per === 1 ? 's' : `s * ${c.per} + ${k}`}] = ${c.empty};`).join('\n')).join('\n'));

/**
 * FlowTable's base: one empty array per column, as own properties the engine reads by name (its
 * hot path indexes them directly, so they stay plain fields, not entries of a map).
 */
const WithSlotArrays = class {
  constructor() {
    for (const c of COLUMNS) (this as Record<string, unknown>)[c.name] = new c.type(0);
  }
} as new () => SlotArrays;

export class FlowTable extends WithSlotArrays {
  cap = 0;
  /** Slots ever used (iteration bound); free slots below it are on the free list. */
  top = 0;
  size = 0;
  private free: number[] = [];

  /** Interned strings (hosts, runs, helper names); index 0 is "none". */
  private readonly pool: string[] = [''];
  private readonly poolIdx = new Map<string, number>([['', 0]]);
  /** Each pooled string read as a scope (scope.ts): its host and namespace, split once, not per row. */
  private readonly poolHost: string[] = [''];
  private readonly poolNetns: string[] = [''];
  /** IPv6 flows' original addresses. */
  readonly addr6 = new Map<number, { src: string; dst: string }>();

  /** Reply tuples that are not the original's mirror (NAT). */
  readonly nat = new Map<number, Tuple>();
  readonly master = new Map<number, { tuple?: Tuple; flowId?: string }>();
  readonly moreStates = new Map<number, { code: number; sec: number; nsec: number }[]>();
  private readonly side: readonly Map<number, unknown>[] = [this.addr6, this.nat, this.master, this.moreStates];

  /** Index: conntrack id -> slot + 1, linear probing; 0 is empty. */
  private idx = new Int32Array(16);
  private idxCount = 0;

  /** A slot with every column at its `empty` value (a freed slot still holds its last flow's). */
  alloc(): number {
    const slot = this.free.length ? this.free.pop()! : this.top++;
    if (slot >= this.cap) this.grow();
    resetSlot(this, slot);
    this.size++;
    return slot;
  }

  release(slot: number): void {
    this.unindex(slot);
    this.flags[slot] = 0;
    for (const m of this.side) if (m.size !== 0) m.delete(slot); // mostly empty: no hashing then
    this.free.push(slot);
    this.size--;
  }

  /** Each column's name and array (cap * per values, slot-major), in SLOT_COLUMNS order. */
  columns(): [SlotColumn, SlotArray][] {
    return COLUMNS.map((c) => [c.name, this[c.name]]);
  }

  /**
   * The table into a snapshot: each column's values for the slots below `top` (views: the caller
   * keeps the table still until the snapshot is finished), the string pool and the side maps.
   */
  async save(w: SnapshotWriter): Promise<void> {
    w.json('table', { top: this.top });
    for (const c of COLUMNS) w.bytes(`table.${c.name}`, this[c.name].subarray(0, this.top * c.per));
    w.json('table.pool', this.pool);
    for (const [name, m] of this.namedSide()) await w.entries(`table.${name}`, m);
  }

  /**
   * Moves the live slots to the front, in order, when at least a quarter of the slots below `top`
   * are free (after a table flush, most are): snapshots and the engine's passes over the table cost
   * what is open, not what once was, and spare capacity goes back. Yields to the event loop between
   * columns. Returns old slot -> new slot (-1: was free), or undefined when nothing moved.
   */
  async compact(): Promise<Int32Array | undefined> {
    if (this.size >= this.top * 0.75) return undefined;
    const remap = new Int32Array(this.top).fill(-1);
    let n = 0;
    for (let s = 0; s < this.top; s++) if (this.live(s)) remap[s] = n++;
    const cap = Math.max(1024, Math.ceil(n * 1.25));
    const arrays = this as Record<SlotColumn, SlotArray>;
    for (const c of COLUMNS) {
      const from = arrays[c.name];
      const to = new c.type(cap * c.per);
      for (let s = 0; s < this.top; s++) {
        const d = remap[s]!;
        if (d >= 0) for (let k = 0; k < c.per; k++) to[d * c.per + k] = from[s * c.per + k]!;
      }
      arrays[c.name] = to;
      await yieldToLoop();
    }
    for (const [, m] of this.namedSide()) {
      const moved = [...m].map(([s, v]) => [remap[s]!, v] as const);
      m.clear();
      for (const [s, v] of moved) m.set(s, v);
    }
    this.top = this.size = n;
    this.cap = cap;
    this.free = [];
    this.idx = new Int32Array(16);
    this.idxCount = 0;
    for (let s = 0; s < n; s++) this.index(s);
    return remap;
  }

  /** An empty table takes a snapshot's; free slots and the index are rebuilt from the flags. */
  restore(r: SnapshotReader): void {
    const { top } = r.json<{ top: number }>('table');
    this.cap = Math.max(1024, Math.ceil(top * 1.25));
    const arrays = this as Record<SlotColumn, SlotArray>;
    for (const c of COLUMNS) {
      const a = new c.type(this.cap * c.per);
      if (c.empty !== 0) a.fill(c.empty);
      if (r.has(`table.${c.name}`) || !LATER_COLUMNS.has(c.name)) r.into(`table.${c.name}`, a.subarray(0, top * c.per));
      arrays[c.name] = a;
    }
    this.top = top;
    this.pool.length = 0;
    this.poolIdx.clear();
    this.poolHost.length = 0;
    this.poolNetns.length = 0;
    for (const v of r.json<string[]>('table.pool')) this.intern(v);
    for (const [name, m] of this.namedSide()) for (const [k, v] of r.entries<[number, unknown]>(`table.${name}`)) m.set(k, v);
    // snapshots from before the kernelTimes column kept the stamps in a side map
    if (r.has('table.stamps')) {
      for (const [k, v] of r.entries<[number, { start?: Time; stop?: Time }]>('table.stamps')) {
        if (v.start) this.setKernelTime(k, K.Start, v.start);
        if (v.stop) this.setKernelTime(k, K.Stop, v.stop);
      }
    }
    this.free = [];
    this.size = 0;
    this.idx = new Int32Array(16);
    this.idxCount = 0;
    for (let s = top - 1; s >= 0; s--) {
      if (!this.live(s)) this.free.push(s);
      else {
        this.size++;
        this.index(s);
      }
    }
  }

  private namedSide(): [string, Map<number, unknown>][] {
    return [['addr6', this.addr6], ['nat', this.nat], ['master', this.master], ['moreStates', this.moreStates]];
  }

  /** Bytes of the columns and the index (the JS-heap part, strings and side maps, is not counted here). */
  typedBytes(): number {
    let n = this.idx.byteLength;
    for (const c of COLUMNS) n += this[c.name].byteLength;
    return n;
  }

  live(slot: number): boolean {
    return (this.flags[slot]! & F_LIVE) !== 0;
  }

  private grow(): void {
    const cap = Math.max(1024, Math.ceil(this.cap * 1.25)); // modest steps: unused capacity is memory too
    const arrays = this as Record<SlotColumn, SlotArray>;
    for (const c of COLUMNS) {
      const b = new c.type(cap * c.per);
      b.set(arrays[c.name]);
      arrays[c.name] = b;
    }
    this.cap = cap;
  }

  // ---- index ----

  private static slotHash(id: number, mask: number): number {
    return (Math.imul(id, 0x9e3779b1) >>> 0) & mask;
  }

  index(slot: number): void {
    if ((this.idxCount + 1) * 2 > this.idx.length) this.rehash(this.idx.length * 2);
    const mask = this.idx.length - 1;
    let i = FlowTable.slotHash(this.ctId[slot]!, mask);
    while (this.idx[i] !== 0) i = (i + 1) & mask;
    this.idx[i] = slot + 1;
    this.idxCount++;
  }

  /** An index entry's home position (entries are slot + 1). */
  private readonly home = (e: number): number => FlowTable.slotHash(this.ctId[e - 1]!, this.idx.length - 1);

  private unindex(slot: number): void {
    if (removeEntry(this.idx, slot + 1, this.home)) this.idxCount--;
  }

  private rehash(size: number): void {
    const old = this.idx;
    this.idx = new Int32Array(size);
    this.idxCount = 0;
    for (const e of old) if (e !== 0) this.index(e - 1);
  }

  intern(v: string): number {
    let i = this.poolIdx.get(v);
    if (i === undefined) {
      i = this.pool.push(v) - 1;
      this.poolIdx.set(v, i);
      const { host, netns } = splitScope(v);
      this.poolHost.push(host);
      this.poolNetns.push(netns);
    }
    return i;
  }

  /** The host of the slot's scope (without its namespace). */
  scopeHost(slot: number): string {
    return this.poolHost[this.hostIdx[slot]!]!;
  }

  /** The namespace of the slot's scope ('' when none). */
  scopeNetns(slot: number): string {
    return this.poolNetns[this.hostIdx[slot]!]!;
  }

  str(i: number): string {
    return this.pool[i]!;
  }

  host(slot: number): string {
    return this.pool[this.hostIdx[slot]!]!;
  }

  helper(slot: number): string | undefined {
    const i = this.helperIdx[slot]!;
    return i === 0 ? undefined : this.pool[i];
  }

  /** The open slot for (host, zone, id, original tuple), or -1. */
  find(host: string, zone: number, id: number, t: Tuple): number {
    const idx = this.idx;
    const mask = idx.length - 1;
    let src4 = -1;
    let dst4 = -1;
    for (let i = FlowTable.slotHash(id, mask); idx[i] !== 0; i = (i + 1) & mask) {
      const s = idx[i]! - 1;
      if (this.ctId[s] !== id || this.zone[s] !== zone || this.proto[s] !== t.proto || this.sport[s] !== (t.sport ?? 0) ||
        this.dport[s] !== (t.dport ?? 0) || this.pool[this.hostIdx[s]!] !== host || this.tupleBits[s] !== tupleBits(t) ||
        this.icmpType[s] !== (t.icmp_type ?? 0) || this.icmpCode[s] !== (t.icmp_code ?? 0) || this.icmpId[s] !== (t.icmp_id ?? 0)) continue;
      if (this.family[s] === 6) {
        const a = this.addr6.get(s);
        if (a && a.src === t.src && a.dst === t.dst) return s;
        continue;
      }
      if (src4 < 0) {
        // a decoder's tuple carries the numbers; one built by hand (JSON, recordings) has text only
        src4 = t.src4 ?? ipv4ToU32(t.src);
        dst4 = t.dst4 ?? ipv4ToU32(t.dst);
      }
      if (this.src4[s] === src4 && this.dst4[s] === dst4) return s;
    }
    return -1;
  }

  // ---- fields ----

  /** The original tuple; `family` 6 keeps the addresses as text in a side map. */
  setTuple(slot: number, t: Tuple, family: 4 | 6): void {
    this.proto[slot] = t.proto;
    this.family[slot] = family;
    const s4 = family === 4 ? (t.src4 ?? ipv4ToU32(t.src)) : -1;
    const d4 = family === 4 ? (t.dst4 ?? ipv4ToU32(t.dst)) : -1;
    if (s4 >= 0 && d4 >= 0) {
      this.src4[slot] = s4;
      this.dst4[slot] = d4;
    } else {
      this.family[slot] = 6;
      this.addr6.set(slot, { src: t.src, dst: t.dst });
    }
    this.sport[slot] = t.sport ?? 0;
    this.dport[slot] = t.dport ?? 0;
    this.icmpType[slot] = t.icmp_type ?? 0;
    this.icmpCode[slot] = t.icmp_code ?? 0;
    this.icmpId[slot] = t.icmp_id ?? 0;
    this.tupleBits[slot] = tupleBits(t);
  }

  src(slot: number): string {
    return this.family[slot] === 6 ? this.addr6.get(slot)!.src : u32ToIpv4(this.src4[slot]!);
  }

  dst(slot: number): string {
    return this.family[slot] === 6 ? this.addr6.get(slot)!.dst : u32ToIpv4(this.dst4[slot]!);
  }

  orig(slot: number): Tuple {
    const b = this.tupleBits[slot]!;
    return {
      src: this.src(slot), dst: this.dst(slot), proto: this.proto[slot]!,
      sport: b & TUPLE_SPORT ? this.sport[slot] : undefined, dport: b & TUPLE_DPORT ? this.dport[slot] : undefined,
      icmp_type: b & TUPLE_ICMP_TYPE ? this.icmpType[slot] : undefined, icmp_code: b & TUPLE_ICMP_CODE ? this.icmpCode[slot] : undefined,
      icmp_id: b & TUPLE_ICMP_ID ? this.icmpId[slot] : undefined, zone: undefined,
    };
  }

  /** Keeps the reply tuple only when it is not the mirror of the original (nat.ts has the rule). */
  setReply(slot: number, r: Tuple, orig: Tuple): void {
    if (natKind(orig, r) === '') {
      if (this.nat.size !== 0) this.nat.delete(slot); // every event of every flow comes here; NAT is rare
    } else this.nat.set(slot, r);
  }

  reply(slot: number): Tuple {
    const n = this.nat.get(slot);
    if (n) return n;
    const b = this.tupleBits[slot]!;
    return {
      src: this.dst(slot), dst: this.src(slot), proto: this.proto[slot]!,
      sport: b & TUPLE_DPORT ? this.dport[slot] : undefined, dport: b & TUPLE_SPORT ? this.sport[slot] : undefined,
      icmp_type: undefined, icmp_code: undefined, icmp_id: undefined, zone: undefined,
    };
  }

  time(slot: number, f: T): Time | undefined {
    const i = (slot * T.Count + f) * 2;
    const sec = this.times[i]!;
    return sec === 0 ? undefined : { sec, nsec: this.times[i + 1]! };
  }

  has(slot: number, f: T): boolean {
    return this.times[(slot * T.Count + f) * 2] !== 0;
  }

  setTime(slot: number, f: T, sec: number, nsec: number): void {
    const i = (slot * T.Count + f) * 2;
    this.times[i] = sec;
    this.times[i + 1] = nsec;
  }

  /** The kernel's start or stop stamp of the flow, if it sent one. */
  kernelTime(slot: number, k: K): Time | undefined {
    const i = slot * 4 + k * 2;
    const sec = this.kernelTimes[i]!;
    return sec === 0 ? undefined : { sec, nsec: this.kernelTimes[i + 1]! };
  }

  setKernelTime(slot: number, k: K, t: Time): void {
    const i = slot * 4 + k * 2;
    this.kernelTimes[i] = t.sec;
    this.kernelTimes[i + 1] = t.nsec;
  }

  /** The stamp as a record carries it (ns since the epoch, exact: contract/u64.ts, no BigInt). */
  setKernelNs(slot: number, k: K, v: U64): void {
    if (!nsSplit(v)) throw new CtpipeError('RECORD_INVALID', `kernel stamp is not a uint64 of nanoseconds: ${JSON.stringify(String(v).slice(0, 40))}`);
    const i = slot * 4 + k * 2;
    this.kernelTimes[i] = split.sec;
    this.kernelTimes[i + 1] = split.nsec;
  }

  /** a later than the slot's time f (absent counts as earliest). */
  laterThan(slot: number, f: T, sec: number, nsec: number): boolean {
    const i = (slot * T.Count + f) * 2;
    const s = this.times[i]!;
    return sec > s || (sec === s && nsec > this.times[i + 1]!);
  }

  lastState(slot: number): number {
    const n = this.nStates[slot]!;
    if (n === 0) return -1;
    if (n > INLINE_STATES) return this.moreStates.get(slot)!.at(-1)!.code;
    return this.stateCode[slot * INLINE_STATES + n - 1]!;
  }

  pushState(slot: number, code: number, sec: number, nsec: number): void {
    const n = this.nStates[slot]!;
    if (n < INLINE_STATES) {
      this.stateCode[slot * INLINE_STATES + n] = code;
      this.stateTime[(slot * INLINE_STATES + n) * 2] = sec;
      this.stateTime[(slot * INLINE_STATES + n) * 2 + 1] = nsec;
    } else {
      let more = this.moreStates.get(slot);
      if (!more) this.moreStates.set(slot, (more = []));
      more.push({ code, sec, nsec });
    }
    if (n < 255) this.nStates[slot] = n + 1;
  }

  /** The TCP state path as names and times (a row's two arrays). */
  statePath(slot: number): { names: string[]; times: Time[] } {
    return { names: this.stateNames(slot), times: this.stateTimes(slot) };
  }

  /** The TCP state names in order (a row's tcp_states). */
  stateNames(slot: number): string[] {
    const names: string[] = [];
    const n = Math.min(this.nStates[slot]!, INLINE_STATES);
    for (let k = 0; k < n; k++) names.push(stateName(this.stateCode[slot * INLINE_STATES + k]!));
    if (this.nStates[slot]! > INLINE_STATES) for (const m of this.moreStates.get(slot) ?? []) names.push(stateName(m.code));
    return names;
  }

  /** When each TCP state began (a row's tcp_state_times). */
  stateTimes(slot: number): Time[] {
    const times: Time[] = [];
    const n = Math.min(this.nStates[slot]!, INLINE_STATES);
    for (let k = 0; k < n; k++) {
      const i = slot * INLINE_STATES + k;
      times.push({ sec: this.stateTime[i * 2]!, nsec: this.stateTime[i * 2 + 1]! });
    }
    if (this.nStates[slot]! > INLINE_STATES) for (const m of this.moreStates.get(slot) ?? []) times.push({ sec: m.sec, nsec: m.nsec });
    return times;
  }

  states(slot: number): { state: string; at: Time }[] {
    const { names, times } = this.statePath(slot);
    return names.map((state, k) => ({ state, at: times[k]! }));
  }


  /** 16 hex digits, made flat at once: concatenated halves were a cons string each row's encoder flattened again. */
  flowId(slot: number): string {
    const hi = this.hashHi[slot]!;
    const lo = this.hashLo[slot]!;
    return String.fromCharCode(HEXC[hi >>> 28]!, HEXC[(hi >>> 24) & 15]!, HEXC[(hi >>> 20) & 15]!, HEXC[(hi >>> 16) & 15]!,
      HEXC[(hi >>> 12) & 15]!, HEXC[(hi >>> 8) & 15]!, HEXC[(hi >>> 4) & 15]!, HEXC[hi & 15]!,
      HEXC[lo >>> 28]!, HEXC[(lo >>> 24) & 15]!, HEXC[(lo >>> 20) & 15]!, HEXC[(lo >>> 16) & 15]!,
      HEXC[(lo >>> 12) & 15]!, HEXC[(lo >>> 8) & 15]!, HEXC[(lo >>> 4) & 15]!, HEXC[lo & 15]!);
  }

  setCounters(slot: number, c: { orig?: { packets: U64; bytes: U64 }; reply?: { packets: U64; bytes: U64 } }): void {
    const i = slot * 4;
    if (c.orig) {
      this.counters[i] = Number(c.orig.packets);
      this.counters[i + 1] = Number(c.orig.bytes);
    }
    if (c.reply) {
      this.counters[i + 2] = Number(c.reply.packets);
      this.counters[i + 3] = Number(c.reply.bytes);
    }
    this.flags[slot]! |= F_COUNTERS;
  }

  /** Whether the slot holds these counters already (a direction the record lacks counts as the same). */
  sameCounters(slot: number, c: { orig?: { packets: U64; bytes: U64 }; reply?: { packets: U64; bytes: U64 } }): boolean {
    if ((this.flags[slot]! & F_COUNTERS) === 0) return false;
    const i = slot * 4;
    const k = this.counters;
    return (!c.orig || (k[i] === Number(c.orig.packets) && k[i + 1] === Number(c.orig.bytes)))
      && (!c.reply || (k[i + 2] === Number(c.reply.packets) && k[i + 3] === Number(c.reply.bytes)));
  }

  /** A Lifecycle of a checkpoint from before snapshots back into a slot (indexed). */
  loadLifecycle(l: Lifecycle): number {
    const s = this.alloc();
    this.ctId[s] = l.ctId;
    this.status[s] = l.status;
    this.events[s] = l.events;
    this.emittedEvents[s] = l.emittedEvents;
    this.generation[s] = l.generation;
    this.mark[s] = l.mark ?? 0;
    this.timeout[s] = l.timeout ?? -1;
    const [hi, lo] = [parseInt(l.flowId.slice(0, 8), 16), parseInt(l.flowId.slice(8), 16)];
    this.hashHi[s] = hi;
    this.hashLo[s] = lo;
    this.zone[s] = l.zone;
    this.hostIdx[s] = this.intern(l.host);
    this.runIdx[s] = this.intern(l.run);
    this.setTuple(s, l.orig, l.family === 'ipv6' ? 6 : 4);
    this.setReply(s, l.reply, l.orig);
    this.helperIdx[s] = l.helper === undefined ? 0 : this.intern(l.helper);
    this.flags[s] = F_LIVE | (l.sawHandshake ? F_HANDSHAKE : 0) | (l.related ? F_RELATED : 0) | (l.fromSnapshot ? F_SNAPSHOT : 0) |
      (l.closeInitOrig ? F_CLOSE_ORIG : 0) | (l.closeInitReply ? F_CLOSE_REPLY : 0) | (l.resynced ? F_RESYNCED : 0);
    if (l.counters) this.setCounters(s, l.counters);
    const put = (f: T, t: Time | undefined) => this.setTime(s, f, t?.sec ?? 0, t?.nsec ?? 0);
    put(T.First, l.firstSeen); put(T.Last, l.lastEvent); put(T.Established, l.establishedAt); put(T.SeenReply, l.seenReplyAt);
    put(T.Assured, l.assuredAt); put(T.Emitted, l.emittedAt);
    if (l.start !== undefined) this.setKernelNs(s, K.Start, l.start);
    if (l.stop !== undefined) this.setKernelNs(s, K.Stop, l.stop);
    for (const st of l.states) this.pushState(s, stateCode(st.state), st.at.sec, st.at.nsec);
    if (l.master || l.masterFlowId) this.master.set(s, { tuple: l.master, flowId: l.masterFlowId });
    this.index(s);
    return s;
  }
}

/** Character codes of the hex digits. */
const HEXC = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0));

function tupleBits(t: Tuple): number {
  return (t.sport !== undefined ? TUPLE_SPORT : 0) | (t.dport !== undefined ? TUPLE_DPORT : 0) | (t.icmp_type !== undefined ? TUPLE_ICMP_TYPE : 0) |
    (t.icmp_code !== undefined ? TUPLE_ICMP_CODE : 0) | (t.icmp_id !== undefined ? TUPLE_ICMP_ID : 0);
}

export function tupleKey(t: Tuple): string {
  return `${t.proto}|${t.src}|${t.sport ?? ''}|${t.dst}|${t.dport ?? ''}|${t.icmp_type ?? ''}|${t.icmp_code ?? ''}|${t.icmp_id ?? ''}`;
}

export function keyOf(host: string, zone: number, id: number, orig: Tuple): string {
  return `${host}|${zone}|${id}|${tupleKey(orig)}`;
}

const UNKNOWN_STATE = 255;
function stateName(code: number): string {
  return TCP_STATE_NAMES[code] ?? String(code);
}
function stateCode(name: string): number {
  const i = (TCP_STATE_NAMES as readonly string[]).indexOf(name);
  return i >= 0 ? i : Number.isInteger(Number(name)) && Number(name) < UNKNOWN_STATE ? Number(name) : UNKNOWN_STATE;
}
