/** Host detail: one host's table, rates, TCP states, handshakes, peers and helpers, with its anomalies as annotations. */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { hostVariable } from './fleet.js';
import { annotation, bucketVariable, datasourceVariable, finish, heatmap, newDashboard, queryVariable, tablePanel, timeseries } from './panels.js';
import { BUCKET, listed, oneOf, value } from './selection.js';

export const HOST_UID = 'ctpipe-host';
const HOST = `host = ${value('host')}`;
/** The host's network namespaces selected (host_stats and the anomalies from it have one each since version 11; '' is a host's only one). */
const NETNS = oneOf('netns', 'netns');

export function hostDashboard(db: string): dashboard.Dashboard {
  const rate = (column: string) => `sum(${column}) / $__interval_s AS ${column}_per_s`;
  return finish(newDashboard(HOST_UID, 'ctpipe / Host detail', 'One host\'s conntrack table, connection rates, TCP states, handshakes, peers and helpers')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, false))
    .withVariable(bucketVariable())
    .withVariable(queryVariable('netns', 'Network namespace', `SELECT ${listed('netns')} FROM (SELECT DISTINCT netns FROM ${db}.host_stats
        WHERE ${HOST} AND $__timeFilter(ts) LIMIT 1000) ORDER BY text`,
      { multi: true, description: 'The host\'s network namespaces with statistics in the time range (collectors with --netns all or containers; empty for a host\'s only one): the table and INVALID panels and the statistics anomalies' }))
    .annotation(annotation('Anomalies', `
      SELECT started_at AS time, ended_at AS timeEnd, concat(kind, ' (', severity, ')', if(netns = '', '', concat(' in ', netns))) AS title,
        concat(kind, ': observed ', toString(round(observed, 2)), ', baseline ', toString(round(baseline, 2))) AS text, [kind, severity] AS tags
      FROM ${db}.anomalies FINAL WHERE ${HOST} AND (netns = '' OR ${NETNS}) AND $__timeFilter(started_at) ORDER BY time`))
    .withRow(new dashboard.RowBuilder('Table and rates'))
    .withPanel(timeseries({ title: 'Table entries and maximum', description: 'Conntrack entries against nf_conntrack_max, per network namespace (each has its own table)', unit: units.Short, w: 12, h: 8,
      sql: [`SELECT $__timeInterval(ts) AS time, netns, max(entries) AS entries, max(max_entries) AS maximum FROM ${db}.host_stats
             WHERE ${HOST} AND ${NETNS} AND $__timeFilter(ts) GROUP BY time, netns ORDER BY time`] }))
    .withPanel(timeseries({ title: 'NEW and DESTROY per second', description: 'Connections that started and that ended per second (lifecycles by start and end time; an open connection shows from its first refresh row)', unit: units.OpsPerSecond, w: 12, h: 8,
      sql: [
        `SELECT $__timeInterval(first_seen) AS time, count() / $__interval_s AS new_per_s FROM ${db}.flows FINAL
         WHERE ${HOST} AND $__timeFilter(first_seen) GROUP BY time ORDER BY time`,
        `SELECT $__timeInterval(ended_at) AS time, count() / $__interval_s AS destroy_per_s FROM ${db}.flows FINAL
         WHERE ${HOST} AND $__timeFilter(ended_at) AND end_reason != 'open' GROUP BY time ORDER BY time`,
      ] }))
    .withPanel(timeseries({ title: 'INVALID and drops per second', description: 'INVALID packets, and the kernel dropping for lack of room (early_drop, drop, insert_failed)', unit: units.PacketsPerSecond, w: 12, h: 8,
      steps: [[null, 'green'], [100, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, ${rate('invalid')}, ${rate('early_drop')}, ${rate('drop')}, ${rate('insert_failed')}
             FROM ${db}.host_stats WHERE ${HOST} AND ${NETNS} AND $__timeFilter(ts) GROUP BY time ORDER BY time`] }))
    .withPanel(timeseries({ title: 'TCP connections by final state', description: 'TCP connections that started in each bucket, by the last state conntrack reported', unit: units.Short, w: 12, h: 8, stack: true,
      sql: [`SELECT $__timeInterval(first_seen) AS time, final_tcp_state AS state, count() AS connections FROM ${db}.flows FINAL
             WHERE ${HOST} AND $__timeFilter(first_seen) AND proto = 6 GROUP BY time, state ORDER BY time`] }))
    .withRow(new dashboard.RowBuilder('Handshakes'))
    .withPanel(timeseries({ title: 'Handshake time percentiles', description: 'SYN to ESTABLISHED, from the per-minute t-digests in flows_1m (cheap over long ranges)', unit: units.Milliseconds, w: 12, h: 8,
      sql: [`SELECT time, q[1] AS p50, q[2] AS p90, q[3] AS p99 FROM (
               SELECT toStartOfInterval(minute, INTERVAL ${BUCKET} second) AS time, quantilesTDigestMerge(0.5, 0.9, 0.99)(handshake_ms_digest) AS q
               FROM ${db}.flows_1m WHERE ${HOST} AND $__timeFilter(minute) AND proto = 6 GROUP BY time) WHERE q[1] > 0 ORDER BY time`] }))
    .withPanel(heatmap({ title: 'Handshake time', description: 'Each TCP handshake (SYN to ESTABLISHED) of the range, bucketed by Grafana', unit: units.Milliseconds, w: 12, h: 8,
      sql: `SELECT first_seen AS time, handshake_ms FROM ${db}.flows FINAL
            WHERE ${HOST} AND $__timeFilter(first_seen) AND handshake_ms IS NOT NULL ORDER BY time LIMIT 100000` }))
    .withRow(new dashboard.RowBuilder('Who and what'))
    .withPanel(tablePanel({ title: 'Top destination ports', description: 'Connections and bytes by destination port (flows_1m)', unit: units.Short, w: 8, h: 9,
      sql: `SELECT orig_dport AS port, sum(flows) AS connections, sum(orig_bytes + reply_bytes) AS bytes FROM ${db}.flows_1m
            WHERE ${HOST} AND $__timeFilter(minute) GROUP BY port ORDER BY connections DESC LIMIT 15` }))
    .withPanel(tablePanel({ title: 'Top peers', description: 'Destinations by connections and bytes', unit: units.Short, w: 8, h: 9,
      // grouped by the address itself: its text form is made for the 15 rows shown, not for every flow
      sql: `SELECT replaceRegexpOne(toString(orig_dst), '^::ffff:', '') AS peer, count() AS connections, sum(orig_bytes + reply_bytes) AS bytes
            FROM ${db}.flows FINAL WHERE ${HOST} AND $__timeFilter(first_seen) GROUP BY orig_dst ORDER BY connections DESC LIMIT 15` }))
    .withPanel(timeseries({ title: 'Related flows by helper', description: 'RELATED connections (FTP data, SIP media, ...) by the helper of their master connection', unit: units.Short, w: 8, h: 9, stack: true,
      sql: [`SELECT $__timeInterval(c.first_seen) AS time, if(m.helper = '', 'unknown master', m.helper) AS helper, count() AS related
             FROM ${db}.flows AS c FINAL
             LEFT JOIN (SELECT flow_id, helper FROM ${db}.flows FINAL WHERE ${HOST} AND helper != '' AND first_seen <= $__toTime) AS m ON c.master_flow_id = m.flow_id
             WHERE c.host = ${value('host')} AND $__timeFilter(c.first_seen) AND c.related GROUP BY time, helper ORDER BY time`] })));
}
