/**
 * Addresses between their text form (records, JSON) and their bytes (protobuf: 4 bytes for IPv4,
 * 16 for IPv6, network order). Text is parsed once per distinct address: hosts see the same
 * addresses over and over, and the cache keeps encoding off the parser.
 */
import { ipv4, ipv6 } from '../collector/netlink/attr.js';
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
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return false;
    out[at + i] = Number(p);
  }
  return true;
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
