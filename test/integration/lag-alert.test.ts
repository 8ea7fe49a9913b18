/**
 * The "processor lag growing" alert rule on a real lag: lab traffic -> `ctpipe collect` -> Kafka
 * (librdkafka's mock cluster) -> `ctpipe process` -> chDB. First the processor runs freely under a
 * steady UDP stream; then it is starved of CPU (stopped 98% of the time with SIGSTOP/SIGCONT, as an
 * overloaded or throttled processor would be) under a heavier one. Its own processor_stats rows
 * show the Kafka lag growing, and the rule fires for that processor; at the end of the free run it
 * stays quiet.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertRules } from '../../dashboards/alerts.js';
import { evaluateRule } from '../../dashboards/run-queries.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { select } from '../helpers/store.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';

const topic = `lag-${Date.now()}`;
let lab: Lab;
let kafka: KafkaMock;
let dir: string;
let store: Store;
let freeEnd = 0;
let starvedEnd = 0;
let processor = '';
let lags: { ts: string; lag: string }[] = [];

const procs = Procs.onKafka(() => kafka.brokers, topic);

/** UDP datagrams from the client at `pps` for `seconds`, each a new flow (hping3 moves the source port). */
const stream = (pps: number, seconds: number) => lab.exec('client', 'hping3', ['-q', '--udp', '-p', '9999', '-i', `u${Math.round(1e6 / pps)}`, '-c', String(pps * seconds), ADDR.server4],
  { allowFail: true, timeoutMs: (seconds + 30) * 1000 });

beforeAll(async () => {
  lab = await Lab.create({ accounting: false });
  kafka = await KafkaMock.start();
  dir = tempDir('lag');
  const [collector, cl] = procs.start(['collect', '--netns', lab.netnsPath('fw'), '--host', 'lab-fw', '--kafka-linger', '50ms', '--kafka-batch-events', '10', '--events', 'new,destroy']);
  await procs.waitLog(cl, '"collecting"');
  const [p, pl] = procs.start(['process', '--clickhouse-url', `chdb:${dir}`, '--process-checkpoint', '2s']);
  await procs.waitLog(pl, 'joined the consumer group');
  processor = `${(await import('node:os')).hostname()}:${p.pid!}`;

  await stream(100, 25); // free: the processor keeps up
  freeEnd = Date.now();
  const starving = { on: true };
  const starve = (async () => {
    while (starving.on) {
      p.kill('SIGSTOP');
      await sleep(980);
      p.kill('SIGCONT');
      await sleep(20);
    }
  })();
  await stream(500, 50);
  starvedEnd = Date.now();
  starving.on = false;
  await starve;
  p.kill('SIGCONT');
  await sleep(15_000); // catches up
  collector.kill('SIGTERM');
  expect(await exited(collector)).toBe(0);
  p.kill('SIGTERM');
  expect(await exited(p)).toBe(0);
  store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  lags = await select<{ ts: string; lag: string }>(store, 'SELECT toString(ts) AS ts, lag FROM ctpipe.processor_stats ORDER BY ts');
}, 240_000);

afterAll(() => release(store, kafka, lab, dir));

describe('processor lag growing, on a starved processor', () => {
  it('fires for the starved processor, and stays quiet while it kept up', async () => {
    const rule = alertRules('ctpipe').groups[0]!.rules.find((r) => r.uid === 'ctpipe-processor-lag')!;
    // Evaluated when the lag peaked: a starved processor writes its rows when it next runs, which
    // on a loaded machine may be only after the starving ends.
    const peak = lags.reduce((a, b) => (Number(b.lag) > Number(a.lag) ? b : a));
    const peakMs = Date.parse(`${peak.ts.replace(' ', 'T')}Z`);
    const seen = `lag at the processor's checkpoints: ${lags.map((l) => `${l.ts.slice(11)} ${l.lag}`).join(', ')} ` +
      `(free until ${new Date(freeEnd).toISOString().slice(11, 19)}, starved until ${new Date(starvedEnd).toISOString().slice(11, 19)})`;
    expect(peakMs, seen).toBeGreaterThan(freeEnd);
    expect(peakMs, seen).toBeLessThan(starvedEnd + 15_000);
    const atPeak = await evaluateRule(store, rule, peakMs + 1000);
    expect(atPeak.firing.map((f) => f.labels), seen).toEqual([{ processor }]);
    expect(atPeak.firing[0]!.value, seen).toBeGreaterThan(100);
    expect((await evaluateRule(store, rule, freeEnd)).firing).toEqual([]);
  });
});
