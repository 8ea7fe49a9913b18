/**
 * The shape of flow records as the decoders make them (contract/records.ts blankCtRecord and
 * blankTuple): every field of the contract declared, in one order, whichever attributes a message
 * carried and whichever decoder made it (netlink, protobuf), so they share one hidden class; and
 * they serialize exactly as the same fields in a plain object do.
 */
import { describe, expect, it } from 'vitest';
import { toJsonLine } from '../../contract/json.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import { blankCtRecord, blankTuple, type CtRecord, type Tuple } from '../../contract/records.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';

const FLOW_FIELDS = [
  'type', 'host', 'run', 'seq', 'sec', 'nsec', 'netns', 'id', 'family', 'proto', 'orig', 'reply', 'status',
  'tcp_state', 'tcp_wscale_orig', 'tcp_wscale_reply', 'tcp_flags_orig', 'tcp_flags_reply', 'sctp_state', 'sctp_vtag_orig',
  'sctp_vtag_reply', 'dccp_state', 'dccp_role', 'dccp_handshake_seq', 'timeout', 'mark', 'zone', 'use', 'helper',
  'helper_info', 'master', 'counters', 'start', 'stop', 'kernel_time', 'labels', 'secctx', 'secmark', 'seqadj_orig',
  'seqadj_reply', 'synproxy', 'unknown',
];
const TUPLE_FIELDS = ['src', 'dst', 'proto', 'sport', 'dport', 'icmp_type', 'icmp_code', 'icmp_id', 'zone'];

/** The same fields in plain objects, as a literal would hold them. */
function plainTuple(t: Tuple): Tuple {
  return { ...t };
}
function plain(r: CtRecord): CtRecord {
  const counters = r.counters && {
    ...(r.counters.orig ? { orig: { ...r.counters.orig } } : {}), ...(r.counters.reply ? { reply: { ...r.counters.reply } } : {}),
  };
  return { ...r, orig: plainTuple(r.orig), reply: plainTuple(r.reply), ...(r.master ? { master: plainTuple(r.master) } : {}), ...(counters ? { counters } : {}) };
}

describe('flow records', () => {
  const netlink = decodeBuffers(fixtureBuffers()).ct;
  netlink.forEach((r, i) => Object.assign(r, { host: 'fw-1', run: 'run-x', seq: i + 1 }));
  const proto = decodeBatch(encodeBatch(netlink)).records as CtRecord[];

  it('declare every field of the contract in one order, from either decoder, whatever the message carried', () => {
    expect(Object.keys(blankCtRecord('new', 'h', 'r', 1, 2, 3, 'ipv4'))).toEqual(FLOW_FIELDS);
    expect(Object.keys(blankTuple())).toEqual(TUPLE_FIELDS);
    // the fixtures hold TCP, UDP, ICMP, IPv6, RELATED flows with a master, DESTROYs with counters
    expect(new Set(netlink.map((r) => r.proto)).size).toBeGreaterThan(2);
    expect(netlink.some((r) => r.master) && netlink.some((r) => r.counters)).toBe(true);
    for (const r of [...netlink, ...proto]) {
      expect(Object.keys(r)).toEqual(FLOW_FIELDS);
      for (const t of [r.orig, r.reply, ...(r.master ? [r.master] : [])]) expect(Object.keys(t)).toEqual(TUPLE_FIELDS);
    }
    for (const r of netlink) {
      if (r.counters) expect(Object.keys(r.counters)).toEqual(['orig', 'reply']);
      if (r.counters?.orig) expect(Object.keys(r.counters.orig)).toEqual(['packets', 'bytes']);
    }
  });

  it('serialize in the JSON lines form and in protobuf exactly as plain objects with the same fields', () => {
    for (const r of netlink) {
      const p = plain(r);
      expect(JSON.stringify(r)).toBe(JSON.stringify(p));
      expect(toJsonLine(r)).toBe(toJsonLine(p));
      expect(encodeBatch([r]).equals(encodeBatch([p]))).toBe(true);
    }
  });
});
