/**
 * Schema version 11: the network namespace on host_stats and anomalies. With `collect.netns` all or
 * containers each namespace has its own conntrack table and counters, so a statistics row, and an
 * anomaly from statistics (table pressure, INVALID spikes), belongs to (host, netns) as a flow does
 * (version 9). '' for a collector of one namespace and for the rows stored before. anomalies is a
 * ReplacingMergeTree keyed by (host, kind, started_at): two namespaces' anomalies of one kind that
 * started at the same instant would replace each other, so netns joins the end of its sorting key
 * (ClickHouse allows that only for a column added by the same ALTER, and one without a DEFAULT
 * expression: the type's default, '', fills the rows stored before all the same).
 */
import type { Migration, SchemaContext } from './schema.js';

const onCluster = (c: SchemaContext) => (c.cluster ? ` ON CLUSTER ${c.cluster}` : '');
const COLUMN = "ADD COLUMN IF NOT EXISTS netns LowCardinality(String) DEFAULT '' AFTER host";
const KEY_COLUMN = 'ADD COLUMN IF NOT EXISTS netns LowCardinality(String) AFTER host';

export const NETNS_STATS_MIGRATION: Migration = {
  version: 11,
  description: 'host_stats.netns and anomalies.netns: statistics and the anomalies from them per network namespace (--netns all, containers)',
  statements: (c) => [
    ...[...(c.cluster ? ['host_stats_local'] : []), 'host_stats'].map((t) => `ALTER TABLE ${c.db}.${t}${onCluster(c)} ${COLUMN}`),
    // the data table takes the key; a cluster's Distributed table only the column
    `ALTER TABLE ${c.db}.${c.cluster ? 'anomalies_local' : 'anomalies'}${onCluster(c)} ${KEY_COLUMN}, MODIFY ORDER BY (host, kind, started_at, netns)`,
    ...(c.cluster ? [`ALTER TABLE ${c.db}.anomalies${onCluster(c)} ${KEY_COLUMN}`] : []),
  ],
};
