/** The collector's small pieces on their own: the drop counter. */
import { describe, expect, it } from 'vitest';
import { DropCounter } from '../../collector/drops.js';

describe('drop counter', () => {
  it('gives the increase of sk_drops since the last call, across the u32 wrap', () => {
    let drops = 40;
    const d = new DropCounter({ stats: () => ({ drops, rmem: 0, rcvbuf: 0, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: 0 }) });
    expect(d.take()).toBe(40);
    expect(d.take()).toBe(0);
    drops = 2 ** 32 - 10;
    d.take();
    drops = 5; // wrapped
    expect(d.take()).toBe(15);
  });
});
