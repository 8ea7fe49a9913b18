/**
 * An expectation message body (subsystem CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW / _DELETE):
 *
 *   exp := MASTER{tuple} TUPLE{tuple} MASK{tuple: address and port fields hold mask values}
 *          TIMEOUT be32 ID be32 [HELP_NAME str] [ZONE be16] FLAGS be32 [CLASS be32]
 *          [NAT{DIR be32, TUPLE{tuple}}] [FN str]
 *
 * The kernel sends expectation NEW (group 4) and DESTROY (group 6) only; group 5 (EXP_UPDATE) is
 * never used (kernel ctnetlink_expect_event). Events carry no zone; dumps may.
 */
import type { ExpRecord, UnknownAttr } from '../../contract/records.js';
import { be16, be32, cstr, forEachAttr, hex } from '../netlink/attr.js';
import { NFPROTO_IPV6 } from '../netlink/constants.js';
import * as C from './constants.js';

const scratch: UnknownAttr[] = [];
import { decodeTuple } from './tuple.js';

export function decodeExpect(
  buf: Buffer,
  dv: DataView,
  start: number,
  end: number,
  family: number,
  type: ExpRecord['type'],
  sec: number,
  nsec: number,
): ExpRecord {
  // Unknown attributes are rare: collect them in a reused scratch list, copy only when present.
  const unknown = scratch;
  if (unknown.length) unknown.length = 0;
  const r: ExpRecord = {
    type, host: '', run: '', seq: 0, sec, nsec, family: family === NFPROTO_IPV6 ? 'ipv6' : 'ipv4',
  };
  forEachAttr(dv, start, end, (at, p, plen) => {
    switch (at) {
      case C.CTA_EXPECT_MASTER: r.master = decodeTuple(buf, dv, p, p + plen, 'exp_master', unknown); break;
      case C.CTA_EXPECT_TUPLE: r.expected = decodeTuple(buf, dv, p, p + plen, 'exp_tuple', unknown); break;
      case C.CTA_EXPECT_MASK: r.mask = decodeTuple(buf, dv, p, p + plen, 'exp_mask', unknown); break;
      case C.CTA_EXPECT_TIMEOUT: r.timeout = be32(dv, p, plen, 'CTA_EXPECT_TIMEOUT'); break;
      case C.CTA_EXPECT_ID: r.id = be32(dv, p, plen, 'CTA_EXPECT_ID'); break;
      case C.CTA_EXPECT_HELP_NAME: r.helper = cstr(buf, p, plen); break;
      case C.CTA_EXPECT_ZONE: r.zone = be16(dv, p, plen, 'CTA_EXPECT_ZONE'); break;
      case C.CTA_EXPECT_FLAGS: r.flags = be32(dv, p, plen, 'CTA_EXPECT_FLAGS'); break;
      case C.CTA_EXPECT_CLASS: r.class = be32(dv, p, plen, 'CTA_EXPECT_CLASS'); break;
      case C.CTA_EXPECT_FN: r.fn = cstr(buf, p, plen); break;
      case C.CTA_EXPECT_NAT: decodeNat(buf, dv, p, p + plen, r, unknown); break;
      default: unknown.push({ path: 'exp', type: at, hex: hex(buf, p, plen) });
    }
  });
  if (unknown.length > 0) r.unknown = unknown.slice();
  return r;
}

function decodeNat(buf: Buffer, dv: DataView, start: number, end: number, r: ExpRecord, unknown: UnknownAttr[]): void {
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_EXPECT_NAT_DIR) r.nat_dir = be32(dv, p, plen, 'CTA_EXPECT_NAT_DIR');
    else if (at === C.CTA_EXPECT_NAT_TUPLE) r.nat = decodeTuple(buf, dv, p, p + plen, 'exp_nat', unknown);
    else unknown.push({ path: 'exp.nat', type: at, hex: hex(buf, p, plen) });
  });
}
