/**
 * One connection's lifecycle as the `flows` table stores it (its columns are declared in
 * clickhouse/flow-columns.ts), read from the open-flow table; and the Lifecycle form a checkpoint
 * keeps of an open flow. Rows depend only on event data, never on the processing wall clock, so a
 * replayed batch produces the same rows.
 */
import type { Tuple, U64 } from '../../contract/records.js';
import type { Time } from '../clickhouse/ch-type.js';
import type { END_REASONS, FlowRow, LOST_BY } from '../clickhouse/flow-columns.js';
import { connStateOf } from './conn-state.js';
import { F_CLOSE_ORIG, F_CLOSE_REPLY, F_COUNTERS, F_HANDSHAKE, F_RELATED, F_RESYNCED, F_SNAPSHOT, T, TUPLE_ICMP_CODE, TUPLE_ICMP_TYPE, type FlowTable } from './flow-table.js';
import { NO_NAT, natOf } from './nat.js';

export type { FlowRow, Time };
export type EndReason = (typeof END_REASONS)[number];
export type LostBy = (typeof LOST_BY)[number];

export interface Lifecycle {
  flowId: string;
  host: string;
  run: string;
  zone: number;
  ctId: number;
  family: 'ipv4' | 'ipv6';
  proto: number;
  orig: Tuple;
  reply: Tuple;
  firstSeen: Time;
  lastEvent: Time;
  states: { state: string; at: Time }[];
  sawHandshake: boolean;
  establishedAt?: Time;
  seenReplyAt?: Time;
  assuredAt?: Time;
  endedAt?: Time;
  endReason: EndReason;
  /**
   * Why a `lost` lifecycle was closed: `timeout` (no DESTROY after the kernel timeout), `evicted`
   * (memory bound), or `resync` (open when the kernel dropped events, and absent from the dump after).
   */
  lostBy?: LostBy;
  status: number;
  timeout?: number;
  start?: U64;
  stop?: U64;
  counters?: { orig?: { packets: U64; bytes: U64 }; reply?: { packets: U64; bytes: U64 } };
  helper?: string;
  mark?: number;
  related: boolean;
  master?: Tuple;
  masterFlowId?: string;
  fromSnapshot: boolean;
  /** Open across a kernel event loss and confirmed by the dump after it: events of it may be missing. */
  resynced: boolean;
  /** While a resync is under way: the seq of the loss record since which this flow awaits the dump. */
  resyncPendingSince?: number;
  closeInitOrig: boolean;
  closeInitReply: boolean;
  /** Events applied: the row version grows with it, so the newest row wins. */
  events: number;
  /** Which lifecycle of a reused key this is (0 for the first). */
  generation: number;
  /** Event time and event count of the last row emitted while open. */
  emittedAt?: Time;
  emittedEvents: number;
}

export function ms(a: Time, b: Time): number {
  return (b.sec - a.sec) * 1000 + (b.nsec - a.nsec) / 1e6;
}

/** The state path of a flow without TCP states (most rows in a flood): shared, and frozen so no row can change it. */
const NO_STATES = Object.freeze([]) as unknown as string[];
const NO_TIMES = Object.freeze([]) as unknown as Time[];

/**
 * The row of an open-flow table's slot (`end` 'open' while it lives), read from its columns: no
 * Lifecycle object in between, as a row is made for every flow and this is the engine's hot path
 * (nothing is allocated here but the row, its times and strings: no summary or split objects).
 * FlowRow is derived from the column list, so a column without a value here, or a value for no
 * column, fails the build; keep the properties in list order (a test compares the keys).
 */
export function rowOf(t: FlowTable, s: number, end: EndReason = 'open', endedAt?: Time, lostBy?: LostBy): FlowRow {
  const ended = end !== 'open';
  const f = t.flags[s]!;
  const bits = t.tupleBits[s]!;
  const origSrc = t.src(s);
  const origDst = t.dst(s);
  const ti = s * T.Count * 2;
  const times = t.times;
  const firstSec = times[ti]!;
  const firstNsec = times[ti + 1]!;
  const firstSeen: Time = { sec: firstSec, nsec: firstNsec };
  const establishedAt = t.time(s, T.Established);
  const seenReply = times[ti + T.SeenReply * 2] !== 0;
  const assuredAt = t.time(s, T.Assured);
  const nStates = t.nStates[s]!;
  const names = nStates === 0 ? NO_STATES : t.stateNames(s);
  const natReply = t.nat.size === 0 ? undefined : t.nat.get(s);
  // without a NAT entry the reply tuple is the original's mirror: no translation
  const n = natReply ? natOf(t.orig(s), natReply) : NO_NAT;
  const c = s * 4;
  const counted = (f & F_COUNTERS) !== 0;
  const sawHandshake = (f & F_HANDSHAKE) !== 0;
  return {
    host: t.scopeHost(s),
    netns: t.scopeNetns(s),
    run: t.str(t.runIdx[s]!),
    flow_id: t.flowId(s),
    ct_id: t.ctId[s]!,
    family: t.family[s] === 6 ? 'ipv6' : 'ipv4',
    proto: t.proto[s]!,
    orig_src: origSrc,
    orig_dst: origDst,
    orig_sport: t.sport[s]!,
    orig_dport: t.dport[s]!,
    reply_src: natReply ? natReply.src : origDst,
    reply_dst: natReply ? natReply.dst : origSrc,
    reply_sport: natReply ? (natReply.sport ?? 0) : t.dport[s]!,
    reply_dport: natReply ? (natReply.dport ?? 0) : t.sport[s]!,
    icmp_type: bits & TUPLE_ICMP_TYPE ? t.icmpType[s]! : null,
    icmp_code: bits & TUPLE_ICMP_CODE ? t.icmpCode[s]! : null,
    first_seen: firstSeen,
    established_at: establishedAt ?? null,
    seen_reply_at: seenReply ? t.time(s, T.SeenReply)! : null,
    assured_at: assuredAt ?? null,
    ended_at: ended ? (endedAt ?? t.time(s, T.Last)!) : null,
    end_reason: end,
    lost_by: lostBy ?? '',
    duration_ms: ended ? durationMs(t, s, firstSec, firstNsec, endedAt) : null,
    tcp_states: names,
    tcp_state_times: nStates === 0 ? NO_TIMES : t.stateTimes(s),
    final_tcp_state: nStates === 0 ? '' : names[names.length - 1]!,
    assured: assuredAt !== undefined,
    seen_reply: seenReply,
    conn_state: connStateOf(t.proto[s]!, names, seenReply, sawHandshake, (f & F_CLOSE_ORIG) !== 0, (f & F_CLOSE_REPLY) !== 0),
    handshake_ms: sawHandshake && establishedAt ? ms(firstSeen, establishedAt) : null,
    orig_packets: counted ? t.counters[c]! : 0,
    orig_bytes: counted ? t.counters[c + 1]! : 0,
    reply_packets: counted ? t.counters[c + 2]! : 0,
    reply_bytes: counted ? t.counters[c + 3]! : 0,
    helper: t.helper(s) ?? '',
    related: (f & F_RELATED) !== 0,
    master_flow_id: t.master.size === 0 ? '' : (t.master.get(s)?.flowId ?? ''),
    mark: t.mark[s]!,
    zone: t.zone[s]!,
    nat: n.nat,
    nat_src: n.natSrc,
    nat_dst: n.natDst,
    snapshot: (f & F_SNAPSHOT) !== 0,
    resynced: (f & F_RESYNCED) !== 0,
    version: t.events[s]! * 2 + (ended ? 1 : 0),
    // written out, not spread from NO_K8S_NAMES: a spread copies them one by one at run time
    orig_src_k8s_namespace: '', orig_src_k8s_pod: '', orig_src_k8s_workload: '', orig_src_k8s_node: '',
    orig_dst_k8s_namespace: '', orig_dst_k8s_pod: '', orig_dst_k8s_workload: '', orig_dst_k8s_node: '',
    orig_dst_k8s_service: '',
  };
}

/**
 * An ended flow's duration: from the kernel's start stamp (else first_seen) to its stop stamp (else
 * the end's event time); null without either end. Kernel stamps are exact when present
 * (nf_conntrack_timestamp=1). Read from the columns, with ms()'s arithmetic, without Time objects.
 */
function durationMs(t: FlowTable, s: number, firstSec: number, firstNsec: number, endedAt: Time | undefined): number | null {
  const kt = t.kernelTimes;
  const k = s * 4;
  let stopSec: number;
  let stopNsec: number;
  if (kt[k + 2] !== 0) {
    stopSec = kt[k + 2]!;
    stopNsec = kt[k + 3]!;
  } else if (endedAt) {
    stopSec = endedAt.sec;
    stopNsec = endedAt.nsec;
  } else return null;
  const started = kt[k] !== 0;
  const startSec = started ? kt[k]! : firstSec;
  const startNsec = started ? kt[k + 1]! : firstNsec;
  return Math.max(0, (stopSec - startSec) * 1000 + (stopNsec - startNsec) / 1e6);
}
