/**
 * CTA_TUPLE_* nests (nfnetlink_conntrack.h enum ctattr_tuple):
 *
 *   tuple  := TUPLE_IP{ IP_V4_SRC u32 | IP_V4_DST u32 | IP_V6_SRC [16] | IP_V6_DST [16] }
 *             TUPLE_PROTO{ PROTO_NUM u8, SRC_PORT be16, DST_PORT be16,
 *                          ICMP_ID be16, ICMP_TYPE u8, ICMP_CODE u8, ICMPV6_{ID,TYPE,CODE} }
 *             [TUPLE_ZONE be16]
 *
 * GRE keys travel in the port slots. Children may come in any order; unknown ones are kept.
 * IPv4 addresses are kept as numbers beside their text (Tuple.src4/dst4; -1 for IPv6): the
 * open-flow table stores the numbers and no longer parses the text back.
 */
import { blankTuple, type DecodedTuple, type Tuple, type UnknownAttr } from '../../contract/records.js';
import { align4, attrHeader, be16, hex, u8 } from '../netlink/attr.js';
import { ipv4At, ipv4Text, ipv6 } from '../../contract/addr.js';
import * as C from './constants.js';
import { CtpipeError } from '../../common/errors.js';

export function decodeTuple(
  buf: Buffer,
  dv: DataView,
  start: number,
  end: number,
  path: string,
  unknown: UnknownAttr[],
): Tuple {
  const t = blankTuple();
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const type = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      if (type === C.CTA_TUPLE_IP) decodeIp(buf, dv, p, p + plen, t, path, unknown);
      else if (type === C.CTA_TUPLE_PROTO) decodeProto(buf, dv, p, p + plen, t, path, unknown);
      else if (type === C.CTA_TUPLE_ZONE) t.zone = be16(dv, p, plen, 'CTA_TUPLE_ZONE');
      else unknown.push({ path, type, hex: hex(buf, p, plen) });
    }
    o += align4(len);
  }
  if (t.src === '' || t.dst === '') throw new CtpipeError('CT_BAD_ATTRIBUTE', `${path}: tuple without addresses`);
  return t;
}

function decodeIp(
  buf: Buffer, dv: DataView, start: number, end: number, t: DecodedTuple, path: string, unknown: UnknownAttr[],
): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const type = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      switch (type) {
        case C.CTA_IP_V4_SRC:
          if (plen < 4) throw new CtpipeError('CT_BAD_ATTRIBUTE', 'CTA_IP_V4_SRC: short');
          t.src = ipv4Text((t.src4 = ipv4At(buf, p)));
          break;
        case C.CTA_IP_V4_DST:
          if (plen < 4) throw new CtpipeError('CT_BAD_ATTRIBUTE', 'CTA_IP_V4_DST: short');
          t.dst = ipv4Text((t.dst4 = ipv4At(buf, p)));
          break;
        case C.CTA_IP_V6_SRC:
          if (plen < 16) throw new CtpipeError('CT_BAD_ATTRIBUTE', 'CTA_IP_V6_SRC: short');
          t.src = ipv6(dv, p);
          t.src4 = -1;
          break;
        case C.CTA_IP_V6_DST:
          if (plen < 16) throw new CtpipeError('CT_BAD_ATTRIBUTE', 'CTA_IP_V6_DST: short');
          t.dst = ipv6(dv, p);
          t.dst4 = -1;
          break;
        default:
          unknown.push({ path: `${path}.ip`, type, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
}

function decodeProto(
  buf: Buffer, dv: DataView, start: number, end: number, t: Tuple, path: string, unknown: UnknownAttr[],
): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const type = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      switch (type) {
        case C.CTA_PROTO_NUM: t.proto = u8(dv, p, plen, 'CTA_PROTO_NUM'); break;
        case C.CTA_PROTO_SRC_PORT: t.sport = be16(dv, p, plen, 'CTA_PROTO_SRC_PORT'); break;
        case C.CTA_PROTO_DST_PORT: t.dport = be16(dv, p, plen, 'CTA_PROTO_DST_PORT'); break;
        case C.CTA_PROTO_ICMP_ID:
        case C.CTA_PROTO_ICMPV6_ID: t.icmp_id = be16(dv, p, plen, 'CTA_PROTO_ICMP_ID'); break;
        case C.CTA_PROTO_ICMP_TYPE:
        case C.CTA_PROTO_ICMPV6_TYPE: t.icmp_type = u8(dv, p, plen, 'CTA_PROTO_ICMP_TYPE'); break;
        case C.CTA_PROTO_ICMP_CODE:
        case C.CTA_PROTO_ICMPV6_CODE: t.icmp_code = u8(dv, p, plen, 'CTA_PROTO_ICMP_CODE'); break;
        default:
          unknown.push({ path: `${path}.proto`, type, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
}
