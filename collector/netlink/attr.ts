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
 * are padding and are skipped. The hot decoders (flow, tuple, TCP) keep their loops inline; this
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
  const hi = dv.getUint32(p, false);
  const lo = dv.getUint32(p + 4, false);
  if (hi < 0x200000) return hi * 4294967296 + lo;
  divmod1e9(hi, lo);
  return String(QUOT) + String(REM).padStart(9, '0');
}

let QUOT = 0;
let REM = 0;

/**
 * (hi * 2^32 + lo) / 10^9, exactly, without BigInt (which dominated decoding kernel timestamps):
 * one floating division gives the quotient within one, then the remainder is computed exactly in
 * pieces that stay below 2^53, and the quotient corrected. Results in QUOT and REM.
 */
function divmod1e9(hi: number, lo: number): void {
  let q = Math.floor((hi * 4294967296 + lo) / 1e9);
  const qh = Math.floor(q / 65536);
  const ql = q - qh * 65536;
  let r = (hi * 65536 - qh * 1e9) * 65536 + lo - ql * 1e9;
  while (r < 0) {
    q--;
    r += 1e9;
  }
  while (r >= 1e9) {
    q++;
    r -= 1e9;
  }
  QUOT = q;
  REM = r;
}

/** Big-endian u64 nanoseconds since the epoch: returns the seconds; the rest is in `nsecOf()`. */
export function be64sec(dv: DataView, p: number, plen: number, what: string): number {
  need(plen, 8, what);
  divmod1e9(dv.getUint32(p, false), dv.getUint32(p + 4, false));
  return QUOT;
}

/** The nanoseconds left over by the last be64sec(). */
export function nsecOf(): number {
  return REM;
}

/** Big-endian u64 nanoseconds since the epoch as [seconds, nanoseconds]. */
export function be64time(dv: DataView, p: number, plen: number, what: string): [number, number] {
  return [be64sec(dv, p, plen, what), REM];
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

const DEC: string[] = Array.from({ length: 256 }, (_, i) => String(i));
let HEX16: string[] | undefined;

// Hosts see the same addresses again and again: their strings are reused through direct-mapped
// caches (a multiply and a compare; a Map lookup cost more than building the string).
const V4_SLOTS = 8192;
const v4Keys = new Uint32Array(V4_SLOTS);
const v4Vals: (string | undefined)[] = new Array<string | undefined>(V4_SLOTS).fill(undefined);

export function ipv4(buf: Buffer, p: number): string {
  const key = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
  const slot = Math.imul(key, 0x9e3779b1) >>> 19;
  const hit = v4Vals[slot];
  if (hit !== undefined && v4Keys[slot] === key) return hit;
  const s = DEC[buf[p]!] + '.' + DEC[buf[p + 1]!] + '.' + DEC[buf[p + 2]!] + '.' + DEC[buf[p + 3]!];
  v4Keys[slot] = key;
  v4Vals[slot] = s;
  return s;
}

const V6_SLOTS = 4096;
const v6Keys = new Uint32Array(V6_SLOTS * 4);
const v6Vals: (string | undefined)[] = new Array<string | undefined>(V6_SLOTS).fill(undefined);

/** RFC 5952 text form: lower-case hex, longest run (>= 2) of zero groups compressed. */
export function ipv6(dv: DataView, p: number): string {
  const a = dv.getUint32(p, false);
  const b = dv.getUint32(p + 4, false);
  const c = dv.getUint32(p + 8, false);
  const d = dv.getUint32(p + 12, false);
  const slot = Math.imul(a ^ Math.imul(b, 31) ^ Math.imul(c, 961) ^ Math.imul(d, 29791), 0x9e3779b1) >>> 20;
  const k = slot * 4;
  const hit = v6Vals[slot];
  if (hit !== undefined && v6Keys[k] === a && v6Keys[k + 1] === b && v6Keys[k + 2] === c && v6Keys[k + 3] === d) return hit;
  const s = formatIpv6(dv, p);
  v6Keys[k] = a;
  v6Keys[k + 1] = b;
  v6Keys[k + 2] = c;
  v6Keys[k + 3] = d;
  v6Vals[slot] = s;
  return s;
}

function formatIpv6(dv: DataView, p: number): string {
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
