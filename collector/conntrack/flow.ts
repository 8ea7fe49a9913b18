/**
 * A conntrack message body (after nlmsghdr + nfgenmsg), IPCTNL_MSG_CT_NEW / _DELETE:
 *
 *   ct := TUPLE_ORIG{tuple} TUPLE_REPLY{tuple} [ZONE be16] ID be32 STATUS be32 [TIMEOUT be32]
 *         [PROTOINFO{TCP{STATE u8, WSCALE_* u8, FLAGS_* {u8 flags, u8 mask}} | SCTP{..} | DCCP{..}}]
 *         [HELP{NAME str, INFO bin}] [SECCTX{NAME str}] [LABELS bin] [TUPLE_MASTER{tuple}]
 *         [SEQ_ADJ_ORIG|REPLY{CORRECTION_POS, OFFSET_BEFORE, OFFSET_AFTER be32}]
 *         [SYNPROXY{ISN, ITS, TSOFF be32}] [COUNTERS_ORIG|REPLY{PACKETS be64, BYTES be64}]
 *         [TIMESTAMP{START be64, STOP be64}] [MARK be32] [USE be32] [SECMARK be32]
 *         [TIMESTAMP_EVENT be64]
 *
 * Which attributes each event carries: conntrack-netlink.md §1.3 (kernel ctnetlink_conntrack_event
 * and ctnetlink_fill_info). Order differs between kernels, so nothing here depends on it; a repeated
 * attribute keeps its last value; zero-length attributes are padding and never overwrite a value.
 */
import { blankCounters, blankCtRecord, dirCounters, type CtRecord, type CtType, type DirCounters, type UnknownAttr } from '../../contract/records.js';
import { CtpipeError } from '../../common/errors.js';
import { align4, attrHeader, be16, be32, be32Nest, be64, be64sec, cstr, forEachAttr, hex, nsecOf, u8 } from '../netlink/attr.js';
import { NFPROTO_IPV6 } from '../netlink/constants.js';
import * as C from './constants.js';

import { decodeTuple } from './tuple.js';

const scratch: UnknownAttr[] = [];
// ctattr_seqadj and ctattr_synproxy: attributes 1..3, all be32
const SEQADJ = ['correction_pos', 'offset_before', 'offset_after'] as const;
const SYNPROXY = ['isn', 'its', 'tsoff'] as const;

export function decodeFlow(
  buf: Buffer,
  dv: DataView,
  start: number,
  end: number,
  family: number,
  type: CtType,
  sec: number,
  nsec: number,
): CtRecord {
  // Unknown attributes are rare: collect them in a reused scratch list, copy only when present.
  const unknown = scratch;
  if (unknown.length) unknown.length = 0;
  const r = blankCtRecord(type, '', '', 0, sec, nsec, family === NFPROTO_IPV6 ? 'ipv6' : 'ipv4');
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      switch (at) {
        case C.CTA_TUPLE_ORIG: r.orig = decodeTuple(buf, dv, p, p + plen, 'tuple_orig', unknown); break;
        case C.CTA_TUPLE_REPLY: r.reply = decodeTuple(buf, dv, p, p + plen, 'tuple_reply', unknown); break;
        case C.CTA_TUPLE_MASTER: r.master = decodeTuple(buf, dv, p, p + plen, 'tuple_master', unknown); break;
        case C.CTA_STATUS: r.status = be32(dv, p, plen, 'CTA_STATUS'); break;
        case C.CTA_ID: r.id = be32(dv, p, plen, 'CTA_ID'); break;
        case C.CTA_TIMEOUT: r.timeout = be32(dv, p, plen, 'CTA_TIMEOUT'); break;
        case C.CTA_MARK: r.mark = be32(dv, p, plen, 'CTA_MARK'); break;
        case C.CTA_USE: r.use = be32(dv, p, plen, 'CTA_USE'); break;
        case C.CTA_ZONE: r.zone = be16(dv, p, plen, 'CTA_ZONE'); break;
        case C.CTA_SECMARK: r.secmark = be32(dv, p, plen, 'CTA_SECMARK'); break;
        case C.CTA_PROTOINFO: decodeProtoinfo(buf, dv, p, p + plen, r, unknown); break;
        case C.CTA_HELP: decodeHelp(buf, dv, p, p + plen, r, unknown); break;
        case C.CTA_SECCTX: decodeSecctx(buf, dv, p, p + plen, r, unknown); break;
        case C.CTA_LABELS: r.labels = hex(buf, p, plen); break;
        case C.CTA_COUNTERS_ORIG:
          (r.counters ??= blankCounters()).orig = decodeCounters(buf, dv, p, p + plen, 'counters_orig', unknown);
          break;
        case C.CTA_COUNTERS_REPLY:
          (r.counters ??= blankCounters()).reply = decodeCounters(buf, dv, p, p + plen, 'counters_reply', unknown);
          break;
        case C.CTA_TIMESTAMP: decodeTimestamp(buf, dv, p, p + plen, r, unknown); break;
        case C.CTA_TIMESTAMP_EVENT: {
          r.sec = be64sec(dv, p, plen, 'CTA_TIMESTAMP_EVENT');
          r.nsec = nsecOf();
          r.kernel_time = true;
          break;
        }
        case C.CTA_SEQ_ADJ_ORIG: r.seqadj_orig = be32Nest(buf, dv, p, p + plen, SEQADJ, 'seqadj', unknown); break;
        case C.CTA_SEQ_ADJ_REPLY: r.seqadj_reply = be32Nest(buf, dv, p, p + plen, SEQADJ, 'seqadj', unknown); break;
        case C.CTA_SYNPROXY: r.synproxy = be32Nest(buf, dv, p, p + plen, SYNPROXY, 'synproxy', unknown); break;
        default:
          unknown.push({ path: 'ct', type: at, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
  if (r.orig === undefined) throw new CtpipeError('CT_MISSING_TUPLE', 'conntrack message without CTA_TUPLE_ORIG');
  if (r.reply === undefined) throw new CtpipeError('CT_MISSING_TUPLE', 'conntrack message without CTA_TUPLE_REPLY');
  r.proto = r.orig.proto;
  if (unknown.length > 0) r.unknown = unknown.slice();
  return r;
}

// The nests every event carries (protoinfo; counters and timestamps on DESTROY) walk their
// attributes inline: forEachAttr's visitor closure was an allocation per nest, 120 bytes an event.
function decodeProtoinfo(
  buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[],
): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      if (at === C.CTA_PROTOINFO_TCP) decodeTcp(buf, dv, p, p + plen, r, unknown);
      else if (at === C.CTA_PROTOINFO_SCTP) decodeSctp(buf, dv, p, p + plen, r, unknown);
      else if (at === C.CTA_PROTOINFO_DCCP) decodeDccp(buf, dv, p, p + plen, r, unknown);
      else unknown.push({ path: 'protoinfo', type: at, hex: hex(buf, p, plen) });
    }
    o += align4(len);
  }
}

function decodeTcp(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      switch (at) {
        case C.CTA_PROTOINFO_TCP_STATE: r.tcp_state = u8(dv, p, plen, 'TCP_STATE'); break;
        case C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: r.tcp_wscale_orig = u8(dv, p, plen, 'TCP_WSCALE_ORIGINAL'); break;
        case C.CTA_PROTOINFO_TCP_WSCALE_REPLY: r.tcp_wscale_reply = u8(dv, p, plen, 'TCP_WSCALE_REPLY'); break;
        // struct nf_ct_tcp_flags { u8 flags; u8 mask; }: the kernel sends mask 0, flags first.
        case C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: r.tcp_flags_orig = u8(dv, p, plen, 'TCP_FLAGS_ORIGINAL'); break;
        case C.CTA_PROTOINFO_TCP_FLAGS_REPLY: r.tcp_flags_reply = u8(dv, p, plen, 'TCP_FLAGS_REPLY'); break;
        default: unknown.push({ path: 'protoinfo.tcp', type: at, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
}

function decodeSctp(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_PROTOINFO_SCTP_STATE) r.sctp_state = u8(dv, p, plen, 'SCTP_STATE');
    else if (at === C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL) r.sctp_vtag_orig = be32(dv, p, plen, 'SCTP_VTAG_ORIGINAL');
    else if (at === C.CTA_PROTOINFO_SCTP_VTAG_REPLY) r.sctp_vtag_reply = be32(dv, p, plen, 'SCTP_VTAG_REPLY');
    else unknown.push({ path: 'protoinfo.sctp', type: at, hex: hex(buf, p, plen) });
  });
}

function decodeDccp(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_PROTOINFO_DCCP_STATE) r.dccp_state = u8(dv, p, plen, 'DCCP_STATE');
    else if (at === C.CTA_PROTOINFO_DCCP_ROLE) r.dccp_role = u8(dv, p, plen, 'DCCP_ROLE');
    else if (at === C.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ) r.dccp_handshake_seq = be64(dv, p, plen, 'DCCP_HANDSHAKE_SEQ');
    else unknown.push({ path: 'protoinfo.dccp', type: at, hex: hex(buf, p, plen) });
  });
}

function decodeHelp(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_HELP_NAME) r.helper = cstr(buf, p, plen);
    else if (at === C.CTA_HELP_INFO) r.helper_info = hex(buf, p, plen);
    else unknown.push({ path: 'help', type: at, hex: hex(buf, p, plen) });
  });
}

function decodeSecctx(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_SECCTX_NAME) r.secctx = cstr(buf, p, plen);
    else unknown.push({ path: 'secctx', type: at, hex: hex(buf, p, plen) });
  });
}

function decodeCounters(
  buf: Buffer, dv: DataView, start: number, end: number, path: string, unknown: UnknownAttr[],
): DirCounters {
  const c = dirCounters(0, 0);
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      switch (at) {
        case C.CTA_COUNTERS_PACKETS: c.packets = be64(dv, p, plen, 'COUNTERS_PACKETS'); break;
        case C.CTA_COUNTERS_BYTES: c.bytes = be64(dv, p, plen, 'COUNTERS_BYTES'); break;
        case C.CTA_COUNTERS32_PACKETS: c.packets = be32(dv, p, plen, 'COUNTERS32_PACKETS'); break;
        case C.CTA_COUNTERS32_BYTES: c.bytes = be32(dv, p, plen, 'COUNTERS32_BYTES'); break;
        default: unknown.push({ path, type: at, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
  return c;
}

function decodeTimestamp(buf: Buffer, dv: DataView, start: number, end: number, r: CtRecord, unknown: UnknownAttr[]): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      if (at === C.CTA_TIMESTAMP_START) r.start = be64(dv, p, plen, 'TIMESTAMP_START');
      else if (at === C.CTA_TIMESTAMP_STOP) r.stop = be64(dv, p, plen, 'TIMESTAMP_STOP');
      else unknown.push({ path: 'timestamp', type: at, hex: hex(buf, p, plen) });
    }
    o += align4(len);
  }
}
