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
import { split, splitNs, u64Of } from '../../contract/u64.js';

/**
 * An attribute header, validated: length in the low 16 bits, type (flags masked off) in the high
 * bits. Two 16-bit reads keep everything in small integers (one 32-bit read was 6x slower: values
 * above 2^31 leave V8's fast integer path). The caller guarantees o + 4 <= end.
 */
export function attrHeader(dv: DataView, o: number, end: number): number {
  const len = dv.getUint16(o, true);
  if (len < 4 || o + len > end) badAttribute(len, o, end);
  return len | ((dv.getUint16(o + 2, true) & NLA_TYPE_MASK) << 16);
}

function badAttribute(len: number, o: number, end: number): never {
  if (len < 4) throw new CtpipeError('NL_BAD_LENGTH', `attribute length ${len} < 4 at ${o}`);
  throw new CtpipeError('NL_TRUNCATED', `attribute of length ${len} at ${o} runs past ${end}`);
}

/**
 * Visits the attributes of a nest: (type, payload offset, payload length). Zero-length attributes
 * are padding and are skipped. The hot decoders (flow, tuple, protoinfo, TCP, counters, timestamps)
 * keep their loops inline (a closure per nest was measurable per event, issue 19); this
 * serves the rest.
 */
export function forEachAttr(dv: DataView, start: number, end: number, visit: (type: number, p: number, plen: number) => void): void {
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    if (len > 4) visit(h >>> 16, o + 4, len - 4);
    o += (len + 3) & ~3;
  }
}

/**
 * A nest whose attributes 1..n are be32 values named by `names` (seqadj, synproxy, expectation
 * statistics): absent ones read 0, unknown ones are kept.
 */
export function be32Nest<K extends string>(
  buf: Buffer, dv: DataView, start: number, end: number, names: readonly K[], path: string, unknown: { path: string; type: number; hex: string }[],
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const n of names) out[n] = 0;
  forEachAttr(dv, start, end, (type, p, plen) => {
    const name = names[type - 1];
    if (name !== undefined) out[name] = be32(dv, p, plen, `${path}.${name}`);
    else unknown.push({ path, type, hex: hex(buf, p, plen) });
  });
  return out;
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
  return u64Of(dv.getUint32(p, false), dv.getUint32(p + 4, false));
}

/** Big-endian u64 nanoseconds since the epoch: returns the seconds; the rest is in `nsecOf()`. */
export function be64sec(dv: DataView, p: number, plen: number, what: string): number {
  need(plen, 8, what);
  splitNs(dv.getUint32(p, false), dv.getUint32(p + 4, false));
  return split.sec;
}

/** The nanoseconds left over by the last be64sec() (contract/u64.ts `split`: read it before any other division). */
export function nsecOf(): number {
  return split.nsec;
}

/** Big-endian u64 nanoseconds since the epoch as [seconds, nanoseconds]. */
export function be64time(dv: DataView, p: number, plen: number, what: string): [number, number] {
  return [be64sec(dv, p, plen, what), split.nsec];
}

const STR_SLOTS = 64;
const strVals: (string | undefined)[] = new Array<string | undefined>(STR_SLOTS).fill(undefined);

/**
 * NUL-terminated (or length-bounded) string. Short ASCII names (helpers, prefixes) repeat: they
 * come from a small cache checked byte by byte, sparing a native toString per event.
 */
export function cstr(buf: Buffer, p: number, plen: number): string {
  let e = p;
  const end = p + plen;
  let h = 0;
  while (e < end && buf[e] !== 0) h = Math.imul(h ^ buf[e++]!, 0x01000193);
  const n = e - p;
  if (n > 32) return buf.toString('utf8', p, e);
  const slot = (h >>> 0) % STR_SLOTS;
  const hit = strVals[slot];
  if (hit !== undefined && hit.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) if (hit.charCodeAt(i) !== buf[p + i]) { same = false; break; }
    if (same) return hit;
  }
  const s = buf.toString('utf8', p, e);
  if (s.length === n) strVals[slot] = s; // ASCII only: char codes equal bytes
  return s;
}

export function hex(buf: Buffer, p: number, plen: number): string {
  return buf.toString('hex', p, p + plen);
}
