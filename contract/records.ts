/**
 * The records the collector emits and the processor consumes: the contract between them.
 * The JSON lines form (contract/json.ts) and the protobuf form (contract/ctpipe.v1.proto,
 * contract/proto.ts) are two encodings of these same objects; docs/RECORDS.md documents both.
 *
 * Conventions: fields the kernel did not send are absent (undefined). 64-bit kernel values (counters,
 * timestamps) are numbers while below 2^53 and decimal strings above (U64). Times are split into
 * whole seconds and nanoseconds so they stay exact without BigInt on the hot path.
 */

export type U64 = number | string;

export interface Tuple {
  src: string;
  dst: string;
  /**
   * The IPv4 addresses as 32-bit numbers, when a decoder made the tuple from their bytes: -1 for
   * an address that is not IPv4 (so `src4 === ipv4ToU32(src)` always). Absent on tuples built by
   * hand, from JSON or recordings: readers parse the text then. Neither is part of the contract's
   * JSON or protobuf form (blankTuple's tuples keep them out of every serialization).
   */
  readonly src4?: number;
  readonly dst4?: number;
  /** L4 protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP, 33 DCCP, 47 GRE, 136 UDP-Lite). */
  proto: number;
  sport?: number;
  dport?: number;
  icmp_type?: number;
  icmp_code?: number;
  icmp_id?: number;
  /** Directional zone (CTA_TUPLE_ZONE). */
  zone?: number;
}

export interface DirCounters {
  packets: U64;
  bytes: U64;
}

export interface SeqAdj {
  correction_pos: number;
  offset_before: number;
  offset_after: number;
}

export interface UnknownAttr {
  /** Where it was found, e.g. "ct", "ct.tuple_orig.proto". */
  path: string;
  type: number;
  hex: string;
}

export interface Stamp {
  host: string;
  /** Collector run id: new on every start, so sequence numbers restart visibly. */
  run: string;
  /** Per-run sequence number, gap-free across everything one run publishes. */
  seq: number;
  /** Event time: kernel CTA_TIMESTAMP_EVENT when sent, else the socket receive time. */
  sec: number;
  nsec: number;
  /**
   * The network namespace the record came from, when the collector follows several
   * (`collect.netns` all or containers): its name under /run/netns, else `inode:N`. Absent for a
   * collector of one namespace (records from before it stay as they were).
   */
  netns?: string;
}

export type CtType = 'new' | 'update' | 'destroy' | 'snapshot';

export interface CtRecord extends Stamp {
  type: CtType;
  /** CTA_ID: opaque 32-bit id; reused by the kernel, so never a key on its own. */
  id: number;
  family: 'ipv4' | 'ipv6';
  proto: number;
  orig: Tuple;
  reply: Tuple;
  /** IPS_* bitmask; the JSON form lists names. */
  status: number;
  tcp_state?: number;
  tcp_wscale_orig?: number;
  tcp_wscale_reply?: number;
  tcp_flags_orig?: number;
  tcp_flags_reply?: number;
  sctp_state?: number;
  sctp_vtag_orig?: number;
  sctp_vtag_reply?: number;
  dccp_state?: number;
  dccp_role?: number;
  dccp_handshake_seq?: U64;
  timeout?: number;
  mark?: number;
  zone?: number;
  use?: number;
  helper?: string;
  helper_info?: string;
  master?: Tuple;
  counters?: { orig?: DirCounters; reply?: DirCounters };
  /** Kernel start/stop timestamps, ns since the epoch (nf_conntrack_timestamp=1). */
  start?: U64;
  stop?: U64;
  /** True when `sec/nsec` came from the kernel's CTA_TIMESTAMP_EVENT. */
  kernel_time?: boolean;
  labels?: string;
  secctx?: string;
  secmark?: number;
  seqadj_orig?: SeqAdj;
  seqadj_reply?: SeqAdj;
  synproxy?: { isn: number; its: number; tsoff: number };
  unknown?: UnknownAttr[];
}

/**
 * A flow record and a tuple with every field declared, absent ones undefined, so that all of them
 * share one hidden class in V8 (decoders that add fields one by one make the engine's property
 * accesses megamorphic). Undefined fields drop out of JSON and protobuf alike.
 *
 * Classes rather than object literals: V8 pretenures a literal's allocation site once its objects
 * survive a scavenge (records do: they wait in the run sink's slices), so every record was then
 * allocated in old space, and its stores paid for the old generation (issue 19: 13% of `ctpipe
 * run`'s main thread in the 45-property literal). A constructor allocates in the young generation
 * with its fields in one fixed order. The own fields and their order are the literal's, so
 * JSON.stringify and every reader see the same object; only the prototype differs.
 */
class FlowRecord implements CtRecord {
  declare type: CtType;
  declare host: string;
  declare run: string;
  declare seq: number;
  declare sec: number;
  declare nsec: number;
  declare netns?: string;
  declare id: number;
  declare family: 'ipv4' | 'ipv6';
  declare proto: number;
  declare orig: Tuple;
  declare reply: Tuple;
  declare status: number;
  declare tcp_state?: number;
  declare tcp_wscale_orig?: number;
  declare tcp_wscale_reply?: number;
  declare tcp_flags_orig?: number;
  declare tcp_flags_reply?: number;
  declare sctp_state?: number;
  declare sctp_vtag_orig?: number;
  declare sctp_vtag_reply?: number;
  declare dccp_state?: number;
  declare dccp_role?: number;
  declare dccp_handshake_seq?: U64;
  declare timeout?: number;
  declare mark?: number;
  declare zone?: number;
  declare use?: number;
  declare helper?: string;
  declare helper_info?: string;
  declare master?: Tuple;
  declare counters?: { orig?: DirCounters; reply?: DirCounters };
  declare start?: U64;
  declare stop?: U64;
  declare kernel_time?: boolean;
  declare labels?: string;
  declare secctx?: string;
  declare secmark?: number;
  declare seqadj_orig?: SeqAdj;
  declare seqadj_reply?: SeqAdj;
  declare synproxy?: { isn: number; its: number; tsoff: number };
  declare unknown?: UnknownAttr[];

  constructor(type: CtType, host: string, run: string, seq: number, sec: number, nsec: number, family: 'ipv4' | 'ipv6') {
    this.type = type;
    this.host = host;
    this.run = run;
    this.seq = seq;
    this.sec = sec;
    this.nsec = nsec;
    this.netns = undefined;
    this.id = 0;
    this.family = family;
    this.proto = 0;
    this.orig = undefined as never;
    this.reply = undefined as never;
    this.status = 0;
    this.tcp_state = undefined;
    this.tcp_wscale_orig = undefined;
    this.tcp_wscale_reply = undefined;
    this.tcp_flags_orig = undefined;
    this.tcp_flags_reply = undefined;
    this.sctp_state = undefined;
    this.sctp_vtag_orig = undefined;
    this.sctp_vtag_reply = undefined;
    this.dccp_state = undefined;
    this.dccp_role = undefined;
    this.dccp_handshake_seq = undefined;
    this.timeout = undefined;
    this.mark = undefined;
    this.zone = undefined;
    this.use = undefined;
    this.helper = undefined;
    this.helper_info = undefined;
    this.master = undefined;
    this.counters = undefined;
    this.start = undefined;
    this.stop = undefined;
    this.kernel_time = undefined;
    this.labels = undefined;
    this.secctx = undefined;
    this.secmark = undefined;
    this.seqadj_orig = undefined;
    this.seqadj_reply = undefined;
    this.synproxy = undefined;
    this.unknown = undefined;
  }
}

export function blankCtRecord(type: CtType, host: string, run: string, seq: number, sec: number, nsec: number, family: 'ipv4' | 'ipv6'): CtRecord {
  return new FlowRecord(type, host, run, seq, sec, nsec, family);
}

/**
 * A decoder's tuple. The addresses' numbers (issue 19: the open-flow table keeps IPv4 addresses as
 * numbers, and parsed each record's text back) are private fields behind accessors: no own
 * enumerable property, so JSON.stringify, spreads, Object.keys, snapshots and test equality see
 * the contract's fields only. A copy made by spreading has none and falls back to the text.
 */
class TupleObj implements DecodedTuple {
  src = '';
  dst = '';
  proto = 0;
  sport?: number;
  dport?: number;
  icmp_type?: number;
  icmp_code?: number;
  icmp_id?: number;
  zone?: number;
  #src4 = -1;
  #dst4 = -1;

  get src4(): number {
    return this.#src4;
  }

  set src4(v: number) {
    this.#src4 = v;
  }

  get dst4(): number {
    return this.#dst4;
  }

  set dst4(v: number) {
    this.#dst4 = v;
  }
}

/** A tuple a decoder fills: its address numbers are set with its addresses (-1 for IPv6). */
export interface DecodedTuple extends Tuple {
  src4: number;
  dst4: number;
}

export function blankTuple(): DecodedTuple {
  return new TupleObj();
}

/** A DESTROY's counters (the same reasons as the record's: literals here were pretenured too). */
class FlowCounters {
  declare orig?: DirCounters;
  declare reply?: DirCounters;
  constructor() {
    this.orig = undefined;
    this.reply = undefined;
  }
}

export function blankCounters(): { orig?: DirCounters; reply?: DirCounters } {
  return new FlowCounters();
}

class DirCountersObj implements DirCounters {
  constructor(public packets: U64, public bytes: U64) {}
}

export function dirCounters(packets: U64, bytes: U64): DirCounters {
  return new DirCountersObj(packets, bytes);
}

export interface ExpRecord extends Stamp {
  type: 'exp_new' | 'exp_destroy';
  /** True for rows from the start-up or resync dump rather than live events. */
  snapshot?: boolean;
  family: 'ipv4' | 'ipv6';
  id?: number;
  master?: Tuple;
  expected?: Tuple;
  mask?: Tuple;
  timeout?: number;
  helper?: string;
  zone?: number;
  flags?: number;
  class?: number;
  nat_dir?: number;
  nat?: Tuple;
  fn?: string;
  unknown?: UnknownAttr[];
}

export const STAT_FIELDS = [
  'found', 'invalid', 'insert', 'insert_failed', 'drop', 'early_drop', 'error', 'search_restart',
  'clash_resolve', 'chaintoolong',
] as const;
export type StatField = (typeof STAT_FIELDS)[number];

/** Per-CPU statistics summed over the CPUs (a stats record's totals). */
export function sumCpus(cpus: readonly CpuStats[]): Record<StatField, number> {
  const t = {} as Record<StatField, number>;
  for (const k of STAT_FIELDS) t[k] = 0;
  for (const c of cpus) for (const k of STAT_FIELDS) t[k] += c[k];
  return t;
}
export type CpuStats = { cpu: number } & Record<StatField, number>;

export interface StatsRecord extends Stamp {
  type: 'stats';
  /** Per-CPU kernel counters (u32, wrapping) exactly as read. */
  cpus: CpuStats[];
  /** Sum over CPUs (mod 2^32 is NOT applied: the sum of u32 counters). */
  totals: Record<StatField, number>;
  entries?: number;
  max_entries?: number;
  exp_new?: number;
  exp_create?: number;
  exp_delete?: number;
  /** The collector's own view since start: events decoded, kernel socket drops, ENOBUFS seen. */
  collector: { events: number; drops: number; enobufs: number; rejected: number };
}

export type LossReason = 'enobufs' | 'socket_drops' | 'buffer_full' | 'spool_full' | 'truncated';

export interface LossRecord extends Stamp {
  type: 'loss';
  reason: LossReason;
  /** Messages known lost (kernel sk_drops delta, or records dropped past the bounds); -1 if unknown. */
  count: number;
  /** Which stream lost them: "events" (ct/exp multicast), "nflog", or "publish". */
  source: string;
  /** First and last seq of records dropped by the publisher, when the loss is ours. */
  first_seq?: number;
  last_seq?: number;
  /** A resync dump follows (snapshot records). */
  resync: boolean;
}

export interface InvalidPacketRecord extends Stamp {
  type: 'invalid_packet';
  family: 'ipv4' | 'ipv6';
  proto: number;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** TCP flags as letters in the order FSRPAUEC (F=FIN, S=SYN, R=RST, P=PSH, A=ACK, U=URG, E=ECE, C=CWR). */
  tcp_flags?: string;
  icmp_type?: number;
  icmp_code?: number;
  length: number;
  indev?: string;
  outdev?: string;
  prefix?: string;
  mark?: number;
  /** Packets this sample stands for: 1 + those suppressed by the rate limit since the last sample. */
  weight: number;
}

/** A table dump finished: every entry it found came before this, as snapshot records. */
export interface DumpEndRecord extends Stamp {
  type: 'dump_end';
  /** `start` (the collector's first dump) or `resync` (after a loss record with resync). */
  why: 'start' | 'resync';
  /** The seq the collector's next record had when the dump began: the dump saw what happened before it. */
  start_seq: number;
  flows: number;
  expectations: number;
}

export type CtpipeRecord = CtRecord | ExpRecord | StatsRecord | LossRecord | InvalidPacketRecord | DumpEndRecord;
export type RecordType = CtpipeRecord['type'];
export const RECORD_TYPES: readonly RecordType[] = [
  'new', 'update', 'destroy', 'snapshot', 'exp_new', 'exp_destroy', 'stats', 'loss', 'invalid_packet', 'dump_end',
];
