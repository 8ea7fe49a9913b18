/**
 * Protobuf wire writer (https://protobuf.dev/programming-guides/encoding/), hand-written because
 * encoding is the publish path's hot spot (a general library spends most of its time on reflection
 * and per-field allocation; see docs/PERFORMANCE.md). Only what ctpipe.v1.proto needs.
 *
 *   field := tag varint (number << 3 | wire type) value
 *   wire types: 0 varint, 2 length-delimited, 5 fixed32
 *
 * Nested messages reserve one byte for their length and move the body when it needs more.
 */
import { CtpipeError } from '../../common/errors.js';
import type { U64 } from '../records.js';
import { halves, halvesOf } from '../u64.js';

const TWO32 = 4294967296;

export class ProtoWriter {
  buf: Buffer;
  pos = 0;
  private readonly stack: number[] = [];

  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.pos = 0;
    this.stack.length = 0;
  }

  /** Makes room for n more bytes; the raw writers below rely on it. */
  ensure(n: number): void {
    this.grow(n);
  }

  private grow(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(v: number): void {
    this.grow(10);
    const b = this.buf;
    let p = this.pos;
    if (v < 0x80 && v >= 0) {
      b[p++] = v;
    } else if (v >= 0 && v < TWO32) {
      v >>>= 0;
      while (v > 0x7f) {
        b[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      b[p++] = v;
    } else {
      p = this.varint64At(p, v < 0 ? -1 : Math.floor(v / TWO32), v < 0 ? v >>> 0 : v >>> 0, v < 0);
    }
    this.pos = p;
  }

  private varint64At(p: number, hi: number, lo: number, negative: boolean): number {
    const b = this.buf;
    if (negative) hi = 0xffffffff;
    // 64-bit varint from two 32-bit halves.
    while (hi > 0 || lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    return p;
  }

  u64(v: U64): void {
    if (typeof v === 'number') return this.varint(v);
    if (!halvesOf(v)) throw new CtpipeError('RECORD_INVALID', `not a uint64: ${JSON.stringify(v.slice(0, 40))}`);
    this.grow(10);
    this.pos = this.varint64At(this.pos, halves.hi, halves.lo, false);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  uint(field: number, v: number): void {
    this.varint((field << 3) | 0);
    this.varint(v);
  }

  uintOpt(field: number, v: number | undefined): void {
    if (v === undefined) return;
    this.varint(field << 3);
    this.varint(v);
  }

  u64Field(field: number, v: U64 | undefined): void {
    if (v === undefined) return;
    this.varint(field << 3);
    this.u64(v);
  }

  bool(field: number, v: boolean | undefined): void {
    if (v === undefined) return;
    this.varint(field << 3);
    this.varint(v ? 1 : 0);
  }

  /** Strings here are almost always ASCII (addresses, helper names): copy char codes directly. */
  string(field: number, s: string | undefined): void {
    if (s === undefined) return;
    this.varint((field << 3) | 2);
    const n = s.length;
    if (n < 0x80) {
      this.grow(n + 1);
      const b = this.buf;
      const start = this.pos;
      b[start] = n;
      let p = start + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) {
          this.pos = start;
          return this.utf8(s);
        }
        b[p++] = c;
      }
      this.pos = p;
      return;
    }
    this.utf8(s);
  }

  private utf8(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.varint(bytes.length);
    this.grow(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }

  bytes(field: number, v: Buffer | undefined): void {
    if (v === undefined) return;
    this.varint((field << 3) | 2);
    this.varint(v.length);
    this.grow(v.length);
    v.copy(this.buf, this.pos);
    this.pos += v.length;
  }

  /** Starts a length-delimited field; close with end(). */
  begin(field: number): void {
    this.varint((field << 3) | 2);
    this.grow(1);
    this.stack.push(this.pos);
    this.pos += 1;
  }

  end(): void {
    const at = this.stack.pop()!;
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    let extra = 0;
    for (let l = len >>> 7; l > 0; l >>>= 7) extra++;
    this.grow(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    let p = at;
    let v = len;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
    this.pos += extra;
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// Raw writers for hot paths: the caller has ensure()d the room and threads the position through.

/** Unsigned varint of a value below 2^32. */
export function rawVarint(b: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    b[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[p++] = v;
  return p;
}
