/**
 * rowOf, the engine's per-row hot path, against the object path it replaced (kept here as the
 * reference: Time objects from the table's accessors, the state path as one object, the scope
 * split per row, a summary object for conn_state, the Kubernetes names spread in): for varied flows
 * both give the same row and the same RowBinary bytes, column by column. Also the kernel stamps
 * read from their decimal text, against BigInt division.
 */
import { describe, expect, it } from 'vitest';
import type { Tuple, U64 } from '../../contract/records.js';
import { codecOf } from '../../processor/clickhouse/table-rows.js';
import { ByteSink } from '../../processor/clickhouse/rowbinary.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { NO_K8S_NAMES } from '../../processor/k8s/columns.js';
import { connState } from '../../processor/lifecycle/conn-state.js';
import { ms, rowOf, type EndReason, type Lifecycle, type LostBy, type Time } from '../../processor/lifecycle/flow-row.js';
import { F_CLOSE_ORIG, F_CLOSE_REPLY, F_COUNTERS, F_HANDSHAKE, F_RELATED, F_RESYNCED, F_SNAPSHOT, FlowTable, K, T, TUPLE_ICMP_CODE, TUPLE_ICMP_TYPE } from '../../processor/lifecycle/flow-table.js';
import { NO_NAT, natOf } from '../../processor/lifecycle/nat.js';
import { scopeOf, splitScope } from '../../processor/lifecycle/scope.js';
import { mulberry32 } from '../helpers/random.js';

/** The row as rowOf made it before it read the columns directly (b172af4), the reference. */
function objectRow(t: FlowTable, s: number, end: EndReason = 'open', endedAt?: Time, lostBy?: LostBy): FlowRow {
  const ended = end !== 'open';
  const f = t.flags[s]!;
  const origSrc = t.src(s);
  const origDst = t.dst(s);
  const firstSeen = t.time(s, T.First)!;
  const establishedAt = t.time(s, T.Established);
  const seenReplyAt = t.time(s, T.SeenReply);
  const assuredAt = t.time(s, T.Assured);
  const startT = t.kernelTime(s, K.Start);
  const stopT = t.kernelTime(s, K.Stop) ?? (ended ? endedAt : undefined);
  const { names, times } = t.statePath(s);
  const natReply = t.nat.get(s);
  const n = natReply ? natOf(t.orig(s), natReply) : NO_NAT;
  const c = s * 4;
  const counted = (f & F_COUNTERS) !== 0;
  const sawHandshake = (f & F_HANDSHAKE) !== 0;
  const { host, netns } = splitScope(t.host(s));
  const bits = t.tupleBits[s]!;
  return {
    host, netns, run: t.str(t.runIdx[s]!), flow_id: t.flowId(s), ct_id: t.ctId[s]!, family: t.family[s] === 6 ? 'ipv6' : 'ipv4', proto: t.proto[s]!,
    orig_src: origSrc, orig_dst: origDst, orig_sport: t.sport[s]!, orig_dport: t.dport[s]!,
    reply_src: natReply ? natReply.src : origDst, reply_dst: natReply ? natReply.dst : origSrc,
    reply_sport: natReply ? (natReply.sport ?? 0) : t.dport[s]!, reply_dport: natReply ? (natReply.dport ?? 0) : t.sport[s]!,
    icmp_type: bits & TUPLE_ICMP_TYPE ? t.icmpType[s]! : null, icmp_code: bits & TUPLE_ICMP_CODE ? t.icmpCode[s]! : null,
    first_seen: firstSeen, established_at: establishedAt ?? null, seen_reply_at: seenReplyAt ?? null, assured_at: assuredAt ?? null,
    ended_at: ended ? (endedAt ?? t.time(s, T.Last)!) : null, end_reason: end, lost_by: lostBy ?? '',
    duration_ms: ended && stopT ? Math.max(0, ms(startT ?? firstSeen, stopT)) : null,
    tcp_states: names, tcp_state_times: times, final_tcp_state: names[names.length - 1] ?? '',
    assured: assuredAt !== undefined, seen_reply: seenReplyAt !== undefined,
    conn_state: connState({ proto: t.proto[s]!, states: names, seenReply: seenReplyAt !== undefined, sawHandshake,
      closeInitOrig: (f & F_CLOSE_ORIG) !== 0, closeInitReply: (f & F_CLOSE_REPLY) !== 0 }),
    handshake_ms: sawHandshake && establishedAt ? ms(firstSeen, establishedAt) : null,
    orig_packets: counted ? t.counters[c]! : 0, orig_bytes: counted ? t.counters[c + 1]! : 0,
    reply_packets: counted ? t.counters[c + 2]! : 0, reply_bytes: counted ? t.counters[c + 3]! : 0,
    helper: t.helper(s) ?? '', related: (f & F_RELATED) !== 0, master_flow_id: t.master.get(s)?.flowId ?? '',
    mark: t.mark[s]!, zone: t.zone[s]!, nat: n.nat, nat_src: n.natSrc, nat_dst: n.natDst,
    snapshot: (f & F_SNAPSHOT) !== 0, resynced: (f & F_RESYNCED) !== 0, version: t.events[s]! * 2 + (ended ? 1 : 0),
    ...NO_K8S_NAMES,
  };
}

const TCP = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE'];
const BIG: U64[] = [0, 1, 2 ** 53 - 1, '9007199254740993', '18446744073709549568', '12345678901234567890']; // 2^64 - 2048: the last double below 2^64

/** A varied lifecycle: family, protocol, NAT, states (past the inline four), stamps, counters past 2^53, helper, master, flags. */
function lifecycle(i: number, rnd: () => number): Lifecycle {
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rnd() * xs.length)]!;
  const v6 = rnd() < 0.3;
  const proto = pick([6, 6, 17, 1, 58, 132]);
  const ported = proto === 6 || proto === 17 || proto === 132;
  const icmp = proto === 1 || proto === 58;
  const src = v6 ? `2001:db8::${(i + 1).toString(16)}` : `10.${i & 255}.${(i >> 8) & 255}.${(i * 7) & 255}`;
  const dst = v6 ? pick(['2001:db8:1::2', '::ffff:192.0.2.9', 'fe80::1']) : pick(['203.0.113.9', '0.0.0.0', '255.255.255.255']);
  const orig: Tuple = {
    src, dst, proto, sport: ported ? 1024 + i : undefined, dport: ported ? pick([53, 443, 65535]) : undefined,
    icmp_type: icmp ? 8 : undefined, icmp_code: icmp ? pick([0, 3]) : undefined, icmp_id: icmp ? i & 0xffff : undefined, zone: undefined,
  };
  const mirror: Tuple = { ...orig, src: dst, dst: src, sport: orig.dport, dport: orig.sport, icmp_type: icmp ? 0 : undefined };
  const nat = rnd() < 0.4;
  const reply: Tuple = nat ? { ...mirror, src: v6 ? '2001:db8:2::5' : '192.0.2.5', dst: rnd() < 0.5 ? mirror.dst : (v6 ? '2001:db8:3::1' : '198.51.100.1'), sport: ported ? 8080 : undefined } : mirror;
  const sec = 1_795_000_000 + i;
  const at = (d: number): Time => ({ sec: sec + d, nsec: (i * 7919 + d) % 1e9 });
  const nStates = proto === 6 ? Math.floor(rnd() * 7) : 0;
  const states = Array.from({ length: nStates }, (_, k) => ({ state: TCP[(k + Math.floor(rnd() * 3)) % TCP.length]!, at: at(k) }));
  const opt = <X>(x: X): X | undefined => (rnd() < 0.5 ? x : undefined);
  const stamped = rnd() < 0.5;
  return {
    flowId: (i * 0x9e3779b1 >>> 0).toString(16).padStart(8, '0') + (i * 40503 >>> 0).toString(16).padStart(8, '0'),
    host: rnd() < 0.3 ? scopeOf('node-1', `ns${i % 3}`) : pick(['fw', 'h\u00e9te']), run: pick(['r1', 'run-2']), zone: pick([0, 7]),
    ctId: i + 1, family: v6 ? 'ipv6' : 'ipv4', proto, orig, reply, firstSeen: at(0), lastEvent: at(9), states,
    sawHandshake: rnd() < 0.5, establishedAt: opt(at(1)), seenReplyAt: opt(at(1)), assuredAt: opt(at(2)), endReason: 'open',
    status: 14, timeout: opt(120), start: stamped ? `${sec - 1}${String(123_456_789 + i).padStart(9, '0')}` : undefined,
    stop: stamped && rnd() < 0.5 ? `${sec + 5}000000042` : undefined,
    counters: rnd() < 0.7 ? { orig: { packets: pick(BIG), bytes: pick(BIG) }, reply: { packets: pick(BIG), bytes: pick(BIG) } } : undefined,
    helper: opt(pick(['ftp', 'sip'])), mark: opt(0xffffffff), related: rnd() < 0.2, masterFlowId: opt('00000000deadbeef'),
    fromSnapshot: rnd() < 0.2, resynced: rnd() < 0.2, closeInitOrig: rnd() < 0.3, closeInitReply: rnd() < 0.3,
    events: 1 + Math.floor(rnd() * 5), generation: 0, emittedEvents: 0,
  };
}

const K8S_SET: Record<keyof typeof NO_K8S_NAMES, string> = {
  orig_src_k8s_namespace: 'default', orig_src_k8s_pod: 'web-7d9f', orig_src_k8s_workload: 'web', orig_src_k8s_node: 'n1',
  orig_dst_k8s_namespace: 'kube-system', orig_dst_k8s_pod: 'coredns-x', orig_dst_k8s_workload: 'coredns', orig_dst_k8s_node: 'n2',
  orig_dst_k8s_service: 'kube-dns',
};

function bytesOf(rows: FlowRow[]): Buffer {
  const codec = codecOf(FLOW_COLUMN_DEFS);
  const sink = new ByteSink(1 << 12);
  for (const r of rows) codec.encode(sink, r);
  return Buffer.concat(sink.pieces(0, sink.offset));
}

describe('flow rows from the table\'s columns', () => {
  it('gives, for varied flows and every way a flow ends, the same row and the same RowBinary bytes as the object path', () => {
    const rnd = mulberry32(19);
    const t = new FlowTable();
    const slots = Array.from({ length: 400 }, (_, i) => t.loadLifecycle(lifecycle(i, rnd)));
    const ends: [EndReason, Time | undefined, LostBy | undefined][] = [
      ['open', undefined, undefined], ['destroy', { sec: 1_795_001_000, nsec: 5 }, undefined], ['lost', undefined, 'timeout'],
      ['lost', { sec: 1_795_000_100, nsec: 999_999_999 }, 'evicted'], ['lost', { sec: 1_795_000_000, nsec: 0 }, 'downtime'],
    ];
    const seen = { v6: 0, nat: 0, icmp: 0, moreStates: 0, big: 0, netns: 0, stamps: 0 };
    for (const [end, at, lostBy] of ends) {
      for (const names of [undefined, K8S_SET]) {
        const fast = slots.map((s) => ({ ...rowOf(t, s, end, at, lostBy), ...names }));
        const ref = slots.map((s) => ({ ...objectRow(t, s, end, at, lostBy), ...names }));
        for (let k = 0; k < fast.length; k++) {
          expect(Object.keys(fast[k]!)).toEqual(Object.keys(ref[k]!));
          expect(fast[k]).toEqual(ref[k]);
          expect(bytesOf([fast[k]!]).equals(bytesOf([ref[k]!]))).toBe(true);
        }
        expect(bytesOf(fast).equals(bytesOf(ref))).toBe(true);
        for (const r of fast) {
          seen.v6 += +(r.family === 'ipv6');
          seen.nat += +(r.nat !== '');
          seen.icmp += +(r.icmp_type !== null);
          seen.moreStates += +(r.tcp_states.length > 4);
          seen.big += +(r.orig_bytes > 2 ** 53);
          seen.netns += +(r.netns !== '');
          seen.stamps += +(r.duration_ms !== null && r.end_reason !== 'open');
        }
      }
    }
    // the flows covered what they were made to
    for (const [what, n] of Object.entries(seen)) expect([what, n > 0]).toEqual([what, true]);
  });

  it('reads a kernel stamp from its decimal text as BigInt division does, and refuses what is not a uint64', () => {
    const t = new FlowTable();
    const s = t.alloc();
    const values: U64[] = ['1795000000123456789', '0000000001000000000', '1000000000', '1795000000000000000', '18446744073709551615'];
    for (const v of values) {
      t.setKernelNs(s, K.Stop, v);
      const n = BigInt(v);
      const want = { sec: Number(n / 1_000_000_000n), nsec: Number(n % 1_000_000_000n) };
      // as a Uint32 column holds it (a second past 2^32 wraps alike either way)
      expect([v, t.kernelTime(s, K.Stop)]).toEqual([v, { sec: want.sec >>> 0, nsec: want.nsec }]);
    }
    for (const v of [1_795_000_000_123, 2 ** 53 - 1, 999_999_999, 0]) {
      t.setKernelNs(s, K.Start, v);
      expect([v, t.kernelTime(s, K.Start)]).toEqual([v, v < 1e9 ? undefined : { sec: Math.floor(v / 1e9), nsec: v % 1e9 }]);
    }
    for (const v of ['17950000001234567x9', '18446744073709551616', '999999999999999999999999', '', -1, 2 ** 53, 1.5]) {
      expect(() => t.setKernelNs(s, K.Start, v)).toThrow(expect.objectContaining({ code: 'RECORD_INVALID' }));
    }
  });
});
