/**
 * The bounded scale test: `ctpipe run` on a lab firewall whose table fills to 250,000 entries while
 * it runs (a burst of NEW), Ctrl-C, a restart (the state restored, the table dump merged into it),
 * then `conntrack -F` (a burst of DESTROY). Every kernel flow must end as exactly one row, ended by
 * its DESTROY: nothing lost, evicted or duplicated, no kernel drop, and each stop within 5 s.
 * `npm run bench -- scale` runs the same at 1,000,000 entries (docs/PERFORMANCE.md, Scale).
 */
import { describe, expect, it } from 'vitest';
import { runScaleRun, type RunScaleResult } from '../../bench/scale-run.js';

const ENTRIES = 250_000;

describe('ctpipe run at scale (250,000 entries)', () => {
  it('keeps every flow through a burst of NEW, a stop, a restart and a flush; each stop within 5 s', async () => {
    const r: RunScaleResult = await runScaleRun(ENTRIES, (line) => console.log(line));
    console.log(JSON.stringify(r));
    expect(r.entries).toBeGreaterThanOrEqual(ENTRIES);
    expect(r.kernelDrops).toBe(0);
    expect(r.kernelFlushCpuUsPerEntry).toBeGreaterThan(0); // conntrack -F's CPU, read from bash's times
    expect(r.rows).toEqual({ flows: r.entries, destroyed: r.entries, lost: 0, evicted: 0, duplicates: 0, notInKernel: 0, kernelWithoutRow: 0 });
    expect(r.firstStopS).toBeLessThanOrEqual(5);
    expect(r.secondStopS).toBeLessThanOrEqual(5);
  }, 900_000);
});
