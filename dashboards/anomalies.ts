/** Anomalies: when each kind was open, and every anomaly with its evidence. */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { hostVariable, HOSTS_FILTER } from './fleet.js';
import { datasourceVariable, finish, newDashboard, queryVariable, stat, tablePanel, timeseries } from './panels.js';
import { listed, oneOf } from './selection.js';

export const ANOMALIES_UID = 'ctpipe-anomalies';

const FILTERS = `${HOSTS_FILTER} AND ${oneOf('kind', 'kind')}`;
/** Anomalies that overlap the range (open ones run to its end). */
const OVERLAPS = 'started_at <= $__toTime AND ifNull(ended_at, $__toTime) >= $__fromTime';

export function anomaliesDashboard(db: string): dashboard.Dashboard {
  return finish(newDashboard(ANOMALIES_UID, 'ctpipe / Anomalies', 'Every anomaly the processors found (docs/DETECTION.md): when, where, how bad, and the evidence')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, true))
    .withVariable(queryVariable('kind', 'Kind', `SELECT ${listed('kind')} FROM (SELECT DISTINCT kind FROM ${db}.anomalies WHERE $__timeFilter(started_at)) ORDER BY text`,
      { multi: true, description: 'Anomaly kinds seen in the time range' }))
    .withRow(new dashboard.RowBuilder('Timeline'))
    .withPanel(stat({ title: 'Open now', description: 'Anomalies without an end', unit: units.Short, w: 6, h: 4, steps: [[null, 'green'], [1, 'red']],
      sql: `SELECT count() AS open FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ended_at IS NULL AND ${FILTERS}` }))
    .withPanel(stat({ title: 'Critical in range', description: 'Critical anomalies that overlap the time range', unit: units.Short, w: 6, h: 4, steps: [[null, 'green'], [1, 'red']],
      sql: `SELECT count() AS critical FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND severity = 'critical' AND ${FILTERS}` }))
    .withPanel(stat({ title: 'Hosts affected', description: 'Hosts with an anomaly that overlaps the range', unit: units.Short, w: 6, h: 4, steps: [[null, 'green'], [1, 'orange']],
      sql: `SELECT uniqExact(host) AS hosts FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ${FILTERS}` }))
    .withPanel(stat({ title: 'Anomalies in range', description: 'Anomalies that overlap the range, any kind and severity', unit: units.Short, w: 6, h: 4,
      sql: `SELECT count() AS anomalies FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ${FILTERS}` }))
    .withPanel(timeseries({ title: 'Open anomalies by kind', description: 'How many anomalies of each kind were open in each bucket', unit: units.Short, w: 24, h: 8, stack: true,
      sql: [`SELECT toDateTime(t) AS time, kind, count() AS open FROM (
               SELECT kind, arrayJoin(range(intDiv(toUInt32(toDateTime(started_at)), $__interval_s) * $__interval_s,
                 toUInt32(toDateTime(ifNull(ended_at, $__toTime))) + 1, $__interval_s)) AS t
               FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ${FILTERS})
             WHERE t >= toUInt32($__fromTime) - $__interval_s AND t <= toUInt32($__toTime) GROUP BY time, kind ORDER BY time`] }))
    .withRow(new dashboard.RowBuilder('Every anomaly'))
    .withPanel(tablePanel({ title: 'Anomalies', description: 'Newest first: host, kind, severity, start and end, the observed value against its baseline, and the evidence (details, flow ids)', unit: units.Short, w: 24, h: 14,
      links: [
        { column: 'host', title: 'Host detail', url: '/d/ctpipe-host?var-host=${__value.raw:percentencode}&${__url_time_range}' },
        { column: 'flow_ids', title: 'Flows', url: '/d/ctpipe-flows?var-flow=${__value.raw:percentencode}&${__url_time_range}' },
      ],
      sql: `SELECT started_at, ended_at, host, kind, severity, round(observed, 3) AS observed, round(baseline, 3) AS baseline, round(score, 2) AS score,
              details, arrayStringConcat(flow_ids, ' ') AS flow_ids
            FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ${FILTERS} ORDER BY started_at DESC LIMIT 500` }))
    .withPanel(tablePanel({ title: 'By kind', description: 'Anomalies per kind in the range, with the hosts and the worst severity', unit: units.Short, w: 24, h: 8,
      sql: `SELECT kind, count() AS anomalies, uniqExact(host) AS hosts, max(severity = 'critical') AS any_critical, max(started_at) AS latest
            FROM ${db}.anomalies FINAL WHERE ${OVERLAPS} AND ${FILTERS} GROUP BY kind ORDER BY anomalies DESC` })));
}
