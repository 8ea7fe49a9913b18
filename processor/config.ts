/**
 * The processor's configuration sections (`clickhouse`, `process`, `detect`); composed with the
 * others by cli/config.ts.
 */
import { z } from 'zod';
import { duration, size } from '../common/config-kinds.js';
import type { KafkaConfigSection } from '../common/kafka-config.js';

export const clickhouseSection = z.strictObject({
  url: z.string().default('chdb:./data').describe('chdb:PATH for the embedded ClickHouse (chDB), or http(s)://HOST:PORT for a server'),
  database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a database name is letters, digits and _').default('ctpipe').describe('Database of the ctpipe tables'),
  username: z.string().optional().describe('ClickHouse user (servers only)'),
  password: z.string().optional().describe('ClickHouse password (prefer CTPIPE_CLICKHOUSE_PASSWORD or password_file; never logged)'),
  password_file: z.string().optional().describe('File holding the ClickHouse password'),
  cluster: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a cluster name is letters, digits and _').optional().describe('Cluster name: Replicated tables and Distributed tables ON CLUSTER'),
  flows_ttl_days: z.number().int().min(1).default(30).describe('Days of flows, statistics and health kept (rollups keep 12 times longer)'),
  events_ttl_days: z.number().int().min(1).default(3).describe('Days of raw events kept (when raw_events is on)'),
  raw_events: z.boolean().default(false).describe('Also store every conntrack event in the events table'),
});

export const processSection = z.strictObject({
  group_id: z.string().min(1).default('ctpipe-processor').describe('Kafka consumer group of the processors'),
  max_open_flows: z.number().int().min(100).default(4_000_000).describe('Open lifecycles kept in memory by a processor (about 215 bytes each: 4,000,000 is about 900 MB); past it the oldest idle unassured are evicted, counted and logged, and one that ends later still gets its true end'),
  refresh: duration('60s', 'How often (event time) a long-lived open flow gets a refreshed row'),
  grace: duration('30s', 'Extra time past a flow\'s kernel timeout before a flow without DESTROY is closed as lost'),
  flush: duration('1s', 'Longest time records wait before their rows are written (freshness); for process, the longest a Kafka fetch waits for fetch_min_bytes'),
  fetch_min_bytes: size('256KiB', 'process: the Kafka fetch minimum, waited for up to flush; a partition behind by less than insert_rows is processed in batches of at least this much Kafka data (at its end, at once)', { max: 1 << 30 }),
  insert_rows: z.number().int().min(1).max(10_000_000).default(100_000).describe('process: while a partition is behind by an insert\'s worth or more (the records that make this many rows at its rows per record so far), they are inserted about this many rows at a time, as ctpipe run inserts (each insert has a fixed cost: its parts, the views it feeds, their merges); less behind, by fetch_min_bytes; at the partition\'s end, at once'),
  insert_records: z.number().int().min(1).max(10_000_000).default(800_000).describe('process: records an insert covers at most while a partition is behind (they wait in memory until it is cut: a lab-shaped record is about 55 bytes in a ctpipe.v1.Batch, 800,000 about 44 MB)'),
  max_backlog: z.number().int().min(1000).default(1_000_000).describe('run: records kept in memory while ClickHouse does not take rows (a few hundred bytes each); past it new records are dropped and reported as a buffer_full loss'),
  session_timeout: duration('30s', 'Kafka consumer group session timeout: how soon a dead processor\'s partitions move to another'),
  partitions_concurrently: z.number().int().min(1).max(64).default(1).describe('Partitions whose fetched batches a processor handles at once (each partition\'s in order); more lets partitions taken over in a rebalance, whose first batches hold the records of the pause and wait for their checkpoints, go on beside the kept ones'),
  checkpoint: duration('10s', 'How often the state is stored: process commits its Kafka offsets after it (what a restart replays); run keeps it for its next start'),
  hosts: z.array(z.string().min(1).max(253)).default([]).describe('Hosts whose records are accepted: exact names or patterns with * and ? (comma-separated in env and flags); records of any other host go to dead_letters. Empty: any host. Either way a batch whose host is not its Kafka key is dead-lettered'),
  max_batch_bytes: size('16MiB', 'Largest batch accepted: a Kafka record batch once decompressed, one ctpipe.v1.Batch, one recording frame or JSON line; larger ones go to dead_letters unread (a 0.49 MB gzip record can expand to 500 MB). Keep it above the collectors\' kafka.max_send_bytes', { min: 64 << 10, max: 1 << 30 }),
  max_batch_records: z.number().int().min(1).max(10_000_000).default(100_000).describe('Records in one ctpipe.v1.Batch at most (collectors send kafka.batch_events, at most 100,000); larger batches go to dead_letters'),
  max_string_length: z.number().int().min(64).max(1 << 20).default(1024).describe('Characters of any string in a record (host, run, helper, labels, secctx...); a record with a longer one goes to dead_letters'),
});

export const detectSection = z.strictObject({
  open_after: z.number().int().min(1).default(3).describe('An anomaly opens once this many of the last open_window statistics intervals were above its threshold'),
  open_window: z.number().int().min(1).default(4).describe('Intervals looked at for open_after'),
  close_after: z.number().int().min(1).default(3).describe('An anomaly closes after this many clear intervals in a row (clearing has a lower bar than opening)'),
  cooldown: duration('5m', 'After an anomaly closes, the same kind cannot reopen on that host for this long'),
  invalid_min_rate: z.number().nonnegative().default(5).describe('INVALID packets per second below which no invalid_spike opens (quiet hosts: the few packets of torn-down connections are not a spike)'),
  invalid_z: z.number().positive().default(3.5).describe('Robust z-score of log1p(INVALID/s) against the host\'s median and MAD that opens an invalid_spike'),
  invalid_clear_z: z.number().positive().default(2).describe('Robust z-score below which an interval counts as clear'),
  invalid_history: z.number().int().min(10).default(360).describe('Statistics intervals in a host\'s INVALID baseline (an EWMA serves for the first 30)'),
  table_warn: z.number().gt(0).lte(1).default(0.75).describe('Conntrack table fill (entries / max) that opens table_pressure'),
  table_critical: z.number().gt(0).lte(1).default(0.9).describe('Fill at which table_pressure is critical'),
  drops_min_rate: z.number().positive().default(1).describe('early_drop + drop + insert_failed per second that opens table_drops'),
  scan_window: duration('1m', 'Window (event time) in which finished connections are counted per source for the scan detectors'),
  s0_per_source: z.number().int().min(1).default(100).describe('Connections from one source that never got a reply (S0) in a window that open handshake_failures'),
  rej_per_source: z.number().int().min(1).default(100).describe('Refused connections (REJ) from one source in a window that open rej_storm'),
  ports_per_source: z.number().int().min(2).default(100).describe('Distinct destination ports one source tried in a window that open port_scan'),
  hosts_per_source: z.number().int().min(2).default(50).describe('Distinct destinations one source tried in a window that open host_scan'),
  expectations_per_minute: z.number().int().min(1).default(600).describe('New helper expectations per host per minute that open expectation_flood'),
  expectations_unused_per_minute: z.number().int().min(1).default(20).describe('Expectations per host per minute expiring unused (not taken by a connection) that open expectation_unused_burst'),
  related_quiet: duration('5m', 'A related-flow anomaly closes after this long (event time) without a new case'),
});

export type ClickhouseConfig = z.output<typeof clickhouseSection>;
export type ProcessConfig = z.output<typeof processSection>;
export type DetectConfig = z.output<typeof detectSection>;

/** What a processor reads of the configuration. */
export interface ProcessorConfig {
  kafka: KafkaConfigSection;
  clickhouse: ClickhouseConfig;
  process: ProcessConfig;
  detect: DetectConfig;
}
