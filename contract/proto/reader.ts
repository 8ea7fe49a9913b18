/** Protobuf wire reader: the inverse of ProtoWriter, bounds-checked (poison records must not crash). */
import { CtpipeError } from '../../common/errors.js';
import type { U64 } from '../records.js';
import { u64Of } from '../u64.js';

export class ProtoReader {
  pos: number;
  /** Where the message being read ends: moved by enter() and leave() as nested messages are read. */
  end: number;
  private view: DataView | undefined;

  constructor(readonly buf: Buffer, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  /** A DataView of the buffer, made once per reader (IPv6 addresses read through it). */
  get dv(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  private fail(what: string): never {
    throw new CtpipeError('RECORD_DECODE', `protobuf: ${what} at byte ${this.pos}`);
  }

  /** Varint as a JS number (exact up to 2^53). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** uint64: a number below 2^53, else an exact decimal string. */
  u64(): U64 {
    const start = this.pos;
    const n = this.varint();
    if (n <= Number.MAX_SAFE_INTEGER) return n;
    // past 2^53 (every kernel stamp): the 7-bit groups into 32-bit halves, bits past 64 dropped
    // as BigInt's mask dropped them; a value left below 2^53 by that (bits past 64 set) stays text,
    // as it did, which validation refuses
    let hi = 0;
    let lo = 0;
    for (let p = start, shift = 0; p < this.pos; p++, shift += 7) {
      const g = this.buf[p]! & 0x7f;
      if (shift < 32) {
        lo |= g << shift;
        if (shift > 25) hi |= g >>> (32 - shift);
      } else if (shift < 64) hi |= g << (shift - 32);
    }
    const v = u64Of(hi >>> 0, lo >>> 0);
    return typeof v === 'number' ? String(v) : v;
  }

  /** int64 that may be negative (two's complement varint). */
  i64(): number {
    const start = this.pos;
    const n = this.varint();
    if (n < 2 ** 63) return n;
    let v = 0n;
    let shift = 0n;
    for (let p = start; p < this.pos; p++) {
      v |= BigInt(this.buf[p]! & 0x7f) << shift;
      shift += 7n;
    }
    return Number(BigInt.asIntN(64, v));
  }

  len(): number {
    const n = this.varint();
    if (this.pos + n > this.end) this.fail(`length ${n} past the end`);
    return n;
  }

  string(): string {
    const n = this.len();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  bytes(): Buffer {
    const n = this.len();
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * Narrows this reader to the next length-delimited field and returns the end to restore with
   * leave(): nested messages are read in place, without a reader object for each (a flow record
   * holds five of them and the decoder reads a million records a second).
   */
  enter(): number {
    const n = this.len();
    const outer = this.end;
    this.end = this.pos + n;
    return outer;
  }

  /** Past the field enter() narrowed to, back in the message around it. */
  leave(outer: number): void {
    this.pos = this.end;
    this.end = outer;
  }

  /** Returns a reader over the next length-delimited field. */
  sub(): ProtoReader {
    const n = this.len();
    const r = new ProtoReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0: this.varint(); break;
      case 1: this.pos += 8; break;
      case 2: {
        const n = this.len(); // read the length before taking pos: it advances pos
        this.pos += n;
        break;
      }
      case 5: this.pos += 4; break;
      default: this.fail(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail('field past the end');
  }

  more(): boolean {
    return this.pos < this.end;
  }
}
