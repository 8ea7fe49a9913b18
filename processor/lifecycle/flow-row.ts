/**
 * One connection's lifecycle as the `flows` table stores it (the column contract of the processor
 * issue), built from the lifecycle state. Rows depend only on event data, never on the processing
 * wall clock, so a replayed batch produces the same rows.
 */
import type { Tuple, U64 } from '../../contract/records.js';
import { connState, type ConnState } from './conn-state.js';

export interface Time {
  sec: number;
  nsec: number;
}

export type EndReason = 'open' | 'destroy' | 'lost';
export type LostBy = 'timeout' | 'evicted' | 'resync';

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

export interface FlowRow {
  host: string;
  run: string;
  flow_id: string;
  ct_id: number;
  family: 'ipv4' | 'ipv6';
  proto: number;
  orig_src: string;
  orig_dst: string;
  orig_sport: number;
  orig_dport: number;
  reply_src: string;
  reply_dst: string;
  reply_sport: number;
  reply_dport: number;
  icmp_type: number | null;
  icmp_code: number | null;
  first_seen: Time;
  established_at: Time | null;
  seen_reply_at: Time | null;
  assured_at: Time | null;
  ended_at: Time | null;
  end_reason: EndReason;
  lost_by: string;
  duration_ms: number | null;
  tcp_states: string[];
  tcp_state_times: Time[];
  final_tcp_state: string;
  assured: boolean;
  seen_reply: boolean;
  conn_state: ConnState;
  handshake_ms: number | null;
  orig_packets: U64;
  orig_bytes: U64;
  reply_packets: U64;
  reply_bytes: U64;
  helper: string;
  related: boolean;
  master_flow_id: string;
  mark: number;
  zone: number;
  /** '', 'snat', 'dnat' or 'snat+dnat': which side the reply tuple shows translated. */
  nat: string;
  nat_src: string;
  nat_dst: string;
  snapshot: boolean;
  resynced: boolean;
  version: number;
}

export function ms(a: Time, b: Time): number {
  return (b.sec - a.sec) * 1000 + (b.nsec - a.nsec) / 1e6;
}

function nsToTime(v: U64): Time {
  const n = BigInt(v);
  return { sec: Number(n / 1_000_000_000n), nsec: Number(n % 1_000_000_000n) };
}

/** Source and destination NAT as the reply tuple reveals them (it is the orig tuple mirrored otherwise). */
export function natOf(o: Tuple, r: Tuple): { nat: string; natSrc: string; natDst: string } {
  const dnat = r.src !== o.dst || (o.dport !== undefined && r.sport !== o.dport);
  const snat = r.dst !== o.src || (o.sport !== undefined && r.dport !== o.sport);
  const port = (a: string, p: number | undefined) => (p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  return {
    nat: snat && dnat ? 'snat+dnat' : snat ? 'snat' : dnat ? 'dnat' : '',
    natSrc: snat ? port(r.dst, r.dport) : '',
    natDst: dnat ? port(r.src, r.sport) : '',
  };
}

export function toRow(l: Lifecycle): FlowRow {
  const ended = l.endReason !== 'open';
  // Kernel timestamps are exact when present (nf_conntrack_timestamp=1); event times otherwise.
  const startT = l.start !== undefined ? nsToTime(l.start) : l.firstSeen;
  const stopT = l.stop !== undefined ? nsToTime(l.stop) : l.endedAt;
  const states = l.states.map((s) => s.state);
  const n = natOf(l.orig, l.reply);
  return {
    host: l.host,
    run: l.run,
    flow_id: l.flowId,
    ct_id: l.ctId,
    family: l.family,
    proto: l.proto,
    orig_src: l.orig.src,
    orig_dst: l.orig.dst,
    orig_sport: l.orig.sport ?? 0,
    orig_dport: l.orig.dport ?? 0,
    reply_src: l.reply.src,
    reply_dst: l.reply.dst,
    reply_sport: l.reply.sport ?? 0,
    reply_dport: l.reply.dport ?? 0,
    icmp_type: l.orig.icmp_type ?? null,
    icmp_code: l.orig.icmp_code ?? null,
    first_seen: l.firstSeen,
    established_at: l.establishedAt ?? null,
    seen_reply_at: l.seenReplyAt ?? null,
    assured_at: l.assuredAt ?? null,
    ended_at: ended ? (l.endedAt ?? l.lastEvent) : null,
    end_reason: l.endReason,
    lost_by: l.lostBy ?? '',
    duration_ms: ended && stopT ? Math.max(0, ms(startT, stopT)) : null,
    tcp_states: states,
    tcp_state_times: l.states.map((s) => s.at),
    final_tcp_state: states[states.length - 1] ?? '',
    assured: l.assuredAt !== undefined,
    seen_reply: l.seenReplyAt !== undefined,
    conn_state: connState({
      proto: l.proto, states, seenReply: l.seenReplyAt !== undefined,
      sawHandshake: l.sawHandshake, closeInitOrig: l.closeInitOrig, closeInitReply: l.closeInitReply,
    }),
    handshake_ms: l.sawHandshake && l.establishedAt ? ms(l.firstSeen, l.establishedAt) : null,
    orig_packets: l.counters?.orig?.packets ?? 0,
    orig_bytes: l.counters?.orig?.bytes ?? 0,
    reply_packets: l.counters?.reply?.packets ?? 0,
    reply_bytes: l.counters?.reply?.bytes ?? 0,
    helper: l.helper ?? '',
    related: l.related,
    master_flow_id: l.masterFlowId ?? '',
    mark: l.mark ?? 0,
    zone: l.zone,
    nat: n.nat,
    nat_src: n.natSrc,
    nat_dst: n.natDst,
    snapshot: l.fromSnapshot,
    resynced: l.resynced,
    version: l.events * 2 + (ended ? 1 : 0),
  };
}
