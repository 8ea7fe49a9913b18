/**
 * Grafana alert rules in the file-provisioning format (grafana/grafana
 * pkg/services/provisioning/alerting/rules_types.go: apiVersion 1, groups of rules), written as
 * typed objects: the SDK's RuleGroupBuilder emits the HTTP API's shape instead (grafana.md §1.5).
 * Each rule is query A on ClickHouse (a table: string columns become labels, one number) ->
 * B reduce(last) -> C threshold. Alert SQL gets no dashboard variables and no $__conditionalAll.
 */
import { ANOMALIES_UID } from './anomalies.js';
import { FLEET_UID } from './fleet.js';
import { PIPELINE_UID } from './pipeline.js';
import { DS_UID, Format, PLUGIN } from './query.js';

export const RULE_FOLDER = 'ctpipe';
export const RELATED_KINDS = ['related_third_host', 'related_privileged_port', 'related_orphan', 'expectation_flood',
  'expectation_unused_burst', 'helper_unexpected_port', 'nat_slipstreaming'];

export interface AlertQuery {
  refId: string;
  relativeTimeRange?: { from: number; to: number };
  datasourceUid: string;
  model: Record<string, unknown>;
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  noDataState: 'NoData' | 'Alerting' | 'OK' | 'KeepLast';
  execErrState: 'Error' | 'Alerting' | 'OK' | 'KeepLast';
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  dashboardUid: string;
  panelId: number;
}

export interface Threshold {
  type: 'gt' | 'lt';
  value: number;
}

interface RuleSpec {
  uid: string;
  title: string;
  /** ClickHouse SQL returning one row per labelled series: string columns and one number. */
  sql: string;
  /** Seconds of history the query reads. */
  lookbackS: number;
  threshold: Threshold;
  for: string;
  severity: 'warning' | 'critical';
  summary: string;
  description: string;
  dashboardUid: string;
  panelId: number;
}

function rule(s: RuleSpec): AlertRule {
  return {
    uid: s.uid, title: s.title, condition: 'C', noDataState: 'OK', execErrState: 'Error', for: s.for,
    labels: { severity: s.severity, team: 'netops', source: 'ctpipe' },
    annotations: { summary: s.summary, description: `${s.description} (ctpipe docs/DETECTION.md)` },
    dashboardUid: s.dashboardUid, panelId: s.panelId,
    data: [
      {
        refId: 'A', relativeTimeRange: { from: s.lookbackS, to: 0 }, datasourceUid: DS_UID,
        model: { refId: 'A', datasource: { type: PLUGIN, uid: DS_UID }, editorType: 'sql', format: Format.Table, queryType: 'table',
          intervalMs: 60_000, maxDataPoints: 43_200, rawSql: s.sql.replace(/\s+/g, ' ').trim() },
      },
      { refId: 'B', datasourceUid: '__expr__', model: { refId: 'B', type: 'reduce', expression: 'A', reducer: 'last', settings: { mode: 'dropNN' } } },
      { refId: 'C', datasourceUid: '__expr__', model: { refId: 'C', type: 'threshold', expression: 'B', conditions: [{ evaluator: { type: s.threshold.type, params: [s.threshold.value] } }] } },
    ],
  };
}

export function alertRules(db: string): { apiVersion: 1; groups: { orgId: number; name: string; folder: string; interval: string; rules: AlertRule[] }[] } {
  // open at the evaluation time (the range's end): in real time, ended_at IS NULL
  const openOf = (kinds: string[]) => `SELECT host, count() AS open FROM ${db}.anomalies FINAL
    WHERE $__timeFilter(started_at) AND (ended_at IS NULL OR ended_at > $__toTime) AND kind IN (${kinds.map((k) => `'${k}'`).join(', ')}) GROUP BY host`;
  return {
    apiVersion: 1,
    groups: [{
      orgId: 1, name: 'ctpipe', folder: RULE_FOLDER, interval: '1m',
      rules: [
        rule({ uid: 'ctpipe-invalid-spike', title: 'Conntrack INVALID spike', sql: openOf(['invalid_spike']), lookbackS: 86_400,
          threshold: { type: 'gt', value: 0 }, for: '0s', severity: 'warning', dashboardUid: ANOMALIES_UID, panelId: 8,
          summary: 'INVALID spike open on {{ $labels.host }}',
          description: 'An invalid_spike anomaly is open on {{ $labels.host }}: the ctpipe Anomalies dashboard has its rate, baseline and the sampled packets.' }),
        rule({ uid: 'ctpipe-table-full', title: 'Conntrack table above 90%', lookbackS: 300,
          // each network namespace has its own table: an alert each (netns '' for a host's only one)
          sql: `SELECT host, netns, argMax(entries / max_entries, ts) AS fill FROM ${db}.host_stats WHERE $__timeFilter(ts) AND max_entries > 0 GROUP BY host, netns`,
          threshold: { type: 'gt', value: 0.9 }, for: '2m', severity: 'critical', dashboardUid: FLEET_UID, panelId: 10,
          summary: 'Conntrack table of {{ $labels.host }} {{ $labels.netns }} is {{ humanizePercentage $values.B.Value }} full',
          description: 'New connections are early-dropped or refused once the table is full. Raise nf_conntrack_max or find what fills it (ctpipe Host detail).' }),
        rule({ uid: 'ctpipe-related-flow', title: 'Conntrack helper (related-flow) anomaly', sql: openOf(RELATED_KINDS), lookbackS: 86_400,
          threshold: { type: 'gt', value: 0 }, for: '0s', severity: 'critical', dashboardUid: ANOMALIES_UID, panelId: 8,
          summary: 'Related-flow anomaly open on {{ $labels.host }}',
          description: 'A conntrack helper created an expectation or RELATED flow that looks wrong (third host, privileged port, orphan, flood, NAT Slipstreaming shape): see its evidence on the Anomalies dashboard.' }),
        rule({ uid: 'ctpipe-collector-silent', title: 'ctpipe collector silent', lookbackS: 3600,
          sql: `SELECT host, dateDiff('second', max(ts), $__toTime) AS silent_s FROM ${db}.host_stats WHERE $__timeFilter(ts) GROUP BY host`,
          threshold: { type: 'gt', value: 120 }, for: '0s', severity: 'critical', dashboardUid: PIPELINE_UID, panelId: 4,
          summary: 'No statistics from {{ $labels.host }} for {{ $values.B.Value }} s',
          description: 'The collector on {{ $labels.host }} sent nothing for over two minutes (it sends statistics every interval): the collector, its Kafka link or the processors are down.' }),
        rule({ uid: 'ctpipe-collector-losing', title: 'ctpipe losing events', lookbackS: 600,
          sql: `SELECT host, sum(count) AS lost FROM ${db}.pipeline_health WHERE $__timeFilter(ts) AND kind IN ('loss', 'gap') GROUP BY host`,
          threshold: { type: 'gt', value: 0 }, for: '0s', severity: 'warning', dashboardUid: PIPELINE_UID, panelId: 3,
          summary: '{{ $values.B.Value }} conntrack records lost or missing for {{ $labels.host }} in 10 minutes',
          description: 'The collector reported kernel overruns or rejected records, or sequence numbers never reached a processor (Pipeline health: losses and gaps).' }),
        rule({ uid: 'ctpipe-processor-lag', title: 'ctpipe processor lag growing', lookbackS: 900,
          sql: `SELECT processor, argMax(lag, ts) - argMin(lag, ts) AS growth FROM ${db}.processor_stats WHERE $__timeFilter(ts) GROUP BY processor`,
          threshold: { type: 'gt', value: 100 }, for: '5m', severity: 'warning', dashboardUid: PIPELINE_UID, panelId: 6,
          summary: 'Kafka lag of {{ $labels.processor }} grew by {{ $values.B.Value }} messages (batches of up to 1,000 events) in 15 minutes',
          description: 'The processors fall behind the collectors: add processors (up to the topic\'s partitions) or look at ClickHouse insert latency (Pipeline health).' }),
      ],
    }],
  };
}
