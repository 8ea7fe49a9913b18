/**
 * Which part of ctpipe reads each setting: the one list that decides a command's flags and its
 * --help. A command names the parts it runs (CommandSpec.parts); a flag no part of it reads is
 * not offered, so `--help` lists only what does something (the environment and the file still
 * take every setting: one file can serve every command).
 */
import type { Leaf } from './config.js';

export type Part =
  | 'host' // the collecting host's id (records' key)
  | 'log' // the JSON logger
  | 'ops' // /metrics and /healthz
  | 'collector' // netlink sockets, dump, statistics, sysctls, conntrack activation, --duration
  | 'output' // collect's choice of sink
  | 'feed' // a collector feeding a processor (collect, run): counter dumps, the table's Prometheus series
  | 'kafka' // the Kafka client: brokers, topic, timeouts, TLS, SASL
  | 'publish' // the Kafka producer and its batching
  | 'spool' // the collector's disk spool
  | 'consume' // the processors' consumer group
  | 'limits' // bounds on what a processor decodes (Kafka batches, recordings)
  | 'store' // the ClickHouse connection
  | 'database' // the ClickHouse database name
  | 'schema' // what migrations create
  | 'pipeline' // lifecycles, rows and detectors
  | 'live' // a processor that runs until stopped: flush and checkpoint intervals
  | 'local' // run's in-memory link from collector to processor
  | 'k8s' // Kubernetes names for addresses (run, process)
  | 'enrich'; // network names for addresses: the networks file (run, process)

/**
 * Each setting's part, by the longest matching prefix of its key: a section's default first,
 * then the settings of it another part reads.
 */
export const PART_OF: Readonly<Record<string, Part>> = {
  host: 'host',
  log_level: 'log',
  metrics: 'ops',
  collect: 'collector',
  'collect.output': 'output',
  'collect.metrics_per_cpu': 'feed',
  'collect.counter_dump_interval': 'feed',
  'collect.counter_dump_max_entries': 'feed',
  'collect.counter_dump_at_stop': 'local',
  kafka: 'kafka',
  'kafka.compression': 'publish',
  'kafka.compression_level': 'publish',
  'kafka.producer_thread': 'publish',
  'kafka.batch_events': 'publish',
  'kafka.linger': 'publish',
  'kafka.buffer_bytes': 'publish',
  'kafka.max_send_bytes': 'publish',
  'kafka.flush_timeout': 'publish',
  'kafka.spool_dir': 'spool',
  'kafka.spool_max_bytes': 'spool',
  clickhouse: 'store',
  'clickhouse.database': 'database',
  'clickhouse.cluster': 'schema',
  'clickhouse.flows_ttl_days': 'schema',
  'clickhouse.events_ttl_days': 'schema',
  'clickhouse.raw_events': 'pipeline',
  process: 'pipeline',
  'process.group_id': 'consume',
  'process.session_timeout': 'consume',
  'process.partitions_concurrently': 'consume',
  'process.fetch_min_bytes': 'consume',
  'process.insert_rows': 'consume',
  'process.insert_records': 'consume',
  'process.hosts': 'consume',
  'process.max_batch_bytes': 'limits',
  'process.max_batch_records': 'limits',
  'process.max_string_length': 'limits',
  'process.flush': 'live',
  'process.checkpoint': 'live',
  'process.max_backlog': 'local',
  detect: 'pipeline',
  kubernetes: 'k8s',
  kubeconfig: 'k8s',
  k8s: 'k8s',
  enrich: 'enrich',
};

export function partOf(leaf: Pick<Leaf, 'path'>): Part | undefined {
  for (let n = leaf.path.length; n > 0; n--) {
    const part = PART_OF[leaf.path.slice(0, n).join('.')];
    if (part) return part;
  }
  return undefined;
}

/** The settings a command takes as flags: those its parts read ('all': every setting, for `ctpipe config`). */
export function usedBy(parts: readonly Part[] | 'all', all: Leaf[]): Leaf[] {
  return parts === 'all' ? all : all.filter((l) => parts.includes(partOf(l)!));
}
