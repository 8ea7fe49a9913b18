/**
 * The ClickHouse schema, as ordered migrations (docs/SCHEMA.md explains every choice). A migration
 * is applied once and recorded in `schema_migrations`; `ctpipe migrate` applies what is missing,
 * so a second run changes nothing. With a cluster name, tables become Replicated*MergeTree
 * `<name>_local` tables behind Distributed tables of the old name, all created ON CLUSTER
 * (the layout akvorado uses: orchestrator/clickhouse/migrations_helpers.go).
 */
import { networkStatements } from '../networks/schema.js';
import { NETNS_STATS_MIGRATION } from './migration-netns-stats.js';
import { partFormatStatements } from './part-format.js';

export interface SchemaContext {
  db: string;
  cluster?: string;
  flowsTtlDays: number;
  eventsTtlDays: number;
}

export interface Migration {
  version: number;
  description: string;
  statements: (c: SchemaContext) => string[];
}

const onCluster = (c: SchemaContext) => (c.cluster ? ` ON CLUSTER ${c.cluster}` : '');

/** The engine clause; Replicated with the conventional Keeper path on a cluster. */
function engine(c: SchemaContext, table: string, kind: string, args = ''): string {
  if (!c.cluster) return `${kind}(${args})`;
  const path = `'/clickhouse/tables/{shard}/${c.db}/${table}'`;
  return `Replicated${kind}(${path}, '{replica}'${args ? `, ${args}` : ''})`;
}

/** CREATE TABLE for a data table: local + Distributed on a cluster, plain otherwise. */
function table(c: SchemaContext, name: string, columns: string, kind: string, engineArgs: string, tail: string, shardKey = 'rand()'): string[] {
  const local = c.cluster ? `${name}_local` : name;
  const out = [`CREATE TABLE IF NOT EXISTS ${c.db}.${local}${onCluster(c)} (${columns}) ENGINE = ${engine(c, local, kind, engineArgs)} ${tail}`];
  if (c.cluster) {
    out.push(`CREATE TABLE IF NOT EXISTS ${c.db}.${name}${onCluster(c)} AS ${c.db}.${local} ENGINE = Distributed(${c.cluster}, ${c.db}, ${local}, ${shardKey})`);
  }
  return out;
}

// Time columns: DateTime64(9) keeps the kernel's nanoseconds; Delta + ZSTD compresses ordered times.
const T = "DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1))";
const TN = "Nullable(DateTime64(9, 'UTC'))";
// Insert tokens deduplicate on plain MergeTree only with a window (Replicated tables keep one).
const DEDUP = 'SETTINGS non_replicated_deduplication_window = 1000';

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'flows, host_stats, pipeline_health, anomalies, dead_letters, raw events, rollups',
    statements: (c) => [
      ...table(c, 'flows', `
        host LowCardinality(String),
        run String,
        flow_id String,
        ct_id UInt32,
        family Enum8('ipv4' = 4, 'ipv6' = 6),
        proto UInt8,
        orig_src IPv6, orig_dst IPv6, orig_sport UInt16, orig_dport UInt16,
        reply_src IPv6, reply_dst IPv6, reply_sport UInt16, reply_dport UInt16,
        orig_src_text String ALIAS replaceRegexpOne(toString(orig_src), '^::ffff:', ''),
        orig_dst_text String ALIAS replaceRegexpOne(toString(orig_dst), '^::ffff:', ''),
        icmp_type Nullable(UInt8), icmp_code Nullable(UInt8),
        first_seen ${T},
        established_at ${TN}, seen_reply_at ${TN}, assured_at ${TN}, ended_at ${TN},
        end_reason LowCardinality(String),
        lost_by LowCardinality(String),
        duration_ms Nullable(Float64),
        tcp_states Array(LowCardinality(String)),
        tcp_state_times Array(DateTime64(9, 'UTC')),
        final_tcp_state LowCardinality(String),
        assured Bool, seen_reply Bool,
        conn_state LowCardinality(String),
        handshake_ms Nullable(Float64),
        orig_packets UInt64, orig_bytes UInt64, reply_packets UInt64, reply_bytes UInt64,
        helper LowCardinality(String),
        related Bool,
        master_flow_id String,
        mark UInt32, zone UInt16,
        nat LowCardinality(String), nat_src String, nat_dst String,
        snapshot Bool,
        version UInt64`,
        'ReplacingMergeTree', 'version',
        `PARTITION BY toYYYYMMDD(first_seen) ORDER BY (host, toStartOfHour(first_seen), flow_id)
         TTL toDateTime(first_seen) + INTERVAL ${c.flowsTtlDays} DAY
         ${DEDUP}`,
        'cityHash64(host)'),
      ...table(c, 'host_stats', `
        host LowCardinality(String),
        run String,
        ts ${T},
        interval_s Float64,
        entries UInt32, max_entries UInt32,
        found UInt64, invalid UInt64, insert UInt64, insert_failed UInt64, drop UInt64, early_drop UInt64,
        error UInt64, search_restart UInt64, clash_resolve UInt64, chaintoolong UInt64,
        exp_new UInt64, exp_create UInt64, exp_delete UInt64,
        cpus UInt16,
        reset Bool`,
        'MergeTree', '',
        `PARTITION BY toYYYYMM(ts) ORDER BY (host, ts) TTL toDateTime(ts) + INTERVAL ${c.flowsTtlDays} DAY
         ${DEDUP}`,
        'cityHash64(host)'),
      ...table(c, 'pipeline_health', `
        host LowCardinality(String),
        run String,
        ts ${T},
        kind LowCardinality(String),
        count Int64,
        first_seq Nullable(UInt64), last_seq Nullable(UInt64),
        detail String`,
        'MergeTree', '',
        `PARTITION BY toYYYYMM(ts) ORDER BY (host, ts, kind) TTL toDateTime(ts) + INTERVAL ${c.flowsTtlDays} DAY
         ${DEDUP}`,
        'cityHash64(host)'),
      ...table(c, 'anomalies', `
        host LowCardinality(String),
        kind LowCardinality(String),
        severity LowCardinality(String),
        started_at ${T},
        ended_at ${TN},
        score Float64, baseline Float64, observed Float64,
        details String,
        flow_ids Array(String),
        version UInt64`,
        'ReplacingMergeTree', 'version',
        `PARTITION BY toYYYYMM(started_at) ORDER BY (host, kind, started_at)
         TTL toDateTime(started_at) + INTERVAL ${c.flowsTtlDays} DAY`,
        'cityHash64(host)'),
      ...table(c, 'dead_letters', `
        ts DateTime64(3, 'UTC') DEFAULT now64(3),
        topic String, partition UInt32, offset UInt64,
        reason String,
        payload_hex String`,
        'MergeTree', '',
        `ORDER BY (topic, partition, offset) TTL toDateTime(ts) + INTERVAL 30 DAY
         ${DEDUP}`),
      ...table(c, 'events', `
        host LowCardinality(String), run String, seq UInt64,
        ts ${T},
        type LowCardinality(String),
        ct_id UInt32, proto UInt8,
        orig_src IPv6, orig_dst IPv6, orig_sport UInt16, orig_dport UInt16,
        tcp_state LowCardinality(String), status UInt32`,
        'MergeTree', '',
        `PARTITION BY toYYYYMMDD(ts) ORDER BY (host, ts, seq) TTL toDateTime(ts) + INTERVAL ${c.eventsTtlDays} DAY
         ${DEDUP}`,
        'cityHash64(host)'),
      // Rollups count each flow once, from its final row (open refresh rows are left out).
      ...table(c, 'flows_1m', `
        host LowCardinality(String), minute DateTime('UTC'), proto UInt8,
        conn_state LowCardinality(String), orig_dport UInt16,
        flows UInt64, related UInt64, orig_bytes UInt64, reply_bytes UInt64, orig_packets UInt64, reply_packets UInt64,
        duration_ms_sum Float64`,
        'SummingMergeTree', '',
        `PARTITION BY toYYYYMM(minute) ORDER BY (host, minute, proto, conn_state, orig_dport)
         TTL minute + INTERVAL ${c.flowsTtlDays * 12} DAY ${DEDUP}`,
        'cityHash64(host)'),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${c.db}.flows_1m_mv${onCluster(c)} TO ${c.db}.${c.cluster ? 'flows_1m_local' : 'flows_1m'} AS
        SELECT host, toStartOfMinute(first_seen) AS minute, proto, conn_state, orig_dport,
          count() AS flows, countIf(related) AS related, sum(orig_bytes) AS orig_bytes, sum(reply_bytes) AS reply_bytes,
          sum(orig_packets) AS orig_packets, sum(reply_packets) AS reply_packets, sum(ifNull(duration_ms, 0)) AS duration_ms_sum
        FROM ${c.db}.${c.cluster ? 'flows_local' : 'flows'} WHERE end_reason != 'open'
        GROUP BY host, minute, proto, conn_state, orig_dport`,
      ...table(c, 'fleet_1m', `
        minute DateTime('UTC'), hosts AggregateFunction(uniq, String),
        flows SimpleAggregateFunction(sum, UInt64), orig_bytes SimpleAggregateFunction(sum, UInt64),
        reply_bytes SimpleAggregateFunction(sum, UInt64)`,
        'AggregatingMergeTree', '',
        `ORDER BY minute TTL minute + INTERVAL ${c.flowsTtlDays * 12} DAY ${DEDUP}`),
      // The processor's checkpoints: per consumer group and partition, its state and the offset
      // it corresponds to; and the input ranges it wrote, so a replay cuts batches the same way.
      ...table(c, 'processor_checkpoints', `
        group_id String, topic String, partition UInt32,
        offset Int64,
        state String CODEC(ZSTD(3)),
        version UInt64`,
        'ReplacingMergeTree', 'version', 'ORDER BY (group_id, topic, partition)'),
      ...table(c, 'processor_batches', `
        group_id String, topic String, partition UInt32,
        first_offset Int64, last_offset Int64,
        ts DateTime64(3, 'UTC') DEFAULT now64(3)`,
        'MergeTree', '', `ORDER BY (group_id, topic, partition, first_offset) TTL toDateTime(ts) + INTERVAL 7 DAY
         ${DEDUP}`),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${c.db}.fleet_1m_mv${onCluster(c)} TO ${c.db}.${c.cluster ? 'fleet_1m_local' : 'fleet_1m'} AS
        SELECT toStartOfMinute(first_seen) AS minute, uniqState(toString(host)) AS hosts, count() AS flows,
          sum(orig_bytes) AS orig_bytes, sum(reply_bytes) AS reply_bytes
        FROM ${c.db}.${c.cluster ? 'flows_local' : 'flows'} WHERE end_reason != 'open' GROUP BY minute`,
    ],
  },
  {
    version: 2,
    description: 'skip indexes for flow lookups by address and port; handshake t-digests in flows_1m; fleet_1m fed from flows_1m',
    statements: (c) => {
      const flows = c.cluster ? 'flows_local' : 'flows';
      const f1m = c.cluster ? 'flows_1m_local' : 'flows_1m';
      return [
        // Ad hoc "what did this address do" queries otherwise read every granule of a host's hours.
        `ALTER TABLE ${c.db}.${flows}${onCluster(c)} ADD INDEX IF NOT EXISTS orig_src_bf orig_src TYPE bloom_filter(0.01) GRANULARITY 4`,
        `ALTER TABLE ${c.db}.${flows}${onCluster(c)} ADD INDEX IF NOT EXISTS orig_dst_bf orig_dst TYPE bloom_filter(0.01) GRANULARITY 4`,
        `ALTER TABLE ${c.db}.${flows}${onCluster(c)} ADD INDEX IF NOT EXISTS orig_dport_set orig_dport TYPE set(256) GRANULARITY 4`,
        // Handshake percentiles per minute (SummingMergeTree merges AggregateFunction columns).
        ...[f1m, ...(c.cluster ? ['flows_1m'] : [])].map((t) =>
          `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS handshake_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Float64)`),
        // One view reads the flows inserts; fleet totals are fed from its small output blocks.
        `DROP VIEW IF EXISTS ${c.db}.flows_1m_mv${onCluster(c)} SYNC`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${c.db}.flows_1m_mv${onCluster(c)} TO ${c.db}.${f1m} AS
          SELECT host, toStartOfMinute(first_seen) AS minute, proto, conn_state, orig_dport,
            count() AS flows, countIf(related) AS related, sum(orig_bytes) AS orig_bytes, sum(reply_bytes) AS reply_bytes,
            sum(orig_packets) AS orig_packets, sum(reply_packets) AS reply_packets, sum(ifNull(duration_ms, 0)) AS duration_ms_sum,
            quantilesTDigestStateIf(0.5, 0.9, 0.99)(assumeNotNull(handshake_ms), handshake_ms IS NOT NULL) AS handshake_ms_digest
          FROM ${c.db}.${flows} WHERE end_reason != 'open'
          GROUP BY host, minute, proto, conn_state, orig_dport`,
        `DROP VIEW IF EXISTS ${c.db}.fleet_1m_mv${onCluster(c)} SYNC`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${c.db}.fleet_1m_mv${onCluster(c)} TO ${c.db}.${c.cluster ? 'fleet_1m_local' : 'fleet_1m'} AS
          SELECT minute, uniqState(toString(host)) AS hosts, sum(flows) AS flows, sum(orig_bytes) AS orig_bytes, sum(reply_bytes) AS reply_bytes
          FROM ${c.db}.${f1m} GROUP BY minute`,
      ];
    },
  },
  {
    version: 3,
    description: 'processor_stats (lag, throughput, inserts, dead letters per processor) and collector events in host_stats, for the Pipeline health dashboard',
    statements: (c) => [
      ...[...(c.cluster ? ['host_stats_local'] : []), 'host_stats'].map((t) =>
        `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS collector_events UInt64 DEFAULT 0`),
      ...table(c, 'processor_stats', `
        ts DateTime64(3, 'UTC'),
        processor LowCardinality(String),
        partition Int32,
        lag Int64,
        records UInt64, rows UInt64,
        inserts UInt64, insert_seconds Float64, insert_max_seconds Float64, insert_errors UInt64,
        dead_letters UInt64`,
        'MergeTree', '',
        `PARTITION BY toYYYYMM(ts) ORDER BY (processor, ts) TTL toDateTime(ts) + INTERVAL ${c.flowsTtlDays} DAY
         ${DEDUP}`,
        'rand()'),
    ],
  },
  {
    version: 4,
    description: 'flows.resynced: a lifecycle open across a kernel event loss and confirmed by the dump after it',
    statements: (c) => [...(c.cluster ? ['flows_local'] : []), 'flows'].map((t) =>
      `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS resynced Bool DEFAULT false AFTER snapshot`),
  },
  {
    version: 5,
    description: 'flows_state_1m: per-minute flows by host, protocol and conn_state (flows_1m without the port), for fleet-wide panels',
    statements: (c) => {
      const f1m = c.cluster ? 'flows_1m_local' : 'flows_1m';
      const sums = 'sum(flows) AS flows, sum(related) AS related, sum(orig_bytes) AS orig_bytes, sum(reply_bytes) AS reply_bytes, ' +
        'sum(orig_packets) AS orig_packets, sum(reply_packets) AS reply_packets, sum(duration_ms_sum) AS duration_ms_sum';
      return [
        // flows_1m keeps a row per destination port: about a third as many rows as flows at fleet
        // scale, too many for fleet-wide panels; without the port a host's minute has a few rows.
        ...table(c, 'flows_state_1m', `
          host LowCardinality(String), minute DateTime('UTC'), proto UInt8, conn_state LowCardinality(String),
          flows UInt64, related UInt64, orig_bytes UInt64, reply_bytes UInt64, orig_packets UInt64, reply_packets UInt64,
          duration_ms_sum Float64`,
        'SummingMergeTree', '',
        `PARTITION BY toYYYYMM(minute) ORDER BY (host, minute, proto, conn_state)
         TTL minute + INTERVAL ${c.flowsTtlDays * 12} DAY ${DEDUP}`,
        'cityHash64(host)'),
        // The minutes stored so far, once (empty: a rerun after a failure does not add them twice);
        // through the Distributed tables on a cluster, which shard by host as flows_1m does.
        `INSERT INTO ${c.db}.flows_state_1m SELECT host, minute, proto, conn_state, ${sums} FROM ${c.db}.flows_1m
          WHERE (SELECT count() FROM ${c.db}.flows_state_1m) = 0 GROUP BY host, minute, proto, conn_state`,
        // Fed from flows_1m's insert blocks (already aggregated), as fleet_1m is: no second view on flows.
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${c.db}.flows_state_1m_mv${onCluster(c)} TO ${c.db}.${c.cluster ? 'flows_state_1m_local' : 'flows_state_1m'} AS
          SELECT host, minute, proto, conn_state, ${sums} FROM ${c.db}.${f1m} GROUP BY host, minute, proto, conn_state`,
      ];
    },
  },
  {
    version: 6,
    description: 'one bloom filter over both addresses (instead of one each) and one over flow_id and master_flow_id, for lookups across the fleet',
    statements: (c) => {
      const alter = `ALTER TABLE ${c.db}.${c.cluster ? 'flows_local' : 'flows'}${onCluster(c)}`;
      return [
        // "src = X OR dst = X" skipped granules only when both sides are in one index: with one index
        // each, ClickHouse read three quarters of a fleet's granules for an address seen on one host.
        `${alter} ADD INDEX IF NOT EXISTS addresses_bf (orig_src, orig_dst) TYPE bloom_filter(0.01) GRANULARITY 4`,
        // A flow with its master and related flows (the Flow explorer's flow id) without reading every flow_id.
        `${alter} ADD INDEX IF NOT EXISTS flow_ids_bf (flow_id, master_flow_id) TYPE bloom_filter(0.01) GRANULARITY 4`,
        // For the parts stored before: a mutation in the background (new parts have the indexes).
        `${alter} MATERIALIZE INDEX addresses_bf`,
        `${alter} MATERIALIZE INDEX flow_ids_bf`,
        `${alter} DROP INDEX IF EXISTS orig_src_bf`,
        `${alter} DROP INDEX IF EXISTS orig_dst_bf`,
      ];
    },
  },
  {
    version: 7,
    description: 'binary checkpoints in chunks: processor_checkpoint_chunks, and the checkpoint row naming its snapshot',
    statements: (c) => [
      // Two slots per input, written in turn: a snapshot goes into the slot the checkpoint row does
      // not name, then the row switches to it, so the last complete snapshot is never overwritten.
      ...table(c, 'processor_checkpoint_chunks', `
        group_id String, topic String, partition UInt32,
        slot UInt8, seq UInt32,
        snapshot String,
        data String CODEC(ZSTD(1)), -- base64: chDB's insert path takes text, not arbitrary bytes
        version UInt64`,
        'ReplacingMergeTree', 'version', 'ORDER BY (group_id, topic, partition, slot, seq)'),
      ...[...(c.cluster ? ['processor_checkpoints_local'] : []), 'processor_checkpoints'].flatMap((t) => [
        `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS snapshot String DEFAULT '' AFTER state`,
        `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS slot UInt8 DEFAULT 0 AFTER snapshot`,
        `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS chunks UInt32 DEFAULT 0 AFTER slot`,
      ]),
    ],
  },
  {
    version: 8,
    description: 'flows: Kubernetes names of both addresses (namespace, pod, workload, node; the destination service), filled by the processor with --kubernetes',
    statements: (c) => {
      const cols = ['src_k8s_namespace', 'src_k8s_pod', 'src_k8s_workload', 'src_k8s_node',
        'dst_k8s_namespace', 'dst_k8s_pod', 'dst_k8s_workload', 'dst_k8s_node', 'dst_k8s_service'].map((n) => `orig_${n}`);
      return [...(c.cluster ? ['flows_local'] : []), 'flows'].map((t) => `ALTER TABLE ${c.db}.${t}${onCluster(c)} ` +
        cols.map((n, i) => `ADD COLUMN IF NOT EXISTS ${n} LowCardinality(String) DEFAULT '' AFTER ${i === 0 ? 'version' : cols[i - 1]}`).join(', '));
    },
  },
  {
    version: 9,
    description: 'flows.netns: the network namespace of a flow when the collector follows several (--netns all, containers)',
    statements: (c) => [...(c.cluster ? ['flows_local'] : []), 'flows'].map((t) =>
      `ALTER TABLE ${c.db}.${t}${onCluster(c)} ADD COLUMN IF NOT EXISTS netns LowCardinality(String) DEFAULT '' AFTER host`),
  },
  {
    version: 10,
    description: 'network attributes: networks, network_loads, the networks_dict ip_trie dictionary, orig_src_net_* and orig_dst_net_* filled from it',
    statements: networkStatements,
  },
  NETNS_STATS_MIGRATION,
  {
    version: 12,
    description: 'flows and events: parts under 1,000,000 rows in the compact format (one file for all columns), about half the CPU of an insert',
    statements: partFormatStatements,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
