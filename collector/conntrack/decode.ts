/**
 * Walks the netlink messages of one datagram and dispatches each to its decoder.
 *
 *   datagram := nlmsg*            (events: exactly one; dumps and NFLOG batches: many, NLM_F_MULTI)
 *   nlmsg    := nlmsghdr{len u32, type u16 = subsys << 8 | msg, flags u16, seq u32, pid u32}
 *               nfgenmsg{family u8, version u8, res_id be16} attributes      (host-order header)
 *
 * NEW and UPDATE share IPCTNL_MSG_CT_NEW and differ only by NLM_F_CREATE|NLM_F_EXCL on NEW
 * (kernel ctnetlink_conntrack_event; ti-mo/conntrack event.go). Dump replies carry NLM_F_MULTI and
 * become `snapshot` records. A malformed message is rejected with a stable code and the walk moves
 * on to the next message when the header's length can be trusted; it never throws to the caller.
 */
import { CtpipeError } from '../../common/errors.js';
import type { CpuStats, CtRecord, ExpRecord, UnknownAttr } from '../../contract/records.js';
import * as N from '../netlink/constants.js';
import { forEachFrame } from '../netlink/frames.js';
import * as C from './constants.js';
import { decodeExpect } from './expect.js';
import { decodeFlow } from './flow.js';
import { decodeCpuStats, decodeExpStats, decodeGlobalStats, type ExpStats, type GlobalStats } from './stats.js';

export interface MessageHandler {
  ct(r: CtRecord, seq: number): void;
  exp(r: ExpRecord, seq: number): void;
  cpuStats(s: CpuStats, seq: number): void;
  globalStats(s: GlobalStats, seq: number): void;
  expStats(s: ExpStats, seq: number): void;
  /** NLMSG_DONE, or NLMSG_ERROR with errno 0 (an ACK). */
  done(seq: number): void;
  /** NLMSG_ERROR with a non-zero errno (positive). */
  kernelError(seq: number, errno: number): void;
  /** Messages of other subsystems (the NFLOG decoder handles its own). */
  other?(buf: Buffer, dv: DataView, off: number, len: number, type: number, flags: number, sec: number, nsec: number): void;
  reject(err: CtpipeError, bytes: Buffer): void;
  unknownAttrs?(attrs: UnknownAttr[]): void;
}

export function decodeDatagram(
  buf: Buffer,
  dv: DataView,
  start: number,
  end: number,
  sec: number,
  nsec: number,
  h: MessageHandler,
): number {
  let o = start;
  let count = 0;
  while (o < end) {
    if (o + N.NLMSG_HDRLEN > end) {
      h.reject(new CtpipeError('NL_TRUNCATED', `netlink header at ${o - start} runs past the datagram`), buf.subarray(o, end));
      return count;
    }
    const len = dv.getUint32(o, true);
    if (len < N.NLMSG_HDRLEN) {
      h.reject(new CtpipeError('NL_BAD_LENGTH', `nlmsg_len ${len} < 16`), buf.subarray(o, end));
      return count;
    }
    if (o + len > end) {
      h.reject(new CtpipeError('NL_TRUNCATED', `nlmsg_len ${len} runs past the datagram`), buf.subarray(o, end));
      return count;
    }
    const type = dv.getUint16(o + 4, true);
    const flags = dv.getUint16(o + 6, true);
    const seq = dv.getUint32(o + 8, true);
    try {
      if (decodeMessage(buf, dv, o, len, type, flags, seq, sec, nsec, h)) count++;
    } catch (e) {
      if (e instanceof CtpipeError) h.reject(e, buf.subarray(o, o + len));
      else h.reject(new CtpipeError('DECODE_INTERNAL', String(e)), buf.subarray(o, o + len));
    }
    o += (len + 3) & ~3;
  }
  return count;
}

/** Decodes every datagram of a chunk from the native reader (netlink/frames.ts). */
export function decodeChunk(chunk: Buffer, h: MessageHandler): void {
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  forEachFrame(chunk, (off, len, sec, nsec) => decodeDatagram(chunk, dv, off, off + len, sec, nsec, h));
}

function decodeMessage(
  buf: Buffer, dv: DataView, o: number, len: number, type: number, flags: number, seq: number,
  sec: number, nsec: number, h: MessageHandler,
): boolean {
  if (type === N.NLMSG_DONE) {
    h.done(seq);
    return false;
  }
  if (type === N.NLMSG_ERROR) {
    if (len < N.NLMSG_HDRLEN + 4) throw new CtpipeError('NL_TRUNCATED', 'NLMSG_ERROR without errno');
    const err = -dv.getInt32(o + N.NLMSG_HDRLEN, true);
    if (err === 0) h.done(seq);
    else h.kernelError(seq, err);
    return false;
  }
  if (type === N.NLMSG_NOOP || type === N.NLMSG_OVERRUN) return false;
  const subsys = type >> 8;
  const msg = type & 0xff;
  if (subsys !== N.NFNL_SUBSYS_CTNETLINK && subsys !== N.NFNL_SUBSYS_CTNETLINK_EXP) {
    if (h.other) h.other(buf, dv, o, len, type, flags, sec, nsec);
    return false;
  }
  if (len < N.NLMSG_HDRLEN + N.NFGENMSG_LEN) throw new CtpipeError('CT_BAD_PAYLOAD', `message of ${len} bytes has no nfgenmsg`);
  const family = dv.getUint8(o + N.NLMSG_HDRLEN);
  const resId = dv.getUint16(o + N.NLMSG_HDRLEN + 2, false);
  const a = o + N.NLMSG_HDRLEN + N.NFGENMSG_LEN;
  const end = o + len;
  const multi = (flags & N.NLM_F_MULTI) !== 0;
  if (subsys === N.NFNL_SUBSYS_CTNETLINK) {
    switch (msg) {
      case C.IPCTNL_MSG_CT_NEW: {
        const t = multi ? 'snapshot' : (flags & (N.NLM_F_CREATE | N.NLM_F_EXCL)) !== 0 ? 'new' : 'update';
        const r = decodeFlow(buf, dv, a, end, family, t, sec, nsec);
        if (r.unknown && h.unknownAttrs) h.unknownAttrs(r.unknown);
        h.ct(r, seq);
        return true;
      }
      case C.IPCTNL_MSG_CT_DELETE: {
        const r = decodeFlow(buf, dv, a, end, family, 'destroy', sec, nsec);
        if (r.unknown && h.unknownAttrs) h.unknownAttrs(r.unknown);
        h.ct(r, seq);
        return true;
      }
      case C.IPCTNL_MSG_CT_GET_STATS_CPU: {
        const unknown: UnknownAttr[] = [];
        h.cpuStats(decodeCpuStats(buf, dv, a, end, resId, unknown), seq);
        if (unknown.length && h.unknownAttrs) h.unknownAttrs(unknown);
        return false;
      }
      case C.IPCTNL_MSG_EXP_GET_STATS_CPU: {
        // The kernel types expectation stats replies with the CTNETLINK subsystem (0x0103).
        const unknown: UnknownAttr[] = [];
        h.expStats(decodeExpStats(buf, dv, a, end, unknown), seq);
        if (unknown.length && h.unknownAttrs) h.unknownAttrs(unknown);
        return false;
      }
      case C.IPCTNL_MSG_CT_GET_STATS: {
        const unknown: UnknownAttr[] = [];
        h.globalStats(decodeGlobalStats(buf, dv, a, end, unknown), seq);
        if (unknown.length && h.unknownAttrs) h.unknownAttrs(unknown);
        return false;
      }
      default:
        h.unknownAttrs?.([{ path: 'message', type, hex: buf.toString('hex', o, o + Math.min(len, 64)) }]);
        return false;
    }
  }
  if (msg === C.IPCTNL_MSG_EXP_NEW || msg === C.IPCTNL_MSG_EXP_DELETE) {
    const r = decodeExpect(buf, dv, a, end, family, msg === C.IPCTNL_MSG_EXP_NEW ? 'exp_new' : 'exp_destroy', sec, nsec);
    if (multi) r.snapshot = true;
    if (r.unknown && h.unknownAttrs) h.unknownAttrs(r.unknown);
    h.exp(r, seq);
    return true;
  }
  h.unknownAttrs?.([{ path: 'message', type, hex: buf.toString('hex', o, o + Math.min(len, 64)) }]);
  return false;
}
