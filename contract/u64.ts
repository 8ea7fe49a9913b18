/**
 * Exact conversions of the contract's 64-bit values (U64: a number below 2^53, else the decimal
 * text of one up to 2^64 - 1) without BigInt. Kernel stamps (ns since the epoch) are past 2^53, so
 * every CTA_TIMESTAMP start and stop is text: with BigInt, the protobuf reader took 3.0 us for a
 * DESTROY with both stamps, 2.4 without it (1.8 for the same record without stamps).
 * Functions with two results leave them in `halves` or `split` (no object per call).
 */
import type { U64 } from './records.js';

/** The last halvesOf(): the value's high and low 32 bits. */
export const halves = { hi: 0, lo: 0 };
/** Whole seconds and the nanoseconds left over, from the last call that divides by 10^9 (splitNs, nsSplit, and u64Of and halvesOf on the way). */
export const split = { sec: 0, nsec: 0 };

/** 2^64 - 1, the largest U64, as text. */
export const MAX_U64 = '18446744073709551615';

/**
 * (hi * 2^32 + lo) / 10^9 into `split`: one floating division gives the quotient within one, then
 * the remainder is computed exactly in pieces that stay below 2^53, and the quotient corrected.
 */
export function splitNs(hi: number, lo: number): void {
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
  split.sec = q;
  split.nsec = r;
}

/** Seconds and nanoseconds as the decimal text of their count of nanoseconds (sec > 0). */
const nsText = (sec: number, nsec: number): string => String(sec) + String(nsec).padStart(9, '0');

/** 32-bit halves as a U64. */
export function u64Of(hi: number, lo: number): U64 {
  if (hi < 0x200000) return hi * 4294967296 + lo;
  splitNs(hi, lo);
  return nsText(split.sec, split.nsec);
}

/** A U64 as whole seconds and nanoseconds (it counts ns) into `split`; false if it is not a U64. */
export function nsSplit(v: U64): boolean {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) return false;
    let sec = Math.floor(v / 1e9); // within one of the quotient: the remainder says which
    let nsec = v - sec * 1e9;
    if (nsec < 0) {
      sec--;
      nsec += 1e9;
    }
    split.sec = sec;
    split.nsec = nsec;
    return true;
  }
  if (typeof v !== 'string') return false; // untyped input (an old checkpoint's JSON)
  const n = v.length;
  if (n === 0 || n > 20 || (n === 20 && v > MAX_U64)) return false;
  const cut = n - 9; // the last 9 digits are the nanoseconds
  let sec = 0;
  let nsec = 0;
  for (let j = 0; j < n; j++) {
    const d = v.charCodeAt(j) - 48;
    if (d < 0 || d > 9) return false;
    if (j < cut) sec = sec * 10 + d;
    else nsec = nsec * 10 + d;
  }
  split.sec = sec;
  split.nsec = nsec;
  return true;
}

/** A U64 into `halves`; false if it is not one. */
export function halvesOf(v: U64): boolean {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) return false;
    halves.hi = Math.floor(v / 4294967296);
    halves.lo = v >>> 0;
    return true;
  }
  if (!nsSplit(v)) return false;
  // v = sec * 1e9 + nsec with sec < 2^35: sec split at 16 bits keeps every product below 2^53
  const { sec, nsec } = split;
  const s1 = Math.floor(sec / 65536);
  const b = s1 * 1e9;
  const bHi = Math.floor(b / 65536);
  const c = (b - bHi * 65536) * 65536 + (sec - s1 * 65536) * 1e9 + nsec;
  const carry = Math.floor(c / 4294967296);
  halves.hi = bHi + carry;
  halves.lo = c - carry * 4294967296;
  return true;
}

/** Seconds and nanoseconds (sec >= 0, 0 <= nsec < 1e9) as a U64 count of nanoseconds. */
export function nsOf(sec: number, nsec: number): U64 {
  const n = sec * 1e9 + nsec;
  return Number.isSafeInteger(n) ? n : nsText(sec, nsec); // sec * 1e9 is exact while n is
}
