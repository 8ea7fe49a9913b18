/** Fleet overview: every host at a glance, and the hosts that stand out by each measure. */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { bucketVariable, datasourceVariable, finish, newDashboard, queryVariable, stat, tablePanel, timeseries } from './panels.js';
import { BUCKET, listed, oneOf } from './selection.js';

export const FLEET_UID = 'ctpipe-fleet';
export const HOSTS_FILTER = oneOf('host', 'host');

/** The series a per-host chart draws at most: a fleet's thousand lines are unreadable and slow to send. */
export const TOP_HOSTS = 10;

/** Of the hosts selected, the TOP_HOSTS with the most `measure` over the range in `table` (all of them when fewer are selected). */
export const topHosts = (table: string, time: string, measure: string) =>
  `host IN (SELECT host FROM ${table} WHERE $__timeFilter(${time}) AND ${HOSTS_FILTER} GROUP BY host ORDER BY ${measure} DESC, host LIMIT ${TOP_HOSTS})`;

/**
 * The hosts of the range. A multi-value one lists them encoded (selection.ts `listed`); the Host
 * detail's single value is the name itself, as its links from other dashboards give it.
 */
export const hostVariable = (db: string, multi: boolean) => queryVariable('host', 'Host',
  multi ? `SELECT ${listed('host')} FROM (SELECT DISTINCT host FROM ${db}.host_stats WHERE $__timeFilter(ts)) ORDER BY text`
    : `SELECT DISTINCT host FROM ${db}.host_stats WHERE $__timeFilter(ts) ORDER BY host`,
  { multi, description: 'Hosts that sent conntrack statistics in the time range' });

export function fleetDashboard(db: string): dashboard.Dashboard {
  const seconds = 'greatest(1, dateDiff(\'second\', $__fromTime, $__toTime))';
  return finish(newDashboard(FLEET_UID, 'ctpipe / Fleet overview', 'Conntrack across the fleet: connections, INVALID packets, table fill and anomalies per host')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, true))
    .withVariable(bucketVariable())
    .withRow(new dashboard.RowBuilder('Fleet'))
    .withPanel(stat({ title: 'Hosts', description: 'Hosts that sent statistics in the time range', unit: units.Short, w: 4, h: 4,
      sql: `SELECT uniqExact(host) AS hosts FROM ${db}.host_stats WHERE $__timeFilter(ts) AND ${HOSTS_FILTER}` }))
    .withPanel(stat({ title: 'New connections/s', description: 'Connections started per second, averaged over the range (finished ones, from the per-minute rollup)', unit: units.OpsPerSecond, w: 5, h: 4,
      sql: `SELECT sum(flows) / ${seconds} AS new_per_s FROM ${db}.flows_state_1m WHERE $__timeFilter(minute) AND ${HOSTS_FILTER}` }))
    .withPanel(stat({ title: 'Open connections', description: 'Conntrack entries now: the latest count of each host (of each of its network namespaces), summed', unit: units.Short, w: 5, h: 4,
      sql: `SELECT sum(entries) AS open FROM (SELECT host, netns, argMax(entries, ts) AS entries FROM ${db}.host_stats WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} GROUP BY host, netns)` }))
    .withPanel(stat({ title: 'INVALID/s', description: 'Packets conntrack found INVALID per second, fleet total over the range', unit: units.PacketsPerSecond, w: 5, h: 4,
      steps: [[null, 'green'], [10, 'orange'], [100, 'red']],
      sql: `SELECT sum(invalid) / ${seconds} AS invalid_per_s FROM ${db}.host_stats WHERE $__timeFilter(ts) AND ${HOSTS_FILTER}` }))
    .withPanel(stat({ title: 'Active anomalies', description: 'Anomalies open now (no end yet) that started in the range', unit: units.Short, w: 5, h: 4,
      steps: [[null, 'green'], [1, 'red']],
      sql: `SELECT count() AS open FROM ${db}.anomalies FINAL WHERE $__timeFilter(started_at) AND ended_at IS NULL AND ${HOSTS_FILTER}` }))
    .withRow(new dashboard.RowBuilder('Per host'))
    .withPanel(timeseries({ title: 'New connections/s by host', description: `Connections started per second on each host, the ${TOP_HOSTS} busiest of those selected (per-minute rollup of finished connections: cheap over long ranges)`, unit: units.OpsPerSecond, w: 12, h: 8,
      sql: [`SELECT toStartOfInterval(minute, INTERVAL ${BUCKET} second) AS time, host, sum(flows) / ${BUCKET} AS new_per_s
             FROM ${db}.flows_state_1m WHERE $__timeFilter(minute) AND ${HOSTS_FILTER} AND ${topHosts(`${db}.flows_state_1m`, 'minute', 'sum(flows)')}
             GROUP BY time, host ORDER BY time`] }))
    .withPanel(timeseries({ title: 'INVALID/s by host', description: `Packets conntrack found INVALID per second on each host (summed over CPUs), the ${TOP_HOSTS} with the most of those selected`, unit: units.PacketsPerSecond, w: 12, h: 8,
      steps: [[null, 'green'], [100, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, host, sum(invalid) / $__interval_s AS invalid_per_s FROM ${db}.host_stats
             WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} AND ${topHosts(`${db}.host_stats`, 'ts', 'sum(invalid)')} GROUP BY time, host ORDER BY time`] }))
    .withPanel(timeseries({ title: 'Table fill by host', description: `Conntrack entries over nf_conntrack_max on each host, the ${TOP_HOSTS} fullest at their peak of those selected; table_pressure opens at 75% by default`, unit: units.PercentUnit, w: 12, h: 8,
      steps: [[null, 'green'], [0.75, 'orange'], [0.9, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, host, max(entries / max_entries) AS fill FROM ${db}.host_stats
             WHERE $__timeFilter(ts) AND max_entries > 0 AND ${HOSTS_FILTER} AND ${topHosts(`${db}.host_stats`, 'ts', 'max(entries / greatest(max_entries, 1))')}
             GROUP BY time, host ORDER BY time`] }))
    .withPanel(timeseries({ title: 'Open connections by host', description: `Conntrack entries on each host, the ${TOP_HOSTS} with the most at their peak of those selected`, unit: units.Short, w: 12, h: 8,
      sql: [`SELECT $__timeInterval(ts) AS time, host, max(entries) AS entries FROM ${db}.host_stats
             WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} AND ${topHosts(`${db}.host_stats`, 'ts', 'max(entries)')} GROUP BY time, host ORDER BY time`] }))
    .withPanel(tablePanel({ title: 'Top hosts', description: 'Each host over the range: new connections/s, INVALID/s, peak table fill, drops/s and open anomalies; sort by any column', unit: units.Short, w: 24, h: 9,
      links: [{ column: 'host', title: 'Host detail', url: '/d/ctpipe-host?var-host=${__value.raw:percentencode}&${__url_time_range}' }],
      sql: `SELECT s.host AS host, ifNull(f.new_per_s, 0) AS new_per_s, s.invalid_per_s, s.peak_fill, s.drops_per_s, ifNull(a.open, 0) AS open_anomalies
            FROM (SELECT host, sum(invalid) / ${seconds} AS invalid_per_s,
                    max(entries / greatest(max_entries, 1)) AS peak_fill, sum(early_drop + drop + insert_failed) / ${seconds} AS drops_per_s
                  FROM ${db}.host_stats WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} GROUP BY host) AS s
            LEFT JOIN (SELECT host, sum(flows) / ${seconds} AS new_per_s FROM ${db}.flows_state_1m WHERE $__timeFilter(minute) AND ${HOSTS_FILTER} GROUP BY host) AS f ON s.host = f.host
            LEFT JOIN (SELECT host, count() AS open FROM ${db}.anomalies FINAL WHERE $__timeFilter(started_at) AND ended_at IS NULL AND ${HOSTS_FILTER} GROUP BY host) AS a
            ON s.host = a.host ORDER BY new_per_s DESC LIMIT 50` }))
    .withPanel(tablePanel({ title: 'Active anomalies', description: 'Anomalies without an end, newest first', unit: units.Short, w: 24, h: 8,
      links: [{ column: 'host', title: 'Anomalies of this host', url: '/d/ctpipe-anomalies?var-host=${__value.raw:percentencode}&${__url_time_range}' }],
      sql: `SELECT host, kind, severity, started_at, observed, baseline FROM ${db}.anomalies FINAL
            WHERE $__timeFilter(started_at) AND ended_at IS NULL AND ${HOSTS_FILTER} ORDER BY started_at DESC LIMIT 100` })));
}
