/**
 * `ctpipe run` SIGKILLed on the real lab (about 2,000 UDP flows open in the firewall), some flows
 * ending while it is down (`conntrack -D` of every flow to one port, each a DESTROY nobody hears),
 * then started again on the same store: its saved state and its start dump tell which flows ended
 * meanwhile; each gets a row (end_reason lost, lost_by downtime, with what was known), and the
 * gap is counted in pipeline_health. The flows still open continue.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../lab/lab.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let lab: Lab;
let dir: string;
const procs = new Procs(() => ({ CTPIPE_METRICS_ENABLED: 'false' }));

beforeAll(async () => {
  expect(process.getuid?.(), 'this test needs root').toBe(0);
  lab = await Lab.create();
  dir = tempDir('run-kill');
}, 60_000);

afterAll(() => release(procs, lab, dir));

/** UDP flows to `port` the firewall holds. */
async function flowsTo(port: number): Promise<number> {
  const r = await lab.conntrack(['-L', '-p', 'udp', '--dport', String(port)], { allowFail: true });
  return r.stdout.split('\n').filter((l) => l.includes(`dport=${port} `)).length;
}

describe('ctpipe run killed with SIGKILL', () => {
  it('closes every flow that ended while it was down (lost_by downtime) and counts them in pipeline_health', async () => {
    const args = ['run', '--netns', lab.netnsPath('fw'), '--host', 'kill-fw', '--clickhouse-url', `chdb:${dir}`, '--process-flush', '300ms',
      '--process-checkpoint', '1s', '--stats-interval', '1s'];
    const [p, i] = procs.start(args);
    await procs.waitLog(i, 'running: collector and processor');
    await lab.fillUdp(1750, 5000);
    await lab.fillUdp(250, 5001);
    const staying = await flowsTo(5000);
    const ending = await flowsTo(5001);
    expect(staying + ending).toBeGreaterThanOrEqual(2000);
    // the state holding all of them is checkpointed
    await procs.until('a checkpoint holding every flow', async () => {
      const cps = procs.logs[i]!.split('\n').filter((l) => l.includes('state checkpointed')).map((l) => JSON.parse(l) as { open: number });
      return (cps.at(-1)?.open ?? 0) >= staying + ending;
    }, 30_000);
    p.kill('SIGKILL');
    await exited(p);

    // while it is down, every flow to 5001 ends: DESTROY events nobody hears
    await lab.conntrack(['-D', '-p', 'udp', '--dport', '5001'], { allowFail: true });
    expect(await flowsTo(5001)).toBe(0);
    await sleep(500);

    const [q, j] = procs.start(args);
    await procs.waitLog(j, 'running: collector and processor');
    await procs.waitLog(j, 'state checkpointed', 30_000);
    q.kill('SIGTERM');
    expect(await exited(q)).toBe(0);

    const rows = await queryStore<{ dport: number; end_reason: string; lost_by: string; n: string }>(dir,
      `SELECT orig_dport AS dport, end_reason, lost_by, count() AS n FROM ctpipe.flows FINAL WHERE host = 'kill-fw' AND proto = 17
        GROUP BY dport, end_reason, lost_by ORDER BY dport`);
    // every ended flow one row, closed as lost while down; the others still open (their rows written at the stop)
    expect(rows.map((r) => [r.dport, r.end_reason, r.lost_by, Number(r.n)])).toEqual([[5000, 'open', '', staying], [5001, 'lost', 'downtime', ending]]);
    const health = await queryStore<{ count: string; detail: string }>(dir,
      "SELECT count, detail FROM ctpipe.pipeline_health WHERE host = 'kill-fw' AND kind = 'loss' AND startsWith(detail, 'downtime:')");
    expect(health.map((h) => Number(h.count))).toEqual([ending]);
    expect(health[0]!.detail).toMatch(/closed with lost_by = downtime$/);
    // what was known: the tuple and the first time seen
    const known = await queryStore<{ n: string }>(dir,
      "SELECT count() AS n FROM ctpipe.flows FINAL WHERE host = 'kill-fw' AND lost_by = 'downtime' AND orig_dport = 5001 AND first_seen > '2020-01-01' AND ended_at IS NOT NULL");
    expect(Number(known[0]!.n)).toBe(ending);
  }, 240_000);
});
