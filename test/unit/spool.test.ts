/**
 * The disk spool: order across segments and restarts, torn tails, its bound, batch metadata kept
 * in the frames, and frames of the previous format still read.
 */
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { SealedBatch } from '../../collector/sinks/sealed.js';
import { Spool } from '../../collector/sinks/spool.js';
import { encodeBatch } from '../../contract/proto/batch.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { makeRecords } from '../helpers/records.js';
import { tempDir } from '../helpers/resources.js';

const dir = () => tempDir('spool-unit');
const rec = (i: number): SealedBatch => ({ value: Buffer.from(`record-${String(i).padStart(6, '0')}`), events: 1, firstSeq: i, lastSeq: i, losses: [] });

function drain(s: Spool): string[] {
  const out: string[] = [];
  for (let seg = s.peek(); seg; seg = s.peek()) {
    out.push(...seg.batches.map((b) => b.value.toString()));
    s.commit(seg.segment);
  }
  return out;
}

describe('spool', () => {
  it('gives records back oldest first, across segments and a reopen', () => {
    const d = dir();
    const a = new Spool(d, 1 << 20, 64); // tiny segments: one or two records each
    for (let i = 0; i < 10; i++) a.append([rec(i)]);
    a.close();
    expect(readdirSync(d).length).toBeGreaterThan(3);
    const b = new Spool(d, 1 << 20, 64);
    b.append([rec(10)]);
    expect(drain(b)).toEqual(Array.from({ length: 11 }, (_, i) => rec(i).value.toString()));
    expect(b.empty).toBe(true);
    expect(readdirSync(d)).toEqual([]);
  });

  it('drops a torn tail (a crash mid-write) and counts it', () => {
    const d = dir();
    const s = new Spool(d, 1 << 20);
    s.append([rec(1), rec(2)]);
    s.close();
    const file = path.join(d, readdirSync(d)[0]!);
    appendFileSync(file, Buffer.from([0x32, 0x50, 0x54, 0x43, 100, 0, 0, 0, 1, 2])); // header of a record never finished
    const t = new Spool(d, 1 << 20);
    expect(drain(t)).toEqual([rec(1).value.toString(), rec(2).value.toString()]);
    expect(t.corrupt).toBe(1);
  });

  it('refuses records past its bound with SPOOL_IO', () => {
    const s = new Spool(dir(), 100);
    s.append([rec(1)]);
    expect(() => s.append([{ ...rec(2), value: Buffer.alloc(200) }])).toThrow(expect.objectContaining({ code: 'SPOOL_IO' }));
  });

  it('gives batches back with their metadata: event count, seq range, the news of their loss records', () => {
    const d = dir();
    const a = new Spool(d, 1 << 20);
    const batch: SealedBatch = {
      value: Buffer.from('encoded batch'), events: 1000, firstSeq: 2001, lastSeq: 3000,
      losses: [{ reason: 'enobufs', count: 12, source: 'events' }, { reason: 'spool_full', count: 5, source: 'publish', first_seq: 90, last_seq: 94 }],
    };
    a.append([batch, rec(3001)]);
    a.close();
    expect(new Spool(d, 1 << 20).peek()!.batches).toEqual([batch, rec(3001)]);
  });

  it('reads the frames an earlier collector wrote (CTP1, no metadata), deriving their metadata once, then the new ones', () => {
    const d = dir();
    const loss: CtpipeRecord = { type: 'loss', host: 'h', run: 'old', seq: 6, sec: 1_795_000_000, nsec: 0, reason: 'enobufs', count: 40, source: 'events', resync: true };
    const old = [[...makeRecords('h', 'old', 5), loss], makeRecords('h', 'old', 3, 7)].map((recs) => encodeBatch(recs));
    // the previous version's frame: magic "CTP1", length, crc32, value
    const frames = old.map((v) => {
      const h = Buffer.alloc(12);
      h.writeUInt32LE(0x43545031, 0);
      h.writeUInt32LE(v.length, 4);
      h.writeUInt32LE(crc32(v), 8);
      return Buffer.concat([h, v]);
    });
    writeFileSync(path.join(d, 'spool-0000000000000001.seg'), Buffer.concat(frames));
    const s = new Spool(d, 1 << 20);
    s.append([rec(100)]); // the upgraded collector writes its frames to a segment of its own
    const first = s.peek()!;
    expect(first.batches).toEqual([
      { value: old[0], events: 6, firstSeq: 1, lastSeq: 6, losses: [{ reason: 'enobufs', count: 40, source: 'events', first_seq: undefined, last_seq: undefined }] },
      { value: old[1], events: 3, firstSeq: 7, lastSeq: 9, losses: [] },
    ]);
    s.commit(first.segment);
    expect(s.peek()!.batches).toEqual([rec(100)]);
    expect(s.corrupt).toBe(0);
  });

  it('says which directory it cannot use', () => {
    const file = path.join(dir(), 'a-file');
    appendFileSync(file, 'x');
    expect(() => new Spool(path.join(file, 'spool'), 100)).toThrow(/spool directory .*a-file\/spool/);
  });
});
