/** contract/u64.ts: 64-bit values without BigInt, checked against BigInt, and the forms that use them. */
import { describe, expect, it } from 'vitest';
import { fromJsonLine, toJsonLine } from '../../contract/json.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import { ProtoReader } from '../../contract/proto/reader.js';
import { ProtoWriter } from '../../contract/proto/writer.js';
import type { CtRecord, U64 } from '../../contract/records.js';
import { halves, halvesOf, nsOf, nsSplit, split, u64Of } from '../../contract/u64.js';
import { DEFAULT_RECORD_LIMITS, validateRecord } from '../../contract/validate.js';
import { mulberry32 } from '../helpers/random.js';

const asU64 = (n: bigint): U64 => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

/** Full-range values, values about 2^32, 2^53 and 2^64, kernel stamps, and multiples of 1e9 give or take one. */
function values(): bigint[] {
  const rnd = mulberry32(19);
  const r32 = () => BigInt(Math.floor(rnd() * 2 ** 32));
  const out = [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 1_795_000_000_000_000_000n];
  for (const edge of [2n ** 32n, 2n ** 53n, 2n ** 64n - 1000n, 1_000_000_000n]) for (let d = -3n; d <= 3n; d++) if (edge + d >= 0n && edge + d < 2n ** 64n) out.push(edge + d);
  for (let i = 0; i < 5000; i++) {
    out.push((r32() << 32n) | r32());
    out.push(r32() << BigInt(i % 32)); // small and middling ones too
    out.push(1_700_000_000_000_000_000n + (r32() << 24n)); // stamps, 2023 to 2026
    const k = r32() * 4n + BigInt(i % 4); // multiples of 1e9 up to 1.7e19 (2^64 is 1.8e19), each side
    out.push(k * 1_000_000_000n - 1n, k * 1_000_000_000n, k * 1_000_000_000n + 1n);
  }
  const kept = out.filter((v) => v >= 0n && v < 2n ** 64n);
  if (kept.length < out.length - 1) throw new Error('values: the generator left the range'); // only 1e9 - 1 of k = 0 is not a u64
  return kept;
}

describe('64-bit values without BigInt', () => {
  it('converts between halves, text and (seconds, nanoseconds) exactly as BigInt does', () => {
    for (const n of values()) {
      const hi = Number(n >> 32n);
      const lo = Number(n & 0xffffffffn);
      const want = asU64(n);
      expect([n, u64Of(hi, lo)]).toEqual([n, want]);
      expect(halvesOf(want)).toBe(true);
      expect([n, halves.hi, halves.lo]).toEqual([n, hi, lo]);
      expect(nsSplit(want)).toBe(true);
      const sec = Number(n / 1_000_000_000n);
      const nsec = Number(n % 1_000_000_000n);
      expect([n, split.sec, split.nsec]).toEqual([n, sec, nsec]);
      expect([n, nsOf(sec, nsec)]).toEqual([n, want]);
    }
    // text with leading zeros is the same value
    expect(halvesOf('0000000001000000000')).toBe(true);
    expect([halves.hi, halves.lo]).toEqual([0, 1e9]);
  });

  it('refuses what is not a uint64', () => {
    for (const v of ['', 'x', '12a4', '-1', '18446744073709551616', '99999999999999999999', '123456789012345678901', -1, 1.5, 2 ** 53, NaN, Infinity]) {
      expect([v, halvesOf(v), nsSplit(v)]).toEqual([v, false, false]);
    }
    // what only untyped input (an old checkpoint's JSON) could hold
    for (const v of [{}, true, null, 5n, ['1']] as unknown as U64[]) expect([v, halvesOf(v), nsSplit(v)]).toEqual([v, false, false]);
  });

  it('carries kernel stamps through protobuf and JSON lines exactly, and the reader drops bits past 64 as before', () => {
    const rec = (start: U64, stop: U64): CtRecord => ({
      type: 'destroy', host: 'h', run: 'r', seq: 1, sec: 1_795_000_000, nsec: 5, id: 7, family: 'ipv4', proto: 17, status: 14,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1, dport: 2 }, reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 17, sport: 2, dport: 1 },
      start, stop,
    });
    for (const [start, stop] of [['1795000000123456789', '18446744073709551615'], [1_000_000_000, 2 ** 53 - 1], ['9007199254740992', '1700000000000000000']] as [U64, U64][]) {
      const back = decodeBatch(encodeBatch([rec(start, stop)])).records[0] as CtRecord;
      expect([back.start, back.stop]).toEqual([start, stop]);
      const j = fromJsonLine(toJsonLine(rec(start, stop))) as CtRecord;
      expect([j.start, j.stop]).toEqual([start, stop]);
    }
    // ten varint bytes whose last holds bits 63 to 69: only bit 63 is kept, as BigInt's mask kept it
    const r = new ProtoReader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    expect(r.u64()).toBe((2n ** 64n - 1n).toString());
    // 2^64 and 2^65 + 5: masked below 2^53, they stay text as before, which validation refuses
    for (const [bytes, want] of [[[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02], '0'], [[0x85, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x04], '5']] as [number[], string][]) {
      expect(new ProtoReader(Buffer.from(bytes)).u64()).toBe(want);
    }
    expect(validateRecord(rec('0', '5'), DEFAULT_RECORD_LIMITS)).toMatch(/start/);
    // a well-formed but impossible date is a line that does not decode, not a crash
    const line = JSON.parse(toJsonLine(rec('1795000000123456789', '1795000000123456790'))) as Record<string, unknown>;
    expect(() => fromJsonLine(JSON.stringify({ ...line, start: '2026-13-01T00:00:00Z' }))).toThrow(expect.objectContaining({ code: 'RECORD_DECODE' }));
    const w = new ProtoWriter();
    expect(() => w.u64('18446744073709551616')).toThrow(expect.objectContaining({ code: 'RECORD_INVALID' }));
  });
});
