/**
 * How each figure moves with 2x and 4x the load. Load means what the figure is about: events for
 * the rates, open flows for memory, concurrent floods for the storm, the offered rate for
 * freshness, stored flows for bytes on disk. A rate "scales linearly" when 4x the work takes at most
 * 4/0.8 = 5x the time; a per-unit size when it grows by at most 20%; completeness when nothing is
 * lost at any load; freshness when its p99 stays under the 5 s goal.
 */
import { runDecode } from './decode.js';
import { runE2e } from './e2e.js';
import { runFreshness } from './freshness.js';
import { runLifecycle } from './lifecycle.js';
import { runPublish } from './publish.js';
import { runStorms } from './storm.js';

export interface ScalingRow {
  measure: string;
  load: string;
  x1: number;
  x2: number;
  x4: number;
  verdict: string;
}

const FACTORS = [1, 2, 4] as const;
type Triple = [number, number, number];

function rate(measure: string, load: string, v: Triple): ScalingRow {
  const worst = Math.min(v[1] / v[0], v[2] / v[0]);
  return { measure, load, x1: v[0], x2: v[1], x4: v[2], verdict: worst >= 0.8 ? 'linear' : `worse: ${(worst * 100).toFixed(0)}% of the 1x rate` };
}

function size(measure: string, load: string, v: Triple): ScalingRow {
  const worst = Math.max(v[1] / v[0], v[2] / v[0]);
  return { measure, load, x1: v[0], x2: v[1], x4: v[2], verdict: worst <= 1.2 ? 'linear (constant per unit)' : `worse: x${worst.toFixed(2)} per unit` };
}

function fresh(measure: string, load: string, v: Triple): ScalingRow {
  const over = FACTORS.filter((_, i) => v[i]! >= 5000);
  return { measure, load, x1: v[0], x2: v[1], x4: v[2], verdict: over.length === 0 ? 'under the 5 s goal at every load' : `over 5 s at ${over.map((k) => `${k}x`).join(', ')}` };
}

export async function runScaling(progress: (line: string) => void = () => {}): Promise<ScalingRow[]> {
  const each = async <T>(name: string, f: (k: number) => Promise<T> | T): Promise<[T, T, T]> => {
    const out: T[] = [];
    for (const k of FACTORS) {
      progress(`scaling: ${name} at ${k}x`);
      out.push(await f(k));
    }
    return out as [T, T, T];
  };
  const rows: ScalingRow[] = [];
  const decode = await each('decode', (k) => runDecode(2_000_000 * k, 3));
  rows.push(rate('decode, events/s on one core', '2 M / 4 M / 8 M events', decode.map((d) => d.eventsPerSecond) as Triple));
  const publish = await each('publish', (k) => runPublish(1_000_000 * k));
  rows.push(rate('publish to Kafka, events/s', '1 M / 2 M / 4 M events', publish.map((p) => p.eventsPerSecond) as Triple));
  const life = await each('lifecycle', (k) => runLifecycle(250_000 * k, 200_000 * k));
  rows.push(rate('lifecycle engine, events/s on one core', '2 M / 4 M / 8 M events', life.map((l) => l.eventsPerSecond) as Triple));
  rows.push(size('memory per open flow, B', '200 k / 400 k / 800 k open flows', life.map((l) => l.bytesPerOpenFlow) as Triple));
  const e2e = await each('end to end', (k) => runE2e(200_000 * k, 100_000 * k));
  const lost = e2e.map((e) => e.flows - e.rowsStored);
  rows.push({ ...rate('end to end (ctpipe run path), events/s', '1.6 M / 3.2 M / 6.4 M events', e2e.map((e) => e.eventsPerSecond) as Triple),
    ...(lost.some((n) => n !== 0) ? { verdict: `LOST ${lost.join(' / ')} flows` } : {}) });
  rows.push(size('bytes per flow row on disk', '200 k / 400 k / 800 k flows', e2e.map((e) => e.bytesPerFlowRow) as Triple));
  rows.push(fresh('freshness p99 (ctpipe run path), ms', '100 k / 200 k / 400 k events/s offered', e2e.map((e) => e.freshnessP99ms) as Triple));
  const kf = await each('freshness through Kafka', (k) => runFreshness(40_000 * k, 50_000 * k));
  rows.push(fresh('freshness p99 through Kafka and ctpipe process, ms', '50 k / 100 k / 200 k events/s offered', kf.map((f) => f.p99ms) as Triple));
  const storms = await each('storm', async (k) => (await runStorms(1, 61_000, k))[0]!);
  rows.push({
    measure: 'storm completeness, events received of generated', load: '1 / 2 / 4 hping3 floods at once (61 k flows each)',
    x1: storms[0].received / storms[0].expected, x2: storms[1].received / storms[1].expected, x4: storms[2].received / storms[2].expected,
    verdict: storms.every((s) => s.lost === 0) ? 'complete at every load' : `lost ${storms.map((s) => s.lost).join(' / ')} events`,
  });
  return rows;
}
