/** Protobuf wire reader: the inverse of ProtoWriter, bounds-checked (poison records must not crash). */
import { CtpipeError } from '../../common/errors.js';
import type { U64 } from '../records.js';

export class ProtoReader {
  pos: number;
  constructor(readonly buf: Buffer, start = 0, readonly end = buf.length) {
    this.pos = start;
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
    let v = 0n;
    let shift = 0n;
    for (let p = start; p < this.pos; p++) {
      v |= BigInt(this.buf[p]! & 0x7f) << shift;
      shift += 7n;
    }
    return (v & 0xffffffffffffffffn).toString();
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
