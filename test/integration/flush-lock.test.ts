/**
 * The kernel handles a ctnetlink request in the sender's sendto, behind `conntrack -F`, which holds
 * the subsystem's lock for its whole flush (seconds on a table of a million). The collector's
 * requests (statistics every interval, counter and table dumps) are sent off the event loop, so
 * one that waits behind a flush leaves timers, /healthz and /metrics answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as R from '../../collector/netlink/requests.js';
import { QueryClient } from '../../collector/query.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { Lab, raiseConntrackMax } from '../../lab/lab.js';

/** Enough entries that the flush holds the lock for about half a second here. */
const ENTRIES = 400_000;

describe('a ctnetlink request behind conntrack -F', () => {
  let lab: Lab;
  let undoMax: () => void = () => {};
  beforeAll(async () => {
    undoMax = raiseConntrackMax(Math.ceil(ENTRIES * 1.3) + 65_536);
    lab = await Lab.create();
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    undoMax();
  });

  it('waits in the kernel while the event loop goes on', async () => {
    const filled = await lab.fillUdp(ENTRIES);
    expect(filled).toBeGreaterThanOrEqual(ENTRIES * 0.9);
    const q = new QueryClient(openNetfilterSocket({ netns: lab.netnsPath('fw') }), (e) => { throw e; });
    // the loop's longest gap between 5 ms ticks while the flush runs
    let last = performance.now();
    let gap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      gap = Math.max(gap, now - last);
      last = now;
    }, 5);
    try {
      let flushed = false;
      const flush = lab.conntrack(['-F']).then(() => (flushed = true));
      const waits: number[] = [];
      let cpus = 0;
      while (!flushed) {
        const t = performance.now();
        await q.request(R.ctStatsCpu, { cpuStats: () => cpus++ });
        waits.push(performance.now() - t);
      }
      await flush;
      clearInterval(ticker);
      const longest = Math.max(...waits);
      // the scenario happened: a request waited behind the flush (else the table was too small to tell)
      expect(longest, `requests: ${waits.length}, longest ${longest.toFixed(0)} ms`).toBeGreaterThan(150);
      expect(cpus).toBeGreaterThan(0); // and the kernel answered them
      // while the loop kept turning (about every 10 ms here): before, the request's sendto held it
      // for the whole wait, a gap as long as the longest request
      expect(gap, `longest request ${longest.toFixed(0)} ms, loop gap ${gap.toFixed(0)} ms`).toBeLessThan(longest / 2);
    } finally {
      clearInterval(ticker);
      q.close();
    }
  }, 180_000);
});
