/**
 * IP addresses in their three forms, written once for every layer: text (records, JSON, rows),
 * bytes in network order (netlink attributes, protobuf: 4 bytes for IPv4, 16 for IPv6) and, for
 * IPv4, a 32-bit number (the open-flow table's columns). Text is parsed once per distinct address:
 * hosts see the same addresses over and over, and the caches keep encoding off the parser.
 */
import { CtpipeError } from '../common/errors.js';

const cache = new Map<string, Buffer>();
// A tuple's addresses come back reversed in the reply tuple: two recent entries catch most lookups
// before the map (string identity, as decoded strings come from the decoder's own cache).
let lastA = '';
let lastB = '';
let bytesA: Buffer = Buffer.alloc(0);
let bytesB: Buffer = Buffer.alloc(0);

export function addrToBytes(s: string): Buffer {
  if (s === lastA) return bytesA;
  if (s === lastB) return bytesB;
  let b = cache.get(s);
  if (b === undefined) {
    b = parseAddr(s);
    if (cache.size >= 65536) cache.clear();
    cache.set(s, b);
  }
  lastB = lastA;
  bytesB = bytesA;
  lastA = s;
  bytesA = b;
  return b;
}

export function bytesToAddr(buf: Buffer, off: number, len: number): string {
  if (len === 4) return ipv4(buf, off);
  if (len === 16) return ipv6(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), off);
  throw new CtpipeError('RECORD_DECODE', `an address has 4 or 16 bytes, not ${len}`);
}

function parseV4(s: string, out: Buffer, at: number): boolean {
  const v = ipv4ToU32(s);
  if (v < 0) return false;
  out.writeUInt32BE(v, at);
  return true;
}

// A tuple's two addresses come back in turn (a record's, then its row's four columns: orig and
// reply, each the other's mirror): the last two answers are kept, so most lookups compare a string
// (the same object, mostly) instead of parsing it. u32ToIpv4 puts its answers here too: a row's
// text comes from the open-flow table's numbers, and the RowBinary writer and k8s names asking
// for them back get the numbers without a parse.
let memoS1 = '';
let memoS2 = '';
let memoV1 = -1;
let memoV2 = -1;

/** Dotted-quad text as a 32-bit number, or -1 if it is not one. */
export function ipv4ToU32(s: string): number {
  if (s === memoS1) return memoV1;
  if (s === memoS2) return memoV2;
  const v = parseIpv4(s);
  remember(s, v);
  return v;
}

function remember(s: string, v: number): void {
  memoS2 = memoS1;
  memoV2 = memoV1;
  memoS1 = s;
  memoV1 = v;
}

function parseIpv4(s: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? v * 256 + part : -1;
}

/**
 * A 32-bit number as dotted-quad text, through the decoder's cache: the open-flow table keeps IPv4
 * addresses as numbers, and a row's text is then the very string the decoder made for the record
 * (no new string per row, and its hash already computed for the detectors' maps).
 */
export function u32ToIpv4(v: number): string {
  const key = v >>> 0;
  const s = ipv4Text(key);
  if (s !== memoS1 && s !== memoS2) remember(s, key);
  return s;
}

export function parseAddr(s: string): Buffer {
  const v4 = Buffer.alloc(4);
  if (parseV4(s, v4, 0)) return v4;
  let text = s;
  // A trailing dotted quad (::ffff:192.0.2.1) stands for the last two groups.
  const mixed = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (mixed) {
    if (!parseV4(mixed[2]!, v4, 0)) throw bad(s);
    text = `${mixed[1]}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) throw bad(s);
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  if (halves.length === 1 ? head.length !== 8 : head.length + rest.length > 7) throw bad(s);
  const groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad(s);
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return out;
}

function bad(s: string): CtpipeError {
  return new CtpipeError('RECORD_DECODE', `not an IP address: "${s}"`);
}

const DEC: string[] = Array.from({ length: 256 }, (_, i) => String(i));
let HEX16: string[] | undefined;

// Hosts see the same addresses again and again: their strings are reused through direct-mapped
// caches (a multiply and a compare; a Map lookup cost more than building the string).
const V4_SLOTS = 8192;
const v4Keys = new Uint32Array(V4_SLOTS);
const v4Vals: (string | undefined)[] = new Array<string | undefined>(V4_SLOTS).fill(undefined);

export function ipv4(buf: Buffer, p: number): string {
  return ipv4Text(ipv4At(buf, p));
}

/** The IPv4 address at p (4 bytes, network order) as a 32-bit number. */
export function ipv4At(buf: Buffer, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/**
 * A 32-bit number (ipv4At's) as text through the same cache as ipv4(): decoders that keep the
 * number too. Unlike u32ToIpv4 it leaves ipv4ToU32's memo alone (the decoders' tuples carry their
 * numbers, and a record's addresses would push a row's out).
 */
export function ipv4Text(key: number): string {
  const slot = Math.imul(key, 0x9e3779b1) >>> 19;
  const hit = v4Vals[slot];
  if (hit !== undefined && v4Keys[slot] === key) return hit;
  const s = DEC[key >>> 24] + '.' + DEC[(key >>> 16) & 255] + '.' + DEC[(key >>> 8) & 255] + '.' + DEC[key & 255];
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
