/**
 * Keys of lifecycles that ended, each with its generation, at most `max` of them: the oldest ended
 * are forgotten first. A key is 53 bits of the key text's 64-bit hash (hi's low 21 bits, lo), so
 * that as one number (a checkpoint's form) it is exact in a double.
 *
 * Why not a Map<number, number>: with 53-bit keys (heap numbers, hashed and scattered over a table
 * of up to a million entries) its get, delete and set were 17% of the engine's time. Here entries
 * sit in a ring of typed arrays in the order they ended and an open-addressing index (linear
 * probing, probe.ts, as in flow-table.ts) maps a key to its ring position. An entry ended again
 * is marked dead in place and appended; dead entries are dropped when they reach the head, and all
 * at once when the ring is full (it is then rebuilt at twice the live count).
 */
import type { SnapshotReader, SnapshotWriter } from '../snapshot.js';
import { removeEntry } from './probe.js';

const HI_BITS = 0x1fffff;

export class EndedKeys {
  private hi = new Uint32Array(0);
  private lo = new Uint32Array(0);
  private gen = new Uint32Array(0);
  private dead = new Uint8Array(0);
  /** Ring position of the oldest entry; `used` entries (live and dead) follow it. */
  private head = 0;
  private used = 0;
  private live = 0;
  /** Ring position + 1 per key; 0 is empty. Kept at most half full. */
  private idx = new Int32Array(16);

  constructor(private readonly max: number) {}

  get size(): number {
    return this.live;
  }

  /** The generation of the key's last ended lifecycle, or undefined. */
  get(hi: number, lo: number): number | undefined {
    const p = this.find(hi & HI_BITS, lo);
    return p < 0 ? undefined : this.gen[p];
  }

  /** Records that the key ended (now: it becomes the newest), forgetting the oldest past `max`. */
  set(hi: number, lo: number, gen: number): void {
    hi &= HI_BITS;
    const old = this.find(hi, lo);
    if (old >= 0) {
      this.unindex(old);
      this.dead[old] = 1;
      this.live--;
    }
    if (this.used === this.hi.length) this.resize(Math.max(1024, this.live * 2));
    const p = (this.head + this.used) % this.hi.length;
    this.hi[p] = hi;
    this.lo[p] = lo;
    this.gen[p] = gen;
    this.dead[p] = 0;
    this.used++;
    this.live++;
    this.index(p);
    while (this.live > this.max) this.dropHead();
    while (this.used > 0 && this.dead[this.head]) this.dropHead();
  }

  /** [53-bit key, generation] from the oldest to the newest (a checkpoint's order). */
  *entries(): Generator<[number, number]> {
    for (let k = 0; k < this.used; k++) {
      const p = (this.head + k) % this.hi.length;
      if (!this.dead[p]) yield [this.hi[p]! * 4294967296 + this.lo[p]!, this.gen[p]!];
    }
  }

  /** Into a snapshot: the live entries' hi, lo and generation, oldest first. */
  save(w: SnapshotWriter): void {
    const [hi, lo, gen] = this.compacted(this.live);
    w.bytes('ended.hi', hi);
    w.bytes('ended.lo', lo);
    w.bytes('ended.gen', gen);
  }

  /** An empty set takes a snapshot's entries, in their order. */
  restore(r: SnapshotReader): void {
    const n = r.size('ended.hi') / 4;
    const cap = Math.max(1024, n * 2);
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.gen = new Uint32Array(cap);
    r.into('ended.hi', this.hi.subarray(0, n));
    r.into('ended.lo', this.lo.subarray(0, n));
    r.into('ended.gen', this.gen.subarray(0, n));
    this.dead = new Uint8Array(cap);
    this.head = 0;
    this.used = this.live = n;
    let size = 16;
    while (size < cap * 2) size *= 2;
    this.idx = new Int32Array(size);
    for (let p = 0; p < n; p++) this.index(p);
    while (this.live > this.max) this.dropHead();
  }

  private dropHead(): void {
    const p = this.head;
    if (!this.dead[p]) {
      this.unindex(p);
      this.live--;
    }
    this.head = (p + 1) % this.hi.length;
    this.used--;
  }

  /** The live entries' hi, lo and generation, oldest first, at the start of arrays of `cap` (>= live) entries. */
  private compacted(cap: number): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
    const [hi, lo, gen] = [new Uint32Array(cap), new Uint32Array(cap), new Uint32Array(cap)];
    let n = 0;
    for (let k = 0; k < this.used; k++) {
      const p = (this.head + k) % this.hi.length;
      if (this.dead[p]) continue;
      hi[n] = this.hi[p]!;
      lo[n] = this.lo[p]!;
      gen[n++] = this.gen[p]!;
    }
    return [hi, lo, gen];
  }

  /** Live entries moved, in order, to the start of a ring of `cap` (>= live) entries; the index rebuilt. */
  private resize(cap: number): void {
    const [hi, lo, gen] = this.compacted(cap);
    const n = this.live;
    this.hi = hi;
    this.lo = lo;
    this.gen = gen;
    this.dead = new Uint8Array(cap);
    this.head = 0;
    this.used = n;
    let size = 16;
    while (size < cap * 2) size *= 2;
    this.idx = new Int32Array(size);
    for (let p = 0; p < n; p++) this.index(p);
  }

  private static slot(hi: number, lo: number, mask: number): number {
    return (Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 0) & mask;
  }

  private find(hi: number, lo: number): number {
    const idx = this.idx;
    const mask = idx.length - 1;
    for (let i = EndedKeys.slot(hi, lo, mask); idx[i] !== 0; i = (i + 1) & mask) {
      const p = idx[i]! - 1;
      if (this.lo[p] === lo && this.hi[p] === hi) return p;
    }
    return -1;
  }

  private index(p: number): void {
    const idx = this.idx;
    const mask = idx.length - 1;
    let i = EndedKeys.slot(this.hi[p]!, this.lo[p]!, mask);
    while (idx[i] !== 0) i = (i + 1) & mask;
    idx[i] = p + 1;
  }

  /** An index entry's home position (entries are ring position + 1). */
  private readonly home = (e: number): number => EndedKeys.slot(this.hi[e - 1]!, this.lo[e - 1]!, this.idx.length - 1);

  private unindex(p: number): void {
    removeEntry(this.idx, p + 1, this.home);
  }

}
