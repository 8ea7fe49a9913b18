/**
 * Writes a batch's rows, table by table, under the batch's token (`${table}:${token}`), so a batch
 * retried or replayed is stored once. What a failure does depends on what it means (clickhouse/
 * errors.ts):
 * - ClickHouse unavailable: retried with backoff until it answers or the caller gives up (false:
 *   the caller must not move its input position).
 * - Rows refused for what they hold: the rows are split in halves, each half inserted under its
 *   own token (`token/0`, `token/1`, so a replay splits the same way), down to the rows at fault,
 *   which go to dead_letters with ClickHouse's reason. The input moves on; no good row is lost.
 * - A statement the database cannot run (a missing column): thrown (STORE_SCHEMA), for the caller
 *   to stop the input loudly.
 * A batch larger than `maxInsertBytes` is split in halves the same way before it is sent (bytes are
 * a function of the rows, so a replay splits alike): the embedded store's insert file, and a
 * server's request body, stay bounded whatever a flush of every open flow makes.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isCtpipeError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { retrying } from './clickhouse/retry.js';
import { TableRows } from './clickhouse/table-rows.js';
import { TABLES, type Store, type Table } from './store.js';

/** Rows per table, encoded as they are made, to be written under one token. */
export type Rows = { [T in Table]: TableRows<T> };
export const noRows = (): Rows => Object.fromEntries(TABLES.map((t) => [t, TableRows.empty(t)])) as unknown as Rows;

/** Inserts are at most this many bytes (64 MiB: about 250,000 flow rows). */
export const MAX_INSERT_BYTES = 64 << 20;

/** Where a batch came from, named in the dead letters of its refused rows. */
export interface Origin {
  input: string;
  partition: number;
  offset: number;
}

/** What the writer did, for processor_stats rows. */
export interface WriteActivity {
  rows: number;
  inserts: number;
  insert_seconds: number;
  insert_max_seconds: number;
  insert_errors: number;
  dead_letters: number;
}

const metricsByRegistry = new WeakMap<Registry, ReturnType<typeof createMetrics>>();

function createMetrics(registry: Registry) {
  return {
    rows: new Counter({ name: 'ctpipe_processor_rows_total', help: 'Rows inserted, by table', labelNames: ['table'], registers: [registry] }),
    refused: new Counter({ name: 'ctpipe_processor_rows_refused_total', help: 'Rows ClickHouse refused for what they hold, sent to dead_letters, by table', labelNames: ['table'], registers: [registry] }),
    insertErrors: new Counter({ name: 'ctpipe_processor_insert_errors_total', help: 'Failed ClickHouse inserts (transient ones are retried)', registers: [registry] }),
    insertSeconds: new Histogram({ name: 'ctpipe_processor_insert_seconds', help: 'ClickHouse insert latency', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    storeUp: new Gauge({ name: 'ctpipe_processor_store_up', help: '1 when the last ClickHouse insert succeeded', registers: [registry] }),
  };
}

/** One set per registry: a processor runs one writer per partition, all reporting together. */
function writerMetrics(registry: Registry): ReturnType<typeof createMetrics> {
  let m = metricsByRegistry.get(registry);
  if (!m) metricsByRegistry.set(registry, (m = createMetrics(registry)));
  return m;
}

export interface WriterOptions {
  store: Store;
  log: Logger;
  registry: Registry;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Batches past this many bytes are split before they are sent (default MAX_INSERT_BYTES). */
  maxInsertBytes?: number;
}

export class RowWriter {
  storeUp = true;
  private readonly m: ReturnType<typeof createMetrics>;
  private refusedLogs = 0;

  constructor(private readonly o: WriterOptions, private readonly activity: () => WriteActivity) {
    this.m = writerMetrics(o.registry);
    this.m.storeUp.set(1);
  }

  /**
   * Inserts `all`; `token` names the input range. Resolves true once every row is stored or
   * dead-lettered; false only when it gave up waiting for ClickHouse (`shouldStop`).
   */
  async write(all: Rows, token: string, origin: Origin, shouldStop: () => boolean = () => false): Promise<boolean> {
    for (const table of TABLES) {
      const rows = all[table];
      if (rows.length === 0) continue;
      if (!(await this.insert(table, rows, token, origin, shouldStop))) return false;
      (all as Record<Table, TableRows>)[table] = TableRows.empty(table); // written: a second call with the same rows skips it
    }
    return true;
  }

  private async insert(table: Table, rows: TableRows, token: string, origin: Origin, shouldStop: () => boolean): Promise<boolean> {
    const split = async () => {
      const half = rows.length >> 1;
      return (await this.insert(table, rows.slice(0, half), `${token}/0`, origin, shouldStop)) &&
        this.insert(table, rows.slice(half), `${token}/1`, origin, shouldStop);
    };
    if (rows.length > 1 && rows.byteLength > (this.o.maxInsertBytes ?? MAX_INSERT_BYTES)) return split();
    try {
      await this.retried(shouldStop, () => this.timed(() => this.o.store.insert(table, rows, token)), table, rows.length);
    } catch (e) {
      if (isCtpipeError(e, 'STORE_UNAVAILABLE')) return false;
      if (!isCtpipeError(e, 'STORE_ROWS_REFUSED') || table === 'dead_letters') throw e;
      if (rows.length === 1) return this.refuse(table, rows.text(0), e.message, token, origin, shouldStop);
      return split();
    }
    this.m.rows.inc({ table }, rows.length);
    this.activity().rows += rows.length;
    return true;
  }

  /** A row ClickHouse refused goes to dead_letters, with the reason and the row itself (its TabSeparated text). */
  private async refuse(table: Table, text: string, reason: string, token: string, origin: Origin, shouldStop: () => boolean): Promise<boolean> {
    const letter = {
      topic: `rows:${table}`, partition: Math.max(0, origin.partition), offset: Math.max(0, origin.offset),
      reason: `${reason} (input ${origin.input}, token ${table}:${token})`, payload_hex: Buffer.from(text).subarray(0, 4096).toString('hex'),
    };
    try {
      await this.retried(shouldStop, () => this.o.store.insert('dead_letters', TableRows.of('dead_letters', [letter]), `refused:${table}:${token}`), 'dead_letters', 1);
    } catch (e) {
      if (isCtpipeError(e, 'STORE_UNAVAILABLE')) return false;
      throw e;
    }
    this.m.refused.inc({ table });
    this.activity().dead_letters++;
    if (this.refusedLogs++ < 10 || this.refusedLogs % 1000 === 0) {
      this.o.log.warn({ table, reason, input: origin.input, refused: this.refusedLogs }, 'ClickHouse refused a row; it is in dead_letters and the input goes on');
    }
    return true;
  }

  private async timed(fn: () => Promise<void>): Promise<void> {
    const end = this.m.insertSeconds.startTimer();
    try {
      await fn();
    } finally {
      const took = end();
      const a = this.activity();
      a.inserts++;
      a.insert_seconds += took;
      a.insert_max_seconds = Math.max(a.insert_max_seconds, took);
    }
  }

  private async retried(shouldStop: () => boolean, fn: () => Promise<void>, table: Table, rows: number): Promise<void> {
    await retrying(fn, {
      minMs: this.o.retryMinMs, maxMs: this.o.retryMaxMs, shouldStop,
      onError: (e, _attempt, failure) => {
        this.m.insertErrors.inc();
        this.activity().insert_errors++;
        if (failure !== 'transient') return;
        if (this.storeUp) this.o.log.warn({ err: e.message, table, rows }, 'ClickHouse insert failed; holding the input position and retrying');
        this.storeUp = false;
        this.m.storeUp.set(0);
      },
    });
    if (!this.storeUp) this.o.log.info('ClickHouse accepts inserts again');
    this.storeUp = true;
    this.m.storeUp.set(1);
  }
}
