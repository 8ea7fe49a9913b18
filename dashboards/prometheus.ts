/**
 * Prometheus alert rules on the collector's /metrics (collector/conntrack-metrics.ts,
 * collector/metrics.ts), written to dashboards/prometheus/ by `ctpipe dashboards`. A test keeps the
 * committed file what this code makes, `promtool check rules` accepts it, and `promtool test rules`
 * fires each rule on series scraped from a real collector in the lab
 * (test/integration/conntrack-metrics.test.ts) and on synthetic ones (test/unit/prometheus-rules.test.ts).
 *
 * Every expression sums `without (cpu)`, so the rules hold with collect.metrics_per_cpu on or off,
 * and keep `instance` and `netns`: one alert per watched namespace.
 */
import { stringify } from 'yaml';

export interface PromRule {
  alert: string;
  expr: string;
  /** How long the condition holds before the alert fires (none: at once). */
  for?: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; description: string };
}

const sum = (m: string) => `sum without (cpu) (${m})`;
const fill = 'ctpipe_conntrack_entries / ctpipe_conntrack_entries_limit';

/** INVALID rate over 5m against the previous hour's (its own baseline), and at least 1/s so an idle host's few stray packets do not fire. */
export const INVALID_SPIKE_FACTOR = 4;

export function prometheusRules(): { groups: { name: string; rules: PromRule[] }[] } {
  const rules: PromRule[] = [
    {
      alert: 'CtpipeConntrackTableFilling',
      expr: `${fill} > 0.75`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Conntrack table over 75% full on {{ $labels.instance }} ({{ $labels.netns }})',
        description: 'The table holds {{ $value | humanizePercentage }} of nf_conntrack_max. At 100% new connections are dropped: raise nf_conntrack_max, shorten timeouts, or find the flood (ctpipe top).',
      },
    },
    {
      alert: 'CtpipeConntrackTableNearlyFull',
      expr: `${fill} > 0.9`,
      for: '1m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Conntrack table over 90% full on {{ $labels.instance }} ({{ $labels.netns }})',
        description: 'The table holds {{ $value | humanizePercentage }} of nf_conntrack_max; new connections will soon be dropped.',
      },
    },
    {
      alert: 'CtpipeConntrackDrops',
      expr: `${sum('increase(ctpipe_conntrack_stat_drop_total[5m])')} + ${sum('increase(ctpipe_conntrack_stat_insert_failed_total[5m])')} > 0`,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Conntrack dropped packets on {{ $labels.instance }} ({{ $labels.netns }})',
        description: '{{ $value | humanize }} packets in 5 minutes found no room in the table (drop) or could not be inserted (insert_failed): connections are failing.',
      },
    },
    {
      alert: 'CtpipeConntrackEarlyDrops',
      expr: `${sum('increase(ctpipe_conntrack_stat_early_drop_total[5m])')} > 0`,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Conntrack evicted entries to make room on {{ $labels.instance }} ({{ $labels.netns }})',
        description: '{{ $value | humanize }} entries were evicted early in 5 minutes: the table is full and unassured connections are being forgotten.',
      },
    },
    {
      alert: 'CtpipeConntrackInvalidSpike',
      expr: `${sum('rate(ctpipe_conntrack_stat_invalid_total[5m])')} > ${INVALID_SPIKE_FACTOR} * ${sum('rate(ctpipe_conntrack_stat_invalid_total[1h] offset 5m)')}` +
        ` and ${sum('rate(ctpipe_conntrack_stat_invalid_total[5m])')} > 1`,
      for: '2m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'INVALID packets {{ $value | humanize }}/s on {{ $labels.instance }} ({{ $labels.netns }}), over ' + `${INVALID_SPIKE_FACTOR}` + ' times the previous hour',
        description: 'Packets conntrack cannot track (bad flags, out-of-window, broken checksums) rose against their own recent baseline: a scan, an attack or asymmetric routing. The processor\'s invalid_spike anomalies name the sources when NFLOG sampling is on.',
      },
    },
    {
      alert: 'CtpipeCollectorLosingEvents',
      expr: `sum without (socket) (increase(ctpipe_collector_netlink_drops_total[5m])) + sum without (socket) (increase(ctpipe_collector_enobufs_total[5m])) > 0`,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'The ctpipe collector on {{ $labels.instance }} lost conntrack events',
        description: 'The kernel dropped {{ $value | humanize }} events (socket drops plus ENOBUFS) in 5 minutes; the collector resyncs by dumping the table, but lifecycles in between are incomplete. Raise collect.rcvbuf_max, give the readers CPU (collect.processing_nice).',
      },
    },
    {
      alert: 'CtpipeCollectorNoEvents',
      expr: 'ctpipe_collector_conntrack_quiet == 1',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'No conntrack events reach the collector on {{ $labels.instance }}',
        description: 'No event for collect.quiet_warning after events came before: the rule that made conntrack track the namespace may be gone (firewall reload), or the host is idle.',
      },
    },
  ];
  return { groups: [{ name: 'ctpipe-conntrack', rules }] };
}

const HEADER = '# Generated by `ctpipe dashboards` (dashboards/prometheus.ts): edit the code, not this file.\n';

/** Relative path (under dashboards/prometheus/) -> content. */
export function prometheusGenerated(): Map<string, string> {
  return new Map([['ctpipe-conntrack.rules.yml', HEADER + stringify(prometheusRules(), { lineWidth: 0 })]]);
}
