/**
 * Attribute-level primitives shared by the ctnetlink and NFLOG decoders.
 *
 *   struct nlattr { u16 nla_len; u16 nla_type; } payload, padded to 4 bytes (NLA_ALIGNTO)
 *
 * nla_len/nla_type are host order (little-endian on every platform ctpipe supports); netfilter
 * payloads are big-endian (ti-mo/netfilter attribute.go; conntrack-netlink.md §1.6).
 * NLA_F_NESTED / NLA_F_NET_BYTEORDER are masked off the type: ctnetlink sets the first on every
 * nest and never the second.
 */
import { CtpipeError } from '../../common/errors.js';
import { NLA_TYPE_MASK } from './constants.js';
import type { U64 } from '../../contract/records.js';

export function attrLen(dv: DataView, o: number, end: number): number {
  if (o + 4 > end) throw new CtpipeError('NL_TRUNCATED', `attribute header at ${o} runs past ${end}`);
  const len = dv.getUint16(o, true);
  if (len < 4) throw new CtpipeError('NL_BAD_LENGTH', `attribute length ${len} < 4 at ${o}`);
  if (o + len > end) throw new CtpipeError('NL_TRUNCATED', `attribute of length ${len} at ${o} runs past ${end}`);
  return len;
}

export function attrType(dv: DataView, o: number): number {
  return dv.getUint16(o + 2, true) & NLA_TYPE_MASK;
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}

function need(plen: number, n: number, what: string): void {
  if (plen < n) throw new CtpipeError('CT_BAD_ATTRIBUTE', `${what}: ${plen} bytes, need ${n}`);
}

export function u8(dv: DataView, p: number, plen: number, what: string): number {
  need(plen, 1, what);
  return dv.getUint8(p);
}
export function be16(dv: DataView, p: number, plen: number, what: string): number {
  need(plen, 2, what);
  return dv.getUint16(p, false);
}
export function be32(dv: DataView, p: number, plen: number, what: string): number {
  need(plen, 4, what);
  return dv.getUint32(p, false);
}
/** Big-endian u64 as a number below 2^53, else an exact decimal string. */
export function be64(dv: DataView, p: number, plen: number, what: string): U64 {
  need(plen, 8, what);
  const hi = dv.getUint32(p, false);
  const lo = dv.getUint32(p + 4, false);
  if (hi < 0x200000) return hi * 4294967296 + lo;
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}
export function be64n(dv: DataView, p: number, plen: number, what: string): bigint {
  need(plen, 8, what);
  return dv.getBigUint64(p, false);
}

/** NUL-terminated (or length-bounded) ASCII/UTF-8 string. */
export function cstr(buf: Buffer, p: number, plen: number): string {
  let e = p;
  const end = p + plen;
  while (e < end && buf[e] !== 0) e++;
  return buf.toString('utf8', p, e);
}

export function hex(buf: Buffer, p: number, plen: number): string {
  return buf.toString('hex', p, p + plen);
}

const DEC: string[] = Array.from({ length: 256 }, (_, i) => String(i));
let HEX16: string[] | undefined;

// Hosts see the same addresses again and again: reuse their strings (bounded).
const V4 = new Map<number, string>();

export function ipv4(buf: Buffer, p: number): string {
  const key = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
  let s = V4.get(key);
  if (s === undefined) {
    s = DEC[buf[p]!] + '.' + DEC[buf[p + 1]!] + '.' + DEC[buf[p + 2]!] + '.' + DEC[buf[p + 3]!];
    if (V4.size >= 65536) V4.clear();
    V4.set(key, s);
  }
  return s;
}

/** RFC 5952 text form: lower-case hex, longest run (>= 2) of zero groups compressed. */
export function ipv6(dv: DataView, p: number): string {
  // 16-bit groups to hex through a table: formatting dominated decode time before it.
  const hex = (HEX16 ??= Array.from({ length: 65536 }, (_, i) => i.toString(16)));
  // IPv4-mapped addresses take the mixed notation (RFC 5952 section 5): ::ffff:192.0.2.1
  if (dv.getUint32(p, false) === 0 && dv.getUint32(p + 4, false) === 0 && dv.getUint32(p + 8, false) === 0xffff) {
    return '::ffff:' + DEC[dv.getUint8(p + 12)] + '.' + DEC[dv.getUint8(p + 13)] + '.' + DEC[dv.getUint8(p + 14)] + '.' + DEC[dv.getUint8(p + 15)];
  }
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (dv.getUint16(p + i * 2, false) === 0) {
      if (runStart < 0) runStart = i;
      if (i - runStart + 1 > bestLen) {
        bestLen = i - runStart + 1;
        bestStart = runStart;
      }
    } else runStart = -1;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += hex[dv.getUint16(p + i * 2, false)]!;
    if (i < 7) out += ':';
  }
  return out;
}
