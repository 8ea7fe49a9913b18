/**
 * Builds netlink messages: requests the collector sends (dumps, stats, NFLOG config) and, in tests,
 * messages shaped like the kernel's. Same grammar as the decoders: host-order headers, big-endian
 * netfilter payloads, attributes padded to 4.
 */
import { NFGENMSG_LEN, NLA_F_NESTED, NLMSG_HDRLEN } from './constants.js';

export class NlWriter {
  private buf = Buffer.alloc(256);
  private len = 0;
  private readonly nests: number[] = [];

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** nlmsghdr + nfgenmsg; the length is patched by end(). */
  begin(type: number, flags: number, seq: number, family: number, resId = 0, version = 0): this {
    this.ensure(NLMSG_HDRLEN + NFGENMSG_LEN);
    const o = this.len;
    this.buf.writeUInt32LE(0, o);
    this.buf.writeUInt16LE(type, o + 4);
    this.buf.writeUInt16LE(flags, o + 6);
    this.buf.writeUInt32LE(seq, o + 8);
    this.buf.writeUInt32LE(0, o + 12);
    this.buf.writeUInt8(family, o + 16);
    this.buf.writeUInt8(version, o + 17);
    this.buf.writeUInt16BE(resId, o + 18);
    this.nests.push(o);
    this.len += NLMSG_HDRLEN + NFGENMSG_LEN;
    return this;
  }

  /** A bare nlmsghdr with a raw payload (NLMSG_DONE, NLMSG_ERROR in tests). */
  raw(type: number, flags: number, seq: number, payload: Buffer): this {
    this.ensure(NLMSG_HDRLEN + payload.length + 3);
    const o = this.len;
    this.buf.writeUInt32LE(NLMSG_HDRLEN + payload.length, o);
    this.buf.writeUInt16LE(type, o + 4);
    this.buf.writeUInt16LE(flags, o + 6);
    this.buf.writeUInt32LE(seq, o + 8);
    this.buf.writeUInt32LE(0, o + 12);
    payload.copy(this.buf, o + NLMSG_HDRLEN);
    this.len = o + ((NLMSG_HDRLEN + payload.length + 3) & ~3);
    return this;
  }

  end(): this {
    const o = this.nests.pop();
    if (o === undefined) throw new Error('NlWriter.end without begin');
    this.buf.writeUInt32LE(this.len - o, o);
    return this;
  }

  attr(type: number, payload: Buffer): this {
    const total = 4 + payload.length;
    this.ensure(total + 3);
    this.buf.writeUInt16LE(total, this.len);
    this.buf.writeUInt16LE(type, this.len + 2);
    payload.copy(this.buf, this.len + 4);
    this.buf.fill(0, this.len + total, this.len + ((total + 3) & ~3));
    this.len += (total + 3) & ~3;
    return this;
  }

  u8(type: number, v: number): this {
    return this.attr(type, Buffer.from([v & 0xff]));
  }
  be16(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.attr(type, b);
  }
  be32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.attr(type, b);
  }
  be64(type: number, v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return this.attr(type, b);
  }
  str(type: number, s: string): this {
    return this.attr(type, Buffer.concat([Buffer.from(s), Buffer.from([0])]));
  }

  nest(type: number, body: (w: this) => void): this {
    this.ensure(4);
    const o = this.len;
    this.buf.writeUInt16LE(0, o);
    this.buf.writeUInt16LE(type | NLA_F_NESTED, o + 2);
    this.len += 4;
    body(this);
    this.buf.writeUInt16LE(this.len - o, o);
    return this;
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}
