/**
 * Pipeline health: is the data complete and fresh? Collector events and losses per host (host_stats,
 * pipeline_health), and the processors' lag, throughput, inserts and dead letters (processor_stats,
 * dead_letters).
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { hostVariable, HOSTS_FILTER, TOP_HOSTS, topHosts } from './fleet.js';
import { datasourceVariable, finish, newDashboard, stat, tablePanel, timeseries } from './panels.js';

export const PIPELINE_UID = 'ctpipe-pipeline';

export function pipelineDashboard(db: string): dashboard.Dashboard {
  const perProcessor = (expr: string, alias: string) => `
    SELECT $__timeInterval(ts) AS time, processor, ${expr} AS ${alias} FROM ${db}.processor_stats
    WHERE $__timeFilter(ts) GROUP BY time, processor ORDER BY time`;
  return finish(newDashboard(PIPELINE_UID, 'ctpipe / Pipeline health', 'Collectors, Kafka and processors: events, losses, gaps, lag, inserts and dead letters')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, true))
    .withRow(new dashboard.RowBuilder('Collectors'))
    .withPanel(timeseries({ title: 'Collector events/s by host', description: `Conntrack events each collector decoded per second, the ${TOP_HOSTS} busiest of the hosts selected`, unit: units.OpsPerSecond, w: 12, h: 8,
      sql: [`SELECT $__timeInterval(ts) AS time, host, sum(collector_events) / $__interval_s AS events_per_s FROM ${db}.host_stats
             WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} AND ${topHosts(`${db}.host_stats`, 'ts', 'sum(collector_events)')} GROUP BY time, host ORDER BY time`] }))
    .withPanel(timeseries({ title: 'Losses and gaps', description: 'Events the collectors reported lost (kernel overruns, rejected records) and sequence numbers that never reached a processor', unit: units.Short, w: 12, h: 8,
      steps: [[null, 'green'], [1, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, kind, sum(count) AS records FROM ${db}.pipeline_health
             WHERE $__timeFilter(ts) AND kind IN ('loss', 'gap') AND ${HOSTS_FILTER} GROUP BY time, kind ORDER BY time`] }))
    .withPanel(tablePanel({ title: 'Data completeness by host', description: 'Per host: events decoded, records lost or missing, and the share that arrived (1 = complete)', unit: units.Short, w: 24, h: 8,
      steps: [[null, 'red'], [0.999, 'green']],
      sql: `SELECT s.host AS host, s.events AS events, ifNull(h.lost, 0) AS lost, ifNull(h.gaps, 0) AS gaps, s.last_stats AS last_stats,
              s.events / greatest(1, s.events + ifNull(h.lost, 0) + ifNull(h.gaps, 0)) AS complete
            FROM (SELECT host, sum(collector_events) AS events, max(ts) AS last_stats FROM ${db}.host_stats WHERE $__timeFilter(ts) AND ${HOSTS_FILTER} GROUP BY host) AS s
            LEFT JOIN (SELECT host, sumIf(count, kind = 'loss') AS lost, sumIf(count, kind = 'gap') AS gaps FROM ${db}.pipeline_health
                       WHERE $__timeFilter(ts) GROUP BY host) AS h ON s.host = h.host
            ORDER BY complete, host` }))
    .withRow(new dashboard.RowBuilder('Processors'))
    .withPanel(timeseries({ title: 'Kafka lag', description: 'Kafka messages (batches of up to 1,000 events) behind the end of the partitions each processor holds; for ctpipe run, records waiting in memory', unit: units.Short, w: 12, h: 8,
      steps: [[null, 'green'], [100, 'red']], sql: [perProcessor('max(lag)', 'lag')] }))
    .withPanel(timeseries({ title: 'Processor throughput', description: 'Collector records processed per second', unit: units.OpsPerSecond, w: 12, h: 8,
      sql: [perProcessor('sum(records) / $__interval_s', 'records_per_s')] }))
    .withPanel(timeseries({ title: 'Insert latency', description: 'Mean and worst ClickHouse insert time of each processor', unit: units.Seconds, w: 12, h: 8,
      steps: [[null, 'green'], [5, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, processor, sum(insert_seconds) / greatest(1, sum(inserts)) AS mean_s, max(insert_max_seconds) AS max_s
             FROM ${db}.processor_stats WHERE $__timeFilter(ts) GROUP BY time, processor ORDER BY time`] }))
    .withPanel(timeseries({ title: 'Insert errors and dead letters', description: 'Failed inserts (each retried) and Kafka records that could not be decoded', unit: units.Short, w: 12, h: 8,
      steps: [[null, 'green'], [1, 'red']],
      sql: [`SELECT $__timeInterval(ts) AS time, sum(insert_errors) AS insert_errors, sum(dead_letters) AS dead_letters
             FROM ${db}.processor_stats WHERE $__timeFilter(ts) GROUP BY time ORDER BY time`] }))
    .withPanel(stat({ title: 'Dead letters in range', description: 'Kafka records stored in dead_letters in the range', unit: units.Short, w: 6, h: 4,
      steps: [[null, 'green'], [1, 'red']], sql: `SELECT count() AS dead_letters FROM ${db}.dead_letters WHERE $__timeFilter(ts)` }))
    .withPanel(tablePanel({ title: 'Latest dead letters', description: 'Where each came from and why it was rejected', unit: units.Short, w: 18, h: 8,
      sql: `SELECT ts, topic, partition, offset, reason FROM ${db}.dead_letters WHERE $__timeFilter(ts) ORDER BY ts DESC LIMIT 100` })));
}
