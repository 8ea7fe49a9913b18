import { describe, expect, it } from 'vitest';
import { TakeoverPriority } from '../../processor/takeover.js';

describe('TakeoverPriority: the kept partitions\' checkpoints wait for the partitions taken over', () => {
  it('defers the kept partitions\' checkpoints until every partition taken over has stored a batch', () => {
    const t = new TakeoverPriority(10_000);
    t.assigned([1, 3], 0);
    expect(t.defers(0, 100)).toBe(true); // kept
    expect(t.defers(1, 100)).toBe(false); // taken over: its own checkpoint is not held back
    t.stored(1);
    expect(t.defers(0, 200)).toBe(true);
    t.stored(3);
    expect(t.defers(0, 300)).toBe(false);
    expect(t.pending).toBe(0);
  });

  it('waits at most one interval: a partition taken over that gets no records holds nothing back for long', () => {
    const t = new TakeoverPriority(10_000);
    t.assigned([5], 1000);
    expect(t.defers(0, 10_999)).toBe(true);
    expect(t.defers(0, 11_000)).toBe(false);
    expect(t.pending).toBe(0);
  });

  it('a rebalance that hands over nothing defers nothing, and each rebalance starts afresh', () => {
    const t = new TakeoverPriority(10_000);
    t.assigned([2], 0);
    t.assigned([], 50);
    expect(t.defers(0, 60)).toBe(false);
    t.assigned([4], 100);
    expect(t.defers(2, 150)).toBe(true);
  });
});
