/**
 * Soak: the lab's mixed traffic (TCP, UDP, ICMP, FTP through the helper) through `ctpipe run` for
 * 2 minutes (30 in the full run), sampling the process's resident memory, its open flows and its
 * lag (records emitted by the collector and not yet through the processor) every 5 s (10 s in the
 * full run). Memory and open flows must level off: the last third of the run may not peak much
 * above the middle third. The lag must stay small and end near zero.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { Endpoint, metric } from './harness.js';
import { FULL, scale, writeLedger } from './ledger.js';

/** FAULT_SOAK_MINUTES overrides the length (a longer or a shorter look than the suite's). */
const DURATION_S = Number(process.env.FAULT_SOAK_MINUTES ?? scale(2, 30)) * 60;
const SAMPLE_S = scale(5, 10);
let lab: Lab;
let dir: string;
const procs = new Procs();

beforeAll(async () => {
  lab = await Lab.create();
  for (const t of ['tcp_timeout_time_wait', 'tcp_timeout_close', 'udp_timeout', 'udp_timeout_stream', 'icmp_timeout']) {
    await lab.sysctl('fw', `net.netfilter.nf_conntrack_${t}`, '5');
  }
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  dir = tempDir('soak');
});

afterAll(() => release(procs, lab, dir));

interface Sample { t: number; rssMb: number; open: number; lag: number }

describe('soak: mixed traffic through ctpipe run', () => {
  it('levels off in memory and open flows, and keeps up', { timeout: (DURATION_S + 180) * 1000 }, async () => {
    const ops = new Endpoint();
    const [p, i] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--host', 'soak', '--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`,
      '--metrics-listen', ops.listen, '--stats-interval', '1s', '--process-flush', '300ms', '--process-grace', '10s']);
    await procs.waitLog(i, 'running: collector and processor');
    const stop = { now: false };
    const made: string[] = []; // proto/family/client port of each TCP and UDP connection made
    const traffic = (async () => {
      for (let round = 0; !stop.now; round++) {
        const [t4, t6, u] = await Promise.all([
          lab.tcpConnect(ADDR.server4, 8080, 1000), lab.tcpConnect(ADDR.server6, 8080, 500),
          lab.udpExchange(ADDR.server4, 5353, 2, 100), lab.ping(ADDR.server4, 1),
        ]);
        made.push(`6/ipv4/${t4.local}`, `6/ipv6/${t6.local}`, `17/ipv4/${u.local}`);
        if (round % 10 === 0) await lab.ftpGet(round % 20 === 0 ? 'passive' : 'active');
        if (round % 5 === 0) await lab.conntrack(['-L'], { allowFail: true }); // evict expired entries now
      }
    })();
    let trafficFailed = false;
    traffic.catch(() => (trafficFailed = true)); // awaited below, where a failure fails the test
    const samples: Sample[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < DURATION_S * 1000 && !trafficFailed) {
      await sleep(SAMPLE_S * 1000);
      const text = await ops.metrics();
      const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p.pid!}/status`, 'utf8'))![1]) / 1024;
      samples.push({
        t: Math.round((Date.now() - t0) / 1000), rssMb: Math.round(rss * 10) / 10, open: metric(text, 'ctpipe_processor_open_flows'),
        lag: metric(text, 'ctpipe_collector_seq') - metric(text, 'ctpipe_processor_records_total'),
      });
    }
    stop.now = true;
    await traffic;
    // Open flows get no row at stop (the state is saved instead): the last connections end in the
    // kernel first (timeouts of 5 s; a listing evicts what expired) and their DESTROYs get through.
    await procs.until('every flow ended', async () => {
      await lab.conntrack(['-L'], { allowFail: true });
      return metric(await ops.metrics(), 'ctpipe_processor_open_flows') === 0;
    }, 30_000);
    const sent = metric(await ops.metrics(), 'ctpipe_collector_seq');
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);
    const received = procs.logLine<{ records: number }>(i, '"msg":"stopped"').records;
    expect(received).toBeGreaterThanOrEqual(sent);
    const out = process.env.FAULT_SUITE_OUT;
    if (out) writeFileSync(path.join(out, `soak-samples-${FULL ? 'full' : 'bounded'}.json`), `${JSON.stringify(samples, null, 1)}\n`);

    const third = Math.floor(samples.length / 3);
    const middle = samples.slice(third, 2 * third);
    const last = samples.slice(2 * third);
    const peak = (xs: Sample[], k: 'rssMb' | 'open') => Math.max(...xs.map((s) => s[k]));
    // memory: the last third's peak within 15% (and 20 MB) of the middle third's
    expect(peak(last, 'rssMb'), JSON.stringify(samples)).toBeLessThanOrEqual(Math.max(peak(middle, 'rssMb') * 1.15, peak(middle, 'rssMb') + 20));
    // open flows: bounded by the traffic's rate times the timeouts, not growing with time
    expect(peak(last, 'open'), JSON.stringify(samples)).toBeLessThanOrEqual(peak(middle, 'open') * 1.5 + 50);
    expect(Math.max(...samples.map((s) => s.lag)), JSON.stringify(samples)).toBeLessThan(5000);
    const rows = await queryStore<{ n: string; lost: string }>(path.join(dir, 'chdb'),
      "SELECT count() AS n, countIf(end_reason = 'lost') AS lost FROM ctpipe.flows FINAL WHERE host = 'soak' AND orig_dport IN (8080, 5353)");
    const health = await queryStore<{ kind: string; n: string }>(path.join(dir, 'chdb'),
      "SELECT kind, sum(count) AS n FROM ctpipe.pipeline_health WHERE host = 'soak' AND kind IN ('loss', 'gap') GROUP BY kind");
    expect(health).toEqual([]);
    // each round made two TCP connections to 8080 and one UDP exchange to 5353: every one a row
    const stored = Number(rows[0]!.n);
    if (stored !== made.length) {
      const have = await queryStore<{ k: string }>(path.join(dir, 'chdb'),
        "SELECT concat(toString(proto), '/', toString(family), '/', toString(orig_sport)) AS k FROM ctpipe.flows FINAL WHERE host = 'soak' AND orig_dport IN (8080, 5353)");
      const left = new Map<string, number>();
      for (const k of made) left.set(k, (left.get(k) ?? 0) + 1);
      for (const { k } of have) left.set(k, (left.get(k) ?? 0) - 1);
      expect.fail(`${made.length} connections made, ${stored} stored; made minus stored by proto/family/port: ${JSON.stringify([...left].filter(([, n]) => n !== 0))}`);
    }
    writeLedger({
      fault: 'soak', injected: `${DURATION_S / 60} min of mixed lab traffic (${made.length / 3} rounds of TCP v4/v6, UDP, ICMP; FTP every tenth)`,
      sent: made.length, received: stored, stored, duplicated: 0, lost: 0, recovery_s: null,
      notes: `counted: the TCP and UDP connections to the lab's servers; ${sent} records emitted, ${received} processed; ` +
        `RSS ${samples[0]!.rssMb}-${peak(samples, 'rssMb')} MB (middle third peak ${peak(middle, 'rssMb')}, last ${peak(last, 'rssMb')}); ` +
        `open flows peak ${peak(samples, 'open')}; lag max ${Math.max(...samples.map((s) => s.lag))} records; ${rows[0]!.lost} flows closed without DESTROY`,
    });
  });
});
