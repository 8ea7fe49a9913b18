import { describe, expect, it } from 'vitest';
import { ChunkGate } from '../../collector/gate.js';

describe('ChunkGate', () => {
  it('keeps chunks while the sink has no room and gives them in order once it has, letting the event loop turn meanwhile', async () => {
    let room = false;
    const waiters: (() => void)[] = [];
    const sink = { hasRoom: () => room, whenRoom: () => new Promise<void>((r) => waiters.push(r)) };
    const taken: number[] = [];
    const held: number[] = [];
    // each chunk takes 20 ms to decode
    const gate = new ChunkGate<number>(sink, (i) => {
      const t = performance.now();
      while (performance.now() - t < 20);
      taken.push(i);
    }, () => 10, 1e9, (b) => held.push(b));
    for (let i = 0; i < 30; i++) gate.push(i);
    expect([taken, gate.bytes]).toEqual([[], 300]);
    room = true;
    let takenAtTurn = -1;
    setImmediate(() => { takenAtTurn = taken.length; });
    for (const w of waiters.splice(0)) w();
    await gate.drained();
    expect([taken, gate.bytes, held.at(-1)]).toEqual([[...Array(30).keys()], 0, 0]);
    // the loop turned within about 100 ms (5 chunks), not after all 30 (600 ms)
    expect(takenAtTurn).toBeGreaterThanOrEqual(0);
    expect(takenAtTurn).toBeLessThanOrEqual(10);
  });

  it('lets the loop turn when chunks keep coming within one of its callbacks, as a reader hands over its queue', async () => {
    const taken: number[] = [];
    const gate = new ChunkGate<number>({ hasRoom: () => true }, (i) => {
      const t = performance.now();
      while (performance.now() - t < 20);
      taken.push(i);
    }, () => 10, 1e9);
    let takenAtTurn = -1;
    setImmediate(() => { takenAtTurn = taken.length; });
    for (let i = 0; i < 30; i++) gate.push(i); // no turn between them
    // about 100 ms' worth (5 chunks) taken straight through, the rest held
    expect(taken.length).toBeGreaterThanOrEqual(4);
    expect(taken.length).toBeLessThanOrEqual(10);
    await gate.drained();
    expect([taken, gate.bytes]).toEqual([[...Array(30).keys()], 0]);
    expect(takenAtTurn).toBeGreaterThanOrEqual(0);
    expect(takenAtTurn).toBeLessThanOrEqual(10);
  });

  it('passes chunks straight through while the sink has room and nothing is held', () => {
    const taken: number[] = [];
    const gate = new ChunkGate<number>({ hasRoom: () => true }, (i) => taken.push(i), () => 10, 1e9);
    gate.push(1);
    gate.push(2);
    expect([taken, gate.bytes]).toEqual([[1, 2], 0]);
  });

  it('past maxBytes gives the oldest on regardless', () => {
    const taken: number[] = [];
    const gate = new ChunkGate<number>({ hasRoom: () => false, whenRoom: () => new Promise(() => {}) }, (i) => taken.push(i), () => 10, 25);
    for (let i = 0; i < 4; i++) gate.push(i);
    expect([taken, gate.bytes]).toEqual([[0, 1], 20]);
  });
});
