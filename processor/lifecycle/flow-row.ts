/**
 * One connection's lifecycle as the `flows` table stores it (its columns are declared in
 * clickhouse/flow-columns.ts), read from the open-flow table; and the Lifecycle form a checkpoint
 * keeps of an open flow. Rows depend only on event data, never on the processing wall clock, so a
 * replayed batch produces the same rows.
 */
import type { Tuple, U64 } from '../../contract/records.js';
import type { Time } from '../clickhouse/ch-type.js';
import type { END_REASONS, FlowRow, LOST_BY } from '../clickhouse/flow-columns.js';
import { connState } from './conn-state.js';
import { F_CLOSE_ORIG, F_CLOSE_REPLY, F_COUNTERS, F_HANDSHAKE, F_RELATED, F_RESYNCED, F_SNAPSHOT, K, T, TUPLE_ICMP_CODE, TUPLE_ICMP_TYPE, type FlowTable } from './flow-table.js';
import { NO_NAT, natOf } from './nat.js';
import { NO_K8S_NAMES } from '../k8s/columns.js';
import { splitScope } from './scope.js';

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

/**
 * The row of an open-flow table's slot (`end` 'open' while it lives), read from its columns: no
 * Lifecycle object in between, as a row is made for every flow and this is the engine's hot path.
 * FlowRow is derived from the column list, so a column without a value here, or a value for no
 * column, fails the build; keep the properties in list order (a test compares the keys).
 */
export function rowOf(t: FlowTable, s: number, end: EndReason = 'open', endedAt?: Time, lostBy?: LostBy): FlowRow {
  const ended = end !== 'open';
  const f = t.flags[s]!;
  const bits = t.tupleBits[s]!;
  const origSrc = t.src(s);
  const origDst = t.dst(s);
  const firstSeen = t.time(s, T.First)!;
  const establishedAt = t.time(s, T.Established);
  const seenReplyAt = t.time(s, T.SeenReply);
  const assuredAt = t.time(s, T.Assured);
  // kernel timestamps are exact when present (nf_conntrack_timestamp=1); event times otherwise
  const startT = t.kernelTime(s, K.Start);
  const stopT = t.kernelTime(s, K.Stop) ?? (ended ? endedAt : undefined);
  const { names, times } = t.statePath(s);
  const natReply = t.nat.get(s);
  // without a NAT entry the reply tuple is the original's mirror: no translation
  const n = natReply ? natOf(t.orig(s), natReply) : NO_NAT;
  const c = s * 4;
  const counted = (f & F_COUNTERS) !== 0;
  const sawHandshake = (f & F_HANDSHAKE) !== 0;
  const { host, netns } = splitScope(t.host(s));
  return {
    host,
    netns,
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
    seen_reply_at: seenReplyAt ?? null,
    assured_at: assuredAt ?? null,
    ended_at: ended ? (endedAt ?? t.time(s, T.Last)!) : null,
    end_reason: end,
    lost_by: lostBy ?? '',
    duration_ms: ended && stopT ? Math.max(0, ms(startT ?? firstSeen, stopT)) : null,
    tcp_states: names,
    tcp_state_times: times,
    final_tcp_state: names[names.length - 1] ?? '',
    assured: assuredAt !== undefined,
    seen_reply: seenReplyAt !== undefined,
    conn_state: connState({
      proto: t.proto[s]!, states: names, seenReply: seenReplyAt !== undefined,
      sawHandshake, closeInitOrig: (f & F_CLOSE_ORIG) !== 0, closeInitReply: (f & F_CLOSE_REPLY) !== 0,
    }),
    handshake_ms: sawHandshake && establishedAt ? ms(firstSeen, establishedAt) : null,
    orig_packets: counted ? t.counters[c]! : 0,
    orig_bytes: counted ? t.counters[c + 1]! : 0,
    reply_packets: counted ? t.counters[c + 2]! : 0,
    reply_bytes: counted ? t.counters[c + 3]! : 0,
    helper: t.helper(s) ?? '',
    related: (f & F_RELATED) !== 0,
    master_flow_id: t.master.get(s)?.flowId ?? '',
    mark: t.mark[s]!,
    zone: t.zone[s]!,
    nat: n.nat,
    nat_src: n.natSrc,
    nat_dst: n.natDst,
    snapshot: (f & F_SNAPSHOT) !== 0,
    resynced: (f & F_RESYNCED) !== 0,
    version: t.events[s]! * 2 + (ended ? 1 : 0),
    ...NO_K8S_NAMES,
  };
}
