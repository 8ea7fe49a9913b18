/**
 * The columns of every table ctpipe inserts into, one list per table, in the style of the `flows`
 * list (flow-columns.ts, which stays apart: rowOf builds its rows). Each list gives the row type
 * (RowOf), the insert's column list and its RowBinary encoder (table-rows.ts), and the schema check
 * after migrations (schema-check.ts); `filled` marks a column ClickHouse fills from its DEFAULT.
 *
 * Adding a column: a migration that adds it (schema.ts), its entry here and its value where the
 * row is made (rows.ts for the processor's tables, store.ts for the store's own). The schema check
 * fails at start when a list and the migrated table disagree. docs/SCHEMA.md says what each holds.
 */
import { STAT_FIELDS } from '../../contract/records.js';
import type { Table } from '../store.js';
import { CH, type ColumnDef, type RowOf } from './ch-type.js';
import { FLOW_COLUMN_DEFS } from './flow-columns.js';

const TIME = CH.DateTime64(9, 'UTC');
const TIME_MS = CH.DateTime64(3, 'UTC');
const LC = CH.LowCardinality(CH.String);

export const HOST_STATS_COLUMNS = [
  { name: 'host', type: LC },
  { name: 'netns', type: LC }, // version 11
  { name: 'run', type: CH.String },
  { name: 'ts', type: TIME },
  { name: 'interval_s', type: CH.Float64 },
  { name: 'entries', type: CH.UInt32 },
  { name: 'max_entries', type: CH.UInt32 },
  // the kernel's statistics as deltas over the interval, in the contract's order
  ...STAT_FIELDS.map((name) => ({ name, type: CH.UInt64 })),
  { name: 'exp_new', type: CH.UInt64 },
  { name: 'exp_create', type: CH.UInt64 },
  { name: 'exp_delete', type: CH.UInt64 },
  { name: 'cpus', type: CH.UInt16 },
  { name: 'reset', type: CH.Bool },
  { name: 'collector_events', type: CH.UInt64 },
] as const satisfies readonly ColumnDef[];

export const PIPELINE_HEALTH_COLUMNS = [
  { name: 'host', type: LC },
  { name: 'run', type: CH.String },
  { name: 'ts', type: TIME },
  { name: 'kind', type: LC },
  { name: 'count', type: CH.Int64 },
  { name: 'first_seq', type: CH.Nullable(CH.UInt64) },
  { name: 'last_seq', type: CH.Nullable(CH.UInt64) },
  { name: 'detail', type: CH.String },
] as const satisfies readonly ColumnDef[];

export const ANOMALY_COLUMNS = [
  { name: 'host', type: LC },
  { name: 'netns', type: LC }, // version 11: '' for the anomalies not from statistics
  { name: 'kind', type: LC },
  { name: 'severity', type: LC },
  { name: 'started_at', type: TIME },
  { name: 'ended_at', type: CH.Nullable(TIME) },
  { name: 'score', type: CH.Float64 },
  { name: 'baseline', type: CH.Float64 },
  { name: 'observed', type: CH.Float64 },
  { name: 'details', type: CH.String }, // JSON
  { name: 'flow_ids', type: CH.Array(CH.String), plain: true },
  { name: 'version', type: CH.UInt64 },
] as const satisfies readonly ColumnDef[];

export const EVENT_COLUMNS = [
  { name: 'host', type: LC },
  { name: 'run', type: CH.String },
  { name: 'seq', type: CH.UInt64 },
  { name: 'ts', type: TIME },
  { name: 'type', type: LC, plain: true },
  { name: 'ct_id', type: CH.UInt32 },
  { name: 'proto', type: CH.UInt8 },
  { name: 'orig_src', type: CH.IPv6 },
  { name: 'orig_dst', type: CH.IPv6 },
  { name: 'orig_sport', type: CH.UInt16 },
  { name: 'orig_dport', type: CH.UInt16 },
  { name: 'tcp_state', type: LC, plain: true },
  { name: 'status', type: CH.UInt32 },
] as const satisfies readonly ColumnDef[];

export const DEAD_LETTER_COLUMNS = [
  { name: 'ts', type: TIME_MS, filled: true }, // now64(3): when the letter was written
  { name: 'topic', type: CH.String },
  { name: 'partition', type: CH.UInt32 },
  { name: 'offset', type: CH.UInt64 },
  { name: 'reason', type: CH.String },
  { name: 'payload_hex', type: CH.String, plain: true },
] as const satisfies readonly ColumnDef[];

export const PROCESSOR_STATS_COLUMNS = [
  { name: 'ts', type: TIME_MS },
  { name: 'processor', type: LC },
  { name: 'partition', type: CH.Int32 },
  { name: 'lag', type: CH.Int64 },
  { name: 'records', type: CH.UInt64 },
  { name: 'rows', type: CH.UInt64 },
  { name: 'inserts', type: CH.UInt64 },
  { name: 'insert_seconds', type: CH.Float64 },
  { name: 'insert_max_seconds', type: CH.Float64 },
  { name: 'insert_errors', type: CH.UInt64 },
  { name: 'dead_letters', type: CH.UInt64 },
] as const satisfies readonly ColumnDef[];

/** The store's own tables: the input ranges a processor logged, and its checkpoints, by input. */
const INPUT_KEY = [
  { name: 'group_id', type: CH.String },
  { name: 'topic', type: CH.String },
  { name: 'partition', type: CH.UInt32 },
] as const satisfies readonly ColumnDef[];

export const BATCH_COLUMNS = [
  ...INPUT_KEY,
  { name: 'first_offset', type: CH.Int64 },
  { name: 'last_offset', type: CH.Int64 },
  { name: 'ts', type: TIME_MS, filled: true },
] as const satisfies readonly ColumnDef[];

export const CHECKPOINT_CHUNK_COLUMNS = [
  ...INPUT_KEY,
  { name: 'slot', type: CH.UInt8 },
  { name: 'seq', type: CH.UInt32 },
  { name: 'snapshot', type: CH.String },
  { name: 'data', type: CH.String }, // base64 (schema.ts, version 5): the column was made for text
  { name: 'version', type: CH.UInt64 },
] as const satisfies readonly ColumnDef[];

export const CHECKPOINT_COLUMNS = [
  ...INPUT_KEY,
  { name: 'offset', type: CH.Int64 },
  { name: 'state', type: CH.String }, // before chunks: the state itself; empty since
  { name: 'snapshot', type: CH.String },
  { name: 'slot', type: CH.UInt8 },
  { name: 'chunks', type: CH.UInt32 },
  { name: 'version', type: CH.UInt64 },
] as const satisfies readonly ColumnDef[];

export type HostStatsTableRow = RowOf<typeof HOST_STATS_COLUMNS>;
export type HealthTableRow = RowOf<typeof PIPELINE_HEALTH_COLUMNS>;
export type AnomalyTableRow = RowOf<typeof ANOMALY_COLUMNS>;
export type EventTableRow = RowOf<typeof EVENT_COLUMNS>;
export type DeadLetterRow = RowOf<typeof DEAD_LETTER_COLUMNS>;
export type ProcessorStatsRow = RowOf<typeof PROCESSOR_STATS_COLUMNS>;

/** The processor's tables, each with its list. */
export const TABLE_COLUMNS = {
  flows: FLOW_COLUMN_DEFS,
  host_stats: HOST_STATS_COLUMNS,
  pipeline_health: PIPELINE_HEALTH_COLUMNS,
  anomalies: ANOMALY_COLUMNS,
  events: EVENT_COLUMNS,
  dead_letters: DEAD_LETTER_COLUMNS,
  processor_stats: PROCESSOR_STATS_COLUMNS,
} as const satisfies Record<Table, readonly ColumnDef[]>;

/** Each table's row, by name. */
export type TableRow<T extends Table> = RowOf<(typeof TABLE_COLUMNS)[T]>;

/** Every table written from a list, the store's own included: what the schema check compares. */
export const ALL_TABLE_COLUMNS: Readonly<Record<string, readonly ColumnDef[]>> = {
  ...TABLE_COLUMNS,
  processor_batches: BATCH_COLUMNS,
  processor_checkpoint_chunks: CHECKPOINT_CHUNK_COLUMNS,
  processor_checkpoints: CHECKPOINT_COLUMNS,
};
