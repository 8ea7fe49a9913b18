/** Flow explorer: the lifecycles themselves, filtered, with links from a master connection to its related flows. */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { hostVariable, HOSTS_FILTER } from './fleet.js';
import { bucketVariable, datasourceVariable, finish, newDashboard, queryVariable, tablePanel, textVariable, timeseries } from './panels.js';
import { BUCKET, listed, oneOf, oneOfNumbers, value } from './selection.js';

export const FLOWS_UID = 'ctpipe-flows';

const protoName = (p: string) => `multiIf(${p} = 6, 'tcp', ${p} = 17, 'udp', ${p} = 1, 'icmp', ${p} = 58, 'icmpv6', ${p} = 132, 'sctp', toString(${p}))`;

export const protoVariable = (db: string) => queryVariable('proto', 'Protocol',
  // named after DISTINCT: naming every row of the range cost 1 s at fleet scale
  `SELECT value, ${protoName('value')} AS text FROM (SELECT DISTINCT proto AS value FROM ${db}.flows_state_1m WHERE $__timeFilter(minute)) ORDER BY value`,
  { multi: true, description: 'IP protocols seen in the time range (value: the protocol number)' });

const PROTOS = oneOfNumbers('proto', 'proto');
const STATES = oneOf('conn_state', 'conn_state');
const ADDR = value('address');
/** The network namespaces selected (`--netns all|containers` collectors; '' is a host's only one). */
const NETNS = oneOf('netns', 'netns');
/** True while some namespaces are selected rather than All ($__conditionalAll gives 1=1 for All). */
const NETNS_PICKED = 'NOT ($__conditionalAll(0, $netns))';
const FLOW = value('flow');

/** The address as either end, on the IPv6 columns: their bloom filter skips granules (the text aliases cannot). */
const ADDRESS = `(${ADDR} = '' OR orig_src = toIPv6OrNull(${ADDR}) OR orig_dst = toIPv6OrNull(${ADDR}))`;

/**
 * The newest 1,000 lifecycles start at or after the latest minute from which the rollup counts
 * 1,000 finished ones (each has one final row); 1970 when it counts fewer. Only whole minutes of
 * the range count, so the bound is never too late. Without an address filter only: the rollup has
 * no addresses.
 */
const newestMinute = (db: string) => `(SELECT max(minute) FROM (
    SELECT minute, sum(sum(flows)) OVER (ORDER BY minute DESC) AS newer FROM ${db}.flows_state_1m
    WHERE $__timeFilter(minute) AND minute + 60 <= $__toTime AND ${HOSTS_FILTER} AND ${PROTOS} AND ${STATES} GROUP BY minute) WHERE newer >= 1000)`;

/**
 * The newest row of each lifecycle passing `prewhere` and `where`, which may test only what a
 * lifecycle's rows share (host, flow ids, first_seen, protocol, addresses): FINAL's answer without
 * FINAL, which merges every part's rows of the range in key order, even with a skip index (1.3 to
 * 3 s at fleet scale against 0.3 s).
 */
const newestRows = (db: string, prewhere: string, where: string) => `
  SELECT flow_id, host, netns, first_seen, ended_at, proto, orig_src_text, orig_sport, orig_dst_text, orig_dport, final_tcp_state, conn_state,
    duration_ms, orig_bytes, reply_bytes, helper, related, master_flow_id
  FROM ${db}.flows PREWHERE ${prewhere} WHERE ${where} ORDER BY version DESC LIMIT 1 BY host, flow_id`;

const COLUMNS = `flow_id, host, netns, first_seen, ended_at, ${protoName('proto')} AS protocol, orig_src_text AS src, orig_sport AS sport,
  orig_dst_text AS dst, orig_dport AS dport, final_tcp_state AS tcp_state, conn_state, round(duration_ms / 1000, 3) AS duration_s,
  orig_bytes + reply_bytes AS bytes, helper, related, master_flow_id`;

export function flowsDashboard(db: string): dashboard.Dashboard {
  const toFlow = '/d/ctpipe-flows?var-flow=${__value.raw:percentencode}&${__url_time_range}&${host:queryparam}';
  return finish(newDashboard(FLOWS_UID, 'ctpipe / Flow explorer', 'Connection lifecycles: filter by host, network namespace, protocol, conn_state and address; follow a master connection to its related flows')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, true))
    .withVariable(protoVariable(db))
    .withVariable(queryVariable('conn_state', 'conn_state', `SELECT ${listed('conn_state')} FROM (SELECT DISTINCT conn_state FROM ${db}.flows_state_1m WHERE $__timeFilter(minute)) ORDER BY text`,
      { multi: true, description: 'Zeek-style connection summaries seen in the time range (docs/SCHEMA.md)' }))
    .withVariable(bucketVariable())
    .withVariable(queryVariable('netns', 'Network namespace', `SELECT ${listed('netns')} FROM (SELECT DISTINCT netns FROM ${db}.flows
        WHERE $__timeFilter(first_seen) AND ${HOSTS_FILTER} LIMIT 1000) ORDER BY text`,
      { multi: true, description: 'Network namespaces seen in the time range: a name under /run/netns or inode:N (collectors with --netns all or containers; empty for a host\'s only one)' }))
    .withVariable(textVariable('address', 'Address', 'An IPv4 or IPv6 address, as either end of the original direction'))
    .withVariable(textVariable('flow', 'Flow id', 'A flow id: the flow and the flows related to it'))
    .withRow(new dashboard.RowBuilder('Lifecycles'))
    .withPanel(timeseries({ title: 'Connections by conn_state', description: 'Finished connections per bucket by conn_state, from the per-minute rollup (fast over long ranges)', unit: units.Short, w: 24, h: 7, stack: true,
      sql: [`SELECT toStartOfInterval(minute, INTERVAL ${BUCKET} second) AS time, conn_state, sum(flows) AS connections
             FROM ${db}.flows_state_1m WHERE $__timeFilter(minute) AND ${HOSTS_FILTER} AND ${PROTOS}
             GROUP BY time, conn_state ORDER BY time`] }))
    .withPanel(tablePanel({ title: 'Connections', description: 'The newest 1,000 lifecycles matching the filters; a flow id opens it with its related flows', unit: units.Short, w: 24, h: 12,
      links: [{ column: 'flow_id', title: 'This flow and its related flows', url: toFlow }, { column: 'master_flow_id', title: 'The master connection', url: toFlow }],
      // the rollup has no namespaces: with some picked, the newest-minute bound does not apply
      sql: `SELECT ${COLUMNS} FROM (${newestRows(db, `$__timeFilter(first_seen) AND (${ADDR} != '' OR ${NETNS_PICKED} OR first_seen >= ${newestMinute(db)})`,
        `${HOSTS_FILTER} AND ${NETNS} AND ${PROTOS} AND ${ADDRESS}`)})
            WHERE ${STATES} ORDER BY first_seen DESC LIMIT 1000` }))
    .withPanel(tablePanel({ title: 'Selected flow and its related flows', description: 'The flow named in the Flow id box, its master, and every flow related to it', unit: units.Short, w: 24, h: 8,
      links: [{ column: 'flow_id', title: 'Open this flow', url: toFlow }],
      sql: `SELECT ${COLUMNS} FROM (${newestRows(db, '$__timeFilter(first_seen)', `${FLOW} != '' AND (flow_id = ${FLOW}
              OR master_flow_id = ${FLOW} OR flow_id IN (SELECT master_flow_id FROM ${db}.flows WHERE flow_id = ${FLOW}))`)})
            ORDER BY first_seen LIMIT 1000` })));
}
