/** The disk spool: order across segments and restarts, torn tails, its bound. */
import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../collector/sinks/spool.js';
import { tempDir } from '../helpers/resources.js';

const dir = () => tempDir('spool-unit');
const rec = (i: number) => Buffer.from(`record-${String(i).padStart(6, '0')}`);

function drain(s: Spool): string[] {
  const out: string[] = [];
  for (let seg = s.peek(); seg; seg = s.peek()) {
    out.push(...seg.records.map((b) => b.toString()));
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
    expect(drain(b)).toEqual(Array.from({ length: 11 }, (_, i) => rec(i).toString()));
    expect(b.empty).toBe(true);
    expect(readdirSync(d)).toEqual([]);
  });

  it('drops a torn tail (a crash mid-write) and counts it', () => {
    const d = dir();
    const s = new Spool(d, 1 << 20);
    s.append([rec(1), rec(2)]);
    s.close();
    const file = path.join(d, readdirSync(d)[0]!);
    appendFileSync(file, Buffer.from([0x31, 0x50, 0x54, 0x43, 100, 0, 0, 0, 1, 2])); // header of a record never finished
    const t = new Spool(d, 1 << 20);
    expect(drain(t)).toEqual([rec(1).toString(), rec(2).toString()]);
    expect(t.corrupt).toBe(1);
  });

  it('refuses records past its bound with SPOOL_IO', () => {
    const s = new Spool(dir(), 100);
    s.append([rec(1)]);
    expect(() => s.append([Buffer.alloc(200)])).toThrow(expect.objectContaining({ code: 'SPOOL_IO' }));
  });

  it('says which directory it cannot use', () => {
    const file = path.join(dir(), 'a-file');
    appendFileSync(file, 'x');
    expect(() => new Spool(path.join(file, 'spool'), 100)).toThrow(/spool directory .*a-file\/spool/);
  });
});
