/**
 * The partition cursor (processor/cursor.ts), table-driven: each case feeds fetches and takes, and
 * states the chunks handed out (ranges, whether logged), what waits, what is applied, and when a
 * checkpoint is due. The Kafka consumer, `ctpipe run`'s sink and file replay all cut with it.
 */
import { describe, expect, it } from 'vitest';
import { PartitionCursor, type Chunk, type CursorOptions, type Range } from '../../processor/cursor.js';

interface Rec { offset: number; bytes: number; t?: number }
const at = { position: (r: Rec) => r.offset, size: (r: Rec) => r.bytes };
const recs = (from: number, to: number, bytes = 10): Rec[] => Array.from({ length: to - from + 1 }, (_, i) => ({ offset: from + i, bytes }));
const shape = (cs: Chunk<Rec>[]) => cs.map((c) => `${c.first}-${c.last}${c.log ? '' : ' logged'}`);

type Step =
  | { add: Rec[] }
  | { take: boolean; expect: string[]; apply?: boolean }
  | { keepLast: true }
  | { expectWaiting: number }
  | { expectApplied: number };

interface Case {
  name: string;
  opts?: Partial<CursorOptions<Rec>>;
  restore?: { offset: number; ranges: Range[] };
  steps: Step[];
}

const cases: Case[] = [
  {
    name: 'at the input end every fetch is one chunk, logged',
    steps: [{ add: recs(0, 4) }, { take: true, expect: ['0-4'] }, { add: recs(5, 5) }, { take: true, expect: ['5-5'] }, { expectApplied: 5 }],
  },
  {
    name: 'behind the end, small fetches are gathered until minSize',
    opts: { minSize: 100 },
    steps: [
      { add: recs(0, 3) }, { take: false, expect: [] }, { expectWaiting: 4 },
      { add: recs(4, 9) }, { take: false, expect: ['0-9'] }, { expectWaiting: 0 },
    ],
  },
  {
    name: 'a large fetch is cut into chunks of minSize, each at the record that reaches it; the remainder waits for a flush',
    opts: { minSize: 100 },
    steps: [
      { add: [...recs(0, 8), { offset: 9, bytes: 25 }, ...recs(10, 27)] }, { take: false, expect: ['0-9', '10-19'] }, { expectWaiting: 8 },
      { take: true, expect: ['20-27'] }, { expectWaiting: 0 },
    ],
  },
  {
    name: 'records kept back (a stop mid-batch) keep their sizes: cut alike when taken again',
    opts: { minSize: 100 },
    steps: [
      { add: recs(0, 24) }, { take: false, expect: ['0-9', '10-19'], apply: false }, { keepLast: true }, { expectWaiting: 25 },
      { take: false, expect: ['0-9', '10-19'] }, { expectWaiting: 5 }, { expectApplied: 19 },
    ],
  },
  {
    name: 'a re-fetch from an older offset drops what is applied or pending',
    steps: [
      { add: recs(0, 4) }, { take: true, expect: ['0-4'] },
      { add: recs(2, 7) }, { add: recs(6, 8) }, { take: true, expect: ['5-8'] },
    ],
  },
  {
    name: 'a replay cuts along the logged ranges, then new input as fetched',
    restore: { offset: 9, ranges: [{ first: 10, last: 14 }, { first: 15, last: 21 }, { first: 3, last: 5 }] },
    steps: [
      { add: recs(8, 25) }, { take: true, expect: ['10-14 logged', '15-21 logged', '22-25'] }, { expectApplied: 25 },
    ],
  },
  {
    name: 'a logged range fetched in part waits for the rest, even when flushed',
    restore: { offset: -1, ranges: [{ first: 0, last: 9 }] },
    opts: { minSize: 30 },
    steps: [
      { add: recs(0, 6) }, { take: true, expect: [] }, { expectWaiting: 7 },
      { add: recs(7, 12) }, { take: false, expect: ['0-9 logged', '10-12'] },
    ],
  },
  {
    name: 'maxRecords cuts exactly; the remainder waits for a flush',
    opts: { maxRecords: 4 },
    steps: [
      { add: recs(1, 10) }, { take: false, expect: ['1-4', '5-8'] }, { expectWaiting: 2 },
      { take: true, expect: ['9-10'] },
    ],
  },
  {
    name: 'a boundary from the records alone cuts before the record that crosses it',
    opts: { boundary: (a, b) => (b.t ?? 0) - (a.t ?? 0) >= 1000 },
    steps: [
      { add: [0, 300, 999, 1000, 1500, 2600].map((t, i) => ({ offset: i, bytes: 1, t })) },
      { take: false, expect: ['0-2', '3-4'] }, { take: true, expect: ['5-5'] },
    ],
  },
  {
    name: 'chunks kept after a stop are handed out again first',
    steps: [
      { add: recs(0, 3) }, { take: true, expect: ['0-3'], apply: false }, { keepLast: true }, { add: recs(4, 5) },
      { take: true, expect: ['0-5'] }, { expectApplied: 5 },
    ],
  },
];

describe('partition cursor', () => {
  for (const c of cases) {
    it(c.name, () => {
      const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 1000, ...at, ...c.opts }, 0);
      if (c.restore) cur.restore(c.restore.offset, c.restore.ranges, 0);
      let lastTaken: Chunk<Rec>[] = [];
      for (const s of c.steps) {
        if ('add' in s) cur.add(s.add);
        else if ('take' in s) {
          lastTaken = cur.take(s.take);
          expect(shape(lastTaken)).toEqual(s.expect);
          if (s.apply !== false) for (const ch of lastTaken) cur.done(ch);
        } else if ('keepLast' in s) cur.keep(lastTaken);
        else if ('expectWaiting' in s) expect(cur.waiting).toBe(s.expectWaiting);
        else expect(cur.applied).toBe(s.expectApplied);
      }
    });
  }

  it('asks a minSize function at each take (what an insert\'s worth of rows is in records changes as rows per record are learned)', () => {
    let min = 30;
    const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 1000, ...at, minSize: () => min }, 0);
    cur.add(recs(0, 9));
    expect(shape(cur.take(false))).toEqual(['0-2', '3-5', '6-8']);
    min = 200;
    cur.add(recs(10, 29));
    expect(shape(cur.take(false))).toEqual(['9-28']);
  });

  it('splits a new chunk into two with their own ranges and tokens, applied one after the other; never a logged range', () => {
    const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 1000, ...at }, 0);
    cur.add(recs(0, 9));
    const [c] = cur.take(true);
    const [head, rest] = cur.split(c!, 4);
    expect([head, rest].map((x) => [x.first, x.last, x.token, x.records.length, x.log])).toEqual([[0, 3, 'in:0-3', 4, true], [4, 9, 'in:4-9', 6, true]]);
    cur.done(head);
    cur.done(rest);
    expect(cur.applied).toBe(9);
    expect(() => cur.split(c!, 10)).toThrow(/cannot split/);
    const replay = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 1000, ...at }, 0);
    replay.restore(-1, [{ first: 0, last: 9 }], 0);
    replay.add(recs(0, 9));
    const [logged] = replay.take(true);
    expect(logged!.log).toBe(false);
    expect(() => replay.split(logged!, 4)).toThrow(/cannot split/);
  });

  it('tokens name the input and the range', () => {
    const cur = new PartitionCursor<Rec>({ input: 'ctpipe.events.v1:3', checkpointMs: 1000, ...at }, 0);
    cur.add(recs(7, 9));
    expect(cur.take(true).map((c) => c.token)).toEqual(['ctpipe.events.v1:3:7-9']);
  });

  it('a checkpoint is due once something new is applied and the interval passed; it returns the offset to commit', () => {
    const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 1000, ...at }, 0);
    expect(cur.due(5000)).toBe(false); // nothing applied
    cur.add(recs(0, 2));
    for (const ch of cur.take(true)) cur.done(ch);
    expect(cur.due(999)).toBe(false);
    expect(cur.due(1000)).toBe(true);
    expect(cur.checkpointed(cur.applied, 1000)).toBe(3);
    expect(cur.due(3000)).toBe(false); // nothing new since
    cur.add(recs(3, 3));
    for (const ch of cur.take(true)) cur.done(ch);
    expect(cur.due(1500)).toBe(false);
    expect(cur.due(2000)).toBe(true);
  });

  it('a checkpoint forgets the logged ranges it covers; a later restore replays only what is past it', () => {
    const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 0, ...at }, 0);
    cur.add(recs(0, 4));
    for (const ch of cur.take(true)) cur.done(ch);
    cur.add(recs(5, 9));
    for (const ch of cur.take(true)) cur.done(ch);
    cur.checkpointed(4, 0); // the state saved covers 0-4 only
    cur.restore(4, [{ first: 0, last: 4 }, { first: 5, last: 9 }], 0);
    cur.add(recs(0, 12));
    expect(shape(cur.take(true))).toEqual(['5-9 logged', '10-12']);
    expect(cur.lag(20)).toBe(20 - 4);
  });

  it('a replayed range is known stored only when a logged range starts right after it (the last one, or one with a hole after it, is written again)', () => {
    const label = (cs: Chunk<Rec>[]) => cs.map((c) => `${c.first}-${c.last} ${c.log ? 'new' : c.stored ? 'stored' : 'replayed'}`);
    const cur = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 0, ...at }, 0);
    cur.restore(-1, [{ first: 0, last: 4 }, { first: 5, last: 9 }, { first: 10, last: 12 }], 0);
    cur.add(recs(0, 15));
    expect(label(cur.take(true))).toEqual(['0-4 stored', '5-9 stored', '10-12 replayed', '13-15 new']);
    const gap = new PartitionCursor<Rec>({ input: 'in', checkpointMs: 0, ...at }, 0);
    gap.restore(-1, [{ first: 0, last: 4 }, { first: 6, last: 9 }], 0);
    gap.add([...recs(0, 4), ...recs(6, 9)]);
    expect(label(gap.take(true))).toEqual(['0-4 replayed', '6-9 replayed']);
  });
});
