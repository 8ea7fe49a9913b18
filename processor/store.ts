/**
 * What the processor, the CLI and the dashboards need of a store, and nothing more: rows inserted
 * under a token, the ranges an input logged, checkpoints, read-only queries, and the statements of
 * migrations. processor/clickhouse/store.ts implements it on @clickhouse/client, for chDB and a
 * server alike; tests and tools see only this.
 */
import type { TableRows } from './clickhouse/table-rows.js';

/** The tables the processor writes; each has one column list (processor/clickhouse/tables.ts). */
export const TABLES = ['flows', 'host_stats', 'pipeline_health', 'anomalies', 'events', 'dead_letters', 'processor_stats'] as const;
export type Table = (typeof TABLES)[number];

/** Inserts a writer keeps in flight at most (a storm waited on two; docs/PERFORMANCE.md), and so the embedded store's insert connections. */
export const INSERTS_IN_FLIGHT = 3;

/** An input a processor keeps a position in: a Kafka partition, a recording file, a collector run. */
export interface InputKey {
  group: string;
  topic: string;
  partition: number;
}

export interface Checkpoint {
  offset: number;
  chunks: Buffer[];
}

/** One input's checkpoint to save (Store.saveCheckpoints). */
export interface CheckpointSave {
  key: InputKey;
  offset: number;
  chunks: readonly Buffer[];
  version: number;
}

export interface InputRange {
  first: number;
  last: number;
}

/** A column's name and ClickHouse type, as a query's result reports them. */
export interface ColumnMeta {
  name: string;
  type: string;
}

export interface Store {
  /** The database of the ctpipe tables. */
  readonly db: string;
  /**
   * Rows of one table (encoded as they were made: clickhouse/table-rows.ts), deduplicated by
   * `token`; STORE_ROWS_REFUSED (thrown, or as a ClickHouse code) when a row cannot be stored.
   */
  insert(table: Table, rows: TableRows, token: string): Promise<void>;
  /** Logs the range of input positions whose rows are about to be written (replays cut along it). */
  logRange(k: InputKey, r: InputRange): Promise<void>;
  /** Ranges logged past `after`, in order. */
  ranges(k: InputKey, after: number): Promise<InputRange[]>;
  /**
   * The last checkpoint: its position and the state's bytes, in the chunks they were saved in (a
   * checkpoint from before chunks: one chunk, its JSON state).
   */
  loadCheckpoint(k: InputKey): Promise<Checkpoint | undefined>;
  /**
   * Saves a state as chunks; the checkpoint becomes the input's last once every chunk is stored.
   * `version` orders checkpoints (a newer one wins): the offset + 1 for a Kafka partition.
   */
  saveCheckpoint(k: InputKey, offset: number, chunks: readonly Buffer[], version: number): Promise<void>;
  /**
   * Several inputs' checkpoints at once (a member stopping, a takeover restoring): the same as one
   * call each, in a few statements instead of a few per input. Each input's checkpoint becomes its
   * last once its chunks are stored; a failure leaves each input at its previous checkpoint or this one.
   * An input given as a promise (its state still being snapshotted) has its chunks stored as soon as
   * it resolves, while the later ones are made; the checkpoint rows go last, together.
   */
  saveCheckpoints(cps: readonly (CheckpointSave | Promise<CheckpointSave>)[]): Promise<void>;
  /** The last checkpoint of each input, in the order asked (loadCheckpoint for each). */
  loadCheckpoints(ks: readonly InputKey[]): Promise<(Checkpoint | undefined)[]>;
  /** The ranges logged past each input's `after`, in the order asked (ranges for each). */
  rangesAfter(ks: readonly { key: InputKey; after: number }[]): Promise<InputRange[][]>;
  /** A query's rows as objects; `{name:Type}` placeholders take `params`. */
  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** The same with the columns' names and types (dashboards). */
  queryWithMeta(sql: string, params?: Record<string, unknown>): Promise<{ meta: ColumnMeta[]; rows: Record<string, unknown>[] }>;
  /** A query's result as CSV with a header line. */
  queryCsv(sql: string, params?: Record<string, unknown>): Promise<string>;
  /** A statement without result rows (migrations, maintenance). */
  command(sql: string, params?: Record<string, unknown>): Promise<void>;
  /** The same store (one connection) on another database: tools and tests that keep several. */
  database(db: string): Store;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
