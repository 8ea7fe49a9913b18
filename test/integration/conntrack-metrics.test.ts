/**
 * The conntrack metrics on /metrics against the real kernel (collector/conntrack-metrics.ts): two
 * `ctpipe collect` processes watch the lab firewall, one summing the per-CPU statistics and one
 * with a cpu label (--metrics-per-cpu). Their values must equal conntrack-tools' own readings,
 * bracketed between two of them (`conntrack -C`, `conntrack -S`, `conntrack -L expect`) and the
 * namespace's nf_conntrack_max; the events by type equal the records written. Then the shipped
 * alert rules (dashboards/prometheus/) are run by `promtool test rules` on series scraped from the
 * collector while the lab sends INVALID packets, first a trickle, then a burst.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { STAT_FIELDS, type StatField } from '../../contract/records.js';
import { prometheusRules } from '../../dashboards/prometheus.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { exited, Procs } from '../helpers/procs.js';
import { parseMetrics, promtoolTestRules, series, value, type PromSample, type RuleTest } from '../helpers/prom.js';
import { release } from '../helpers/resources.js';

const RULES = path.join(packageRoot(), 'dashboards', 'prometheus', 'ctpipe-conntrack.rules.yml');
const PORT_SUM = 19583;
const PORT_CPU = 19584;
const POLL_MS = 200;

let lab: Lab;
const procs = new Procs();
let summed: ChildProcessWithoutNullStreams;
let stdout = '';
let netns = '';

const scrape = async (port: number): Promise<PromSample[]> => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());

type Cpus = Map<number, Record<StatField, number>>;
/** `conntrack -S` in the firewall: its per-CPU lines. */
async function conntrackS(): Promise<Cpus> {
  const out = (await lab.conntrack(['-S'])).stdout;
  const cpus: Cpus = new Map();
  for (const line of out.split('\n')) {
    const m = /^cpu=(\d+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const row = {} as Record<StatField, number>;
    for (const kv of m[2]!.trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if ((STAT_FIELDS as readonly string[]).includes(k!)) row[k as StatField] = Number(v);
    }
    cpus.set(Number(m[1]), row);
  }
  if (cpus.size === 0) throw new Error(`conntrack -S gave no CPU lines:\n${out}`);
  return cpus;
}
const total = (c: Cpus, f: StatField) => [...c.values()].reduce((s, r) => s + r[f], 0);
const expectations = async () => (await lab.conntrack(['-L', 'expect'])).stdout.split('\n').filter((l) => l.trim()).length;
const conntrackMax = async () => Number((await lab.exec('fw', 'cat', ['/proc/sys/net/netfilter/nf_conntrack_max'])).stdout.trim());

beforeAll(async () => {
  lab = await Lab.create();
  netns = lab.ns.fw;
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  const common = ['collect', '--output', 'jsonl', '--netns', lab.netnsPath('fw'), '--stats-interval', `${POLL_MS}ms`];
  const [a, ia] = procs.start([...common, '--host', 'prom-sum', '--metrics-listen', `127.0.0.1:${PORT_SUM}`]);
  const [, ib] = procs.start([...common, '--host', 'prom-cpu', '--metrics-listen', `127.0.0.1:${PORT_CPU}`, '--metrics-per-cpu']);
  summed = a;
  a.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  await procs.waitLog(ia, '"collecting"');
  await procs.waitLog(ib, '"collecting"');

  for (let i = 0; i < 3; i++) await lab.tcpConnect(ADDR.server4, 8080, 500);
  await lab.tcpRefused(ADDR.server4, 9);
  await lab.udpExchange(ADDR.server4, 5353, 3, 100);
  await lab.ping(ADDR.server4, 2);
  await lab.tcpConnect(ADDR.server6, 8080, 500);
  await lab.hpingInvalid(ADDR.server4, 25);
  // an entry inserted through ctnetlink: the kernel counts `insert` for these (not for packets' own)
  await lab.conntrack(['-I', '-p', 'udp', '-s', '192.0.2.10', '-d', '192.0.2.20', '--sport', '1111', '--dport', '2222', '-t', '300']);
  // an expectation that stays a minute: on a held FTP control connection (the helper attached)
  const ftp = await lab.ftpHold(120);
  await lab.insertExpectation(ftp.port, ADDR.server4);
  await sleep(3 * POLL_MS);
}, 120_000);

afterAll(() => release(procs, lab));

describe('conntrack metrics on /metrics (real kernel lab)', () => {
  it('equal conntrack -C, the namespace\'s nf_conntrack_max, the sums of conntrack -S and conntrack -L expect', async () => {
    const [s1, c1, max1, e1] = [await conntrackS(), await lab.conntrackCount(), await conntrackMax(), await expectations()];
    await sleep(3 * POLL_MS); // a poll after the first readings
    const [sum, cpu] = [await scrape(PORT_SUM), await scrape(PORT_CPU)];
    const [s2, c2, max2, e2] = [await conntrackS(), await lab.conntrackCount(), await conntrackMax(), await expectations()];
    const ns = { netns };

    const entries = value(sum, 'ctpipe_conntrack_entries', ns);
    expect(entries).toBeGreaterThanOrEqual(Math.min(c1, c2));
    expect(entries).toBeLessThanOrEqual(Math.max(c1, c2));
    expect(entries).toBeGreaterThan(0);
    expect(max1).toBe(max2);
    expect(value(sum, 'ctpipe_conntrack_entries_limit', ns)).toBe(max1);
    expect(value(cpu, 'ctpipe_conntrack_entries_limit', ns)).toBe(max1);
    const exp = value(sum, 'ctpipe_conntrack_expect_entries', ns);
    expect(e1).toBeGreaterThanOrEqual(1);
    expect(exp).toBeGreaterThanOrEqual(Math.min(e1, e2));
    expect(exp).toBeLessThanOrEqual(Math.max(e1, e2));

    for (const f of STAT_FIELDS) {
      const v = value(sum, `ctpipe_conntrack_stat_${f}_total`, ns);
      expect(v, f).toBeGreaterThanOrEqual(total(s1, f));
      expect(v, f).toBeLessThanOrEqual(total(s2, f));
      for (const [n, row] of s1) {
        const per = value(cpu, `ctpipe_conntrack_stat_${f}_total`, { netns, cpu: String(n) });
        expect(per, `${f} cpu ${n}`).toBeGreaterThanOrEqual(row[f]);
        expect(per, `${f} cpu ${n}`).toBeLessThanOrEqual(s2.get(n)![f]);
      }
    }
    // the lab moved them: 25 INVALID packets, one entry inserted through ctnetlink
    expect(value(sum, 'ctpipe_conntrack_stat_invalid_total', ns)).toBeGreaterThanOrEqual(25);
    expect(value(sum, 'ctpipe_conntrack_stat_insert_total', ns)).toBeGreaterThanOrEqual(1);
    // the summed collector has no cpu label; the per-CPU one a series for each CPU conntrack -S shows
    expect(sum.filter((s) => s.name === 'ctpipe_conntrack_stat_invalid_total').map((s) => s.labels)).toEqual([ns]);
    expect(cpu.filter((s) => s.name === 'ctpipe_conntrack_stat_invalid_total').length).toBe(s2.size);
  });

  it('the alert rules, run by promtool on series scraped from the collector, fire on an INVALID burst and nowhere else', async () => {
    // One scrape stands for one minute of the rules' time: a trickle for 66 "minutes", then a burst.
    const scrapes: PromSample[][] = [];
    for (let i = 0; i < 66; i++) {
      if (i % 11 === 5) await lab.hpingInvalid(ADDR.server4, 2);
      await sleep(POLL_MS + 50);
      scrapes.push(await scrape(PORT_SUM));
    }
    for (let i = 0; i < 8; i++) {
      await lab.hpingInvalid(ADDR.server4, 400);
      await sleep(POLL_MS + 50);
      scrapes.push(await scrape(PORT_SUM));
    }
    const wanted = new Set(['ctpipe_conntrack_entries', 'ctpipe_conntrack_entries_limit', 'ctpipe_collector_conntrack_quiet',
      ...['invalid', 'drop', 'insert_failed', 'early_drop'].map((f) => `ctpipe_conntrack_stat_${f}_total`),
      'ctpipe_collector_netlink_drops_total', 'ctpipe_collector_enobufs_total']);
    const target = { instance: 'lab:9464', job: 'ctpipe' };
    const bySeries = new Map<string, (number | undefined)[]>();
    scrapes.forEach((samples, t) => {
      for (const s of samples.filter((x) => wanted.has(x.name))) {
        const key = series(s.name, { ...s.labels, ...target });
        if (!bySeries.has(key)) bySeries.set(key, new Array<number | undefined>(scrapes.length).fill(undefined));
        bySeries.get(key)![t] = s.value;
      }
    });
    expect([...bySeries.keys()].filter((k) => k.startsWith('ctpipe_conntrack_stat_invalid_total'))).toHaveLength(1);
    const input = [...bySeries].map(([s, vs]) => ({ series: s, values: vs.map((v) => (v === undefined ? '_' : String(v))).join(' ') }));

    const last = scrapes.length - 1;
    const at = `${last}m`;
    const invalid = (t: number) => value(scrapes[t]!, 'ctpipe_conntrack_stat_invalid_total', { netns });
    const rate = (invalid(last) - invalid(last - 5)) / 300;
    const baseline = (invalid(last - 5) - invalid(last - 65)) / 3600;
    expect(rate).toBeGreaterThan(1);
    expect(rate).toBeGreaterThan(4 * baseline);
    const labels = { ...target, netns, severity: 'warning' };
    const rule = prometheusRules().groups[0]!.rules.find((r) => r.alert === 'CtpipeConntrackInvalidSpike')!;
    const shown = String(Number(rate.toPrecision(4))); // Prometheus' humanize for 1 <= v < 1000 (%.4g)
    const render = (t: string) => t.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => (labels as Record<string, string>)[k] ?? '').replace(/\{\{ \$value[^}]*\}\}/g, shown);
    const none = (alertname: string) => ({ eval_time: at, alertname, exp_alerts: [] });
    const entries = value(scrapes[last]!, 'ctpipe_conntrack_entries', { netns });
    const limit = value(scrapes[last]!, 'ctpipe_conntrack_entries_limit', { netns });
    const test: RuleTest = {
      interval: '1m',
      input_series: input,
      alert_rule_test: [
        { eval_time: at, alertname: 'CtpipeConntrackInvalidSpike', exp_alerts: [{ exp_labels: labels, exp_annotations: { summary: render(rule.annotations.summary), description: render(rule.annotations.description) } }] },
        // before the burst, the trickle is its own baseline
        { eval_time: `${last - 8}m`, alertname: 'CtpipeConntrackInvalidSpike', exp_alerts: [] },
        ...['CtpipeConntrackTableFilling', 'CtpipeConntrackTableNearlyFull', 'CtpipeConntrackDrops', 'CtpipeConntrackEarlyDrops', 'CtpipeCollectorLosingEvents', 'CtpipeCollectorNoEvents'].map(none),
      ],
      promql_expr_test: [{
        expr: 'ctpipe_conntrack_entries / ctpipe_conntrack_entries_limit', eval_time: at,
        exp_samples: [{ labels: `{instance="lab:9464", job="ctpipe", netns="${netns}"}`, value: entries / limit }],
      }],
    };
    const r = promtoolTestRules(RULES, [test]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  }, 120_000);

  it('counts the events received by type as the records written', async () => {
    await lab.conntrack(['-F']);
    await lab.conntrack(['-F', 'expect'], { allowFail: true });
    await sleep(4 * POLL_MS);
    const sum = await scrape(PORT_SUM);
    summed.kill('SIGTERM');
    expect(await exited(summed)).toBe(0);
    const recs = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    for (const type of ['new', 'update', 'destroy', 'exp_new', 'exp_destroy']) {
      const written = recs.filter((r) => r.type === type).length;
      // a type never received has no series yet
      const got = sum.find((x) => x.name === 'ctpipe_conntrack_events_total' && x.labels.netns === netns && x.labels.type === type)?.value ?? 0;
      expect(got, type).toBe(written);
      if (type !== 'exp_destroy') expect(written, type).toBeGreaterThan(0);
    }
  }, 60_000);
});
