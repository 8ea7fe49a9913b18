/** The shared retry backoff: doubling from the minimum, capped, and back to the minimum on reset. */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../common/backoff.js';

describe('backoff', () => {
  it('doubles each wait up to the cap and starts again after a reset', () => {
    const b = new Backoff(200, 1000);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([200, 400, 800, 1000, 1000]);
    b.reset();
    expect([b.next(), b.next()]).toEqual([200, 400]);
  });

  it('waits the current delay', async () => {
    const b = new Backoff(30, 60);
    const t = performance.now();
    await b.wait();
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
    expect(b.next()).toBe(60);
  });
});
