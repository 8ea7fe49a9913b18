/**
 * The Prometheus alert rules (dashboards/prometheus.ts): the committed file is what the code makes,
 * `promtool check rules` accepts it (and refuses a broken copy), and `promtool test rules` shows
 * each rule firing on the series it is for and staying quiet on normal ones. The same rules on
 * series scraped from a real collector: test/integration/conntrack-metrics.test.ts. The metrics'
 * counting (wraps, per-CPU label, expectations) is checked here on ConntrackMetrics directly.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConntrackMetrics, netnsLabel } from '../../collector/conntrack-metrics.js';
import { packageRoot } from '../../common/paths.js';
import { STAT_FIELDS, type CpuStats } from '../../contract/records.js';
import { prometheusGenerated, prometheusRules } from '../../dashboards/prometheus.js';
import { parseMetrics, promtool, promtoolTestRules, series, value, type RuleTest } from '../helpers/prom.js';

const DIR = path.join(packageRoot(), 'dashboards', 'prometheus');
const RULES = path.join(DIR, 'ctpipe-conntrack.rules.yml');
const L = { instance: 'h1:9464', job: 'ctpipe', netns: 'host' };

/** A rule's annotations as Prometheus renders them for these labels, `$value` already humanized as `shown`. */
function annotations(name: string, labels: Record<string, string>, shown: string): Record<string, string> {
  const rule = prometheusRules().groups[0]!.rules.find((r) => r.alert === name)!;
  const render = (t: string) => t.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? '').replace(/\{\{ \$value[^}]*\}\}/g, shown);
  return { summary: render(rule.annotations.summary), description: render(rule.annotations.description) };
}
/** The alert `name` at `at` is firing for exactly these labels (each with its humanized value). */
const alerts = (name: string, firing: [Record<string, string>, string][], at = '90m') => ({
  eval_time: at, alertname: name,
  exp_alerts: firing.map(([l, shown]) => ({ exp_labels: l, exp_annotations: annotations(name, l, shown) })),
});

describe('Prometheus alert rules', () => {
  it('the committed files are exactly what the code generates (npm run dashboards)', () => {
    const want = prometheusGenerated();
    expect(readdirSync(DIR).sort()).toEqual([...want.keys()].sort());
    for (const [rel, content] of want) expect(readFileSync(path.join(DIR, rel), 'utf8'), rel).toBe(content);
  });

  it('promtool check rules accepts them, and refuses a broken copy', () => {
    const ok = promtool(['check', 'rules', RULES]);
    expect(ok.out).toContain('SUCCESS: 7 rules found');
    expect(ok.code).toBe(0);
    const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-rules-'));
    try {
      const broken = path.join(dir, 'broken.yml');
      writeFileSync(broken, readFileSync(RULES, 'utf8').replace('> 0.75', '> > 0.75'));
      const bad = promtool(['check', 'rules', broken]);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/parse error|unexpected/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('each rule fires on what it is for and not on a steady, healthy table (promtool test rules)', () => {
    const quiet = { ...L, netns: 'quiet' };
    const stat = (f: string, l: Record<string, string>, values: string) => ({ series: series(`ctpipe_conntrack_stat_${f}_total`, l), values });
    const test: RuleTest = {
      interval: '1m',
      input_series: [
        // 80% full on host, 95% in ns2 (per-CPU series there), 10% in quiet
        { series: series('ctpipe_conntrack_entries', L), values: '800x100' },
        { series: series('ctpipe_conntrack_entries_limit', L), values: '1000x100' },
        { series: series('ctpipe_conntrack_entries', { ...L, netns: 'ns2' }), values: '950x100' },
        { series: series('ctpipe_conntrack_entries_limit', { ...L, netns: 'ns2' }), values: '1000x100' },
        { series: series('ctpipe_conntrack_entries', quiet), values: '100x100' },
        { series: series('ctpipe_conntrack_entries_limit', quiet), values: '1000x100' },
        // drops on two CPUs of ns2; insert_failed on host; early drops on host
        stat('drop', { ...L, netns: 'ns2', cpu: '0' }, '0x80 3x20'),
        stat('drop', { ...L, netns: 'ns2', cpu: '1' }, '0x80 2x20'),
        stat('drop', quiet, '5x100'),
        stat('insert_failed', { ...L, netns: 'ns2', cpu: '0' }, '0x100'),
        stat('insert_failed', { ...L, netns: 'ns2', cpu: '1' }, '0x100'),
        stat('insert_failed', quiet, '0x100'),
        stat('early_drop', L, '0x85 7x15'),
        stat('early_drop', quiet, '9x100'),
        // INVALID: host jumps from 0.1/s to 10/s at 80m; quiet runs at a steady 20/s (its own baseline)
        stat('invalid', L, '0+6x80 480+600x20'),
        stat('invalid', quiet, '0+1200x100'),
        // the collector: socket drops at 85m on host, nothing on quiet; quiet reports no events
        { series: series('ctpipe_collector_netlink_drops_total', { instance: 'h1:9464', job: 'ctpipe', socket: 'events' }), values: '0x85 40x15' },
        { series: series('ctpipe_collector_enobufs_total', { instance: 'h1:9464', job: 'ctpipe', socket: 'events' }), values: '0x85 2x15' },
        { series: series('ctpipe_collector_netlink_drops_total', { instance: 'h2:9464', job: 'ctpipe', socket: 'events' }), values: '0x100' },
        { series: series('ctpipe_collector_enobufs_total', { instance: 'h2:9464', job: 'ctpipe', socket: 'events' }), values: '0x100' },
        { series: series('ctpipe_collector_conntrack_quiet', { instance: 'h2:9464', job: 'ctpipe' }), values: '0x85 1x15' },
        { series: series('ctpipe_collector_conntrack_quiet', { instance: 'h1:9464', job: 'ctpipe' }), values: '0x100' },
      ],
      alert_rule_test: [
        alerts('CtpipeConntrackTableFilling', [[{ ...L, severity: 'warning' }, '80%'], [{ ...L, netns: 'ns2', severity: 'warning' }, '95%']]),
        alerts('CtpipeConntrackTableNearlyFull', [[{ ...L, netns: 'ns2', severity: 'critical' }, '95%']]),
        alerts('CtpipeConntrackDrops', [[{ ...L, netns: 'ns2', severity: 'critical' }, '5']], '83m'),
        alerts('CtpipeConntrackDrops', [], '90m'), // 5 minutes on, the increase is over
        alerts('CtpipeConntrackEarlyDrops', [[{ ...L, severity: 'warning' }, '7']]),
        alerts('CtpipeConntrackInvalidSpike', [], '83m'), // above its baseline since 82m: pending, not yet for 2 minutes
        alerts('CtpipeConntrackInvalidSpike', [[{ ...L, severity: 'warning' }, '8']], '85m'),
        alerts('CtpipeCollectorLosingEvents', [[{ instance: 'h1:9464', job: 'ctpipe', severity: 'critical' }, '42']]),
        alerts('CtpipeCollectorNoEvents', [[{ instance: 'h2:9464', job: 'ctpipe', severity: 'warning' }, '1']]),
        alerts('CtpipeCollectorNoEvents', [], '80m'),
      ],
    };
    const r = promtoolTestRules(RULES, [test]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('promtool test rules fails when an expected alert does not fire (the test can fail)', () => {
    const r = promtoolTestRules(RULES, [{
      interval: '1m',
      input_series: [
        { series: series('ctpipe_conntrack_entries', L), values: '700x20' },
        { series: series('ctpipe_conntrack_entries_limit', L), values: '1000x20' },
      ],
      alert_rule_test: [alerts('CtpipeConntrackTableFilling', [[{ ...L, severity: 'warning' }, '70%']], '15m')],
    }]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('CtpipeConntrackTableFilling');
  });
});

const cpu = (n: number, v: Partial<Record<(typeof STAT_FIELDS)[number], number>>): CpuStats => {
  const c = { cpu: n } as CpuStats;
  for (const f of STAT_FIELDS) c[f] = v[f] ?? 0;
  return c;
};

describe('ConntrackMetrics', () => {
  it('sums the CPUs into counters that start at the kernel\'s sum and grow across a u32 wrap', async () => {
    const reg = new Registry();
    const m = new ConntrackMetrics(reg);
    m.observe('host', { cpus: [cpu(0, { invalid: 4, found: 2 ** 32 - 3 }), cpu(1, { invalid: 6 })], entries: 12, max_entries: 262144, exp_create: 5, exp_delete: 3, exp_new: 1 });
    let s = parseMetrics(await reg.metrics());
    expect(value(s, 'ctpipe_conntrack_stat_invalid_total', { netns: 'host' })).toBe(10);
    expect(value(s, 'ctpipe_conntrack_stat_found_total', { netns: 'host' })).toBe(2 ** 32 - 3);
    expect(value(s, 'ctpipe_conntrack_stat_chaintoolong_total', { netns: 'host' })).toBe(0);
    expect(value(s, 'ctpipe_conntrack_entries', { netns: 'host' })).toBe(12);
    expect(value(s, 'ctpipe_conntrack_entries_limit', { netns: 'host' })).toBe(262144);
    expect(value(s, 'ctpipe_conntrack_expect_entries', { netns: 'host' })).toBe(2);
    // CPU 0's found wraps (2^32 - 3 -> 2: +5); the series never goes back
    m.observe('host', { cpus: [cpu(0, { invalid: 5, found: 2 }), cpu(1, { invalid: 6 })], entries: 3, max_entries: 262144, exp_create: 2 ** 32 + 1, exp_delete: 2 ** 32 - 1, exp_new: 1 });
    s = parseMetrics(await reg.metrics());
    expect(value(s, 'ctpipe_conntrack_stat_found_total', { netns: 'host' })).toBe(2 ** 32 + 2);
    expect(value(s, 'ctpipe_conntrack_stat_invalid_total', { netns: 'host' })).toBe(11);
    expect(value(s, 'ctpipe_conntrack_entries', { netns: 'host' })).toBe(3);
    expect(value(s, 'ctpipe_conntrack_expect_entries', { netns: 'host' })).toBe(2);
    expect(value(s, 'ctpipe_conntrack_stat_expect_create_total', { netns: 'host' })).toBe(2 ** 32 + 1);
  });

  it('with perCpu, one series per CPU; namespaces stay apart; events counted by type', async () => {
    const reg = new Registry();
    const m = new ConntrackMetrics(reg, true);
    m.observe('a', { cpus: [cpu(0, { drop: 1 }), cpu(1, { drop: 2 })] });
    m.observe('b', { cpus: [cpu(0, { drop: 7 })] });
    m.event('a', 'new');
    m.event('a', 'new');
    m.event('a', 'exp_destroy');
    const s = parseMetrics(await reg.metrics());
    expect(value(s, 'ctpipe_conntrack_stat_drop_total', { netns: 'a', cpu: '0' })).toBe(1);
    expect(value(s, 'ctpipe_conntrack_stat_drop_total', { netns: 'a', cpu: '1' })).toBe(2);
    expect(value(s, 'ctpipe_conntrack_stat_drop_total', { netns: 'b', cpu: '0' })).toBe(7);
    expect(value(s, 'ctpipe_conntrack_events_total', { netns: 'a', type: 'new' })).toBe(2);
    expect(value(s, 'ctpipe_conntrack_events_total', { netns: 'a', type: 'exp_destroy' })).toBe(1);
  });

  it('labels a namespace by its /run/netns name, its own as host', () => {
    expect(netnsLabel(undefined)).toBe('host');
    expect(netnsLabel('/run/netns/blue')).toBe('blue');
    expect(netnsLabel('/proc/42/ns/net')).toBe('/proc/42/ns/net');
  });
});
