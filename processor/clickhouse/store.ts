/**
 * The store on ClickHouse, and the only processor file that imports @clickhouse/client and chdb.
 * `chdb:PATH` opens an embedded ClickHouse (chDB) in this process; `http(s)://...` a server. Both
 * go through the same client, so every query and insert in ctpipe has one code path.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import type { Checkpoint, ColumnMeta, InputKey, InputRange, Store, Table } from '../store.js';
import { tsvText } from './tsv.js';
import { FLOW_COLUMNS } from './rows.js';

// The client would print its own errors to stdout; ctpipe reports them through its logger instead.
const QUIET = { level: ClickHouseLogLevel.OFF };

export interface StoreOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  requestTimeoutMs?: number;
}

/** Checkpoint chunks go in inserts of about this many bytes. */
const CHUNK_INSERT_BYTES = 8 << 20;
const slotKey = (k: InputKey) => `${k.group}\0${k.topic}\0${k.partition}`;

/** Insert settings: the token deduplicates a retried or replayed insert, views included. */
const insertSettings = (token: string): ClickHouseSettings => ({
  insert_deduplication_token: token, insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, optimize_on_insert: 0,
});

class ClickHouseStore implements Store {
  constructor(private readonly client: ClickHouseClient, readonly db: string) {}

  async insert(table: Table, rows: readonly unknown[], token: string): Promise<void> {
    const clickhouse_settings = insertSettings(`${table}:${token}`);
    if (table === 'flows') {
      // TabSeparated lines (rows.ts): ClickHouse parses them about twice as fast as JSON
      const body = Buffer.from(`${(rows as readonly string[]).join('\n')}\n`);
      await this.client.insert({ table: `${this.db}.flows`, values: Readable.from([body], { objectMode: false }), format: 'TabSeparated', columns: FLOW_COLUMNS as [string, ...string[]], clickhouse_settings });
    } else {
      await this.client.insert({ table: `${this.db}.${table}`, values: rows as Record<string, unknown>[], format: 'JSONEachRow', clickhouse_settings });
    }
  }

  async logRange(k: InputKey, r: InputRange): Promise<void> {
    await this.client.insert({
      table: `${this.db}.processor_batches`, format: 'JSONEachRow',
      values: [{ group_id: k.group, topic: k.topic, partition: k.partition, first_offset: r.first, last_offset: r.last }],
    });
  }

  async ranges(k: InputKey, after: number): Promise<InputRange[]> {
    const rows = await this.query<{ first_offset: string; last_offset: string }>(
      `SELECT DISTINCT first_offset, last_offset FROM ${this.db}.processor_batches
       WHERE group_id = {g:String} AND topic = {t:String} AND partition = {p:UInt32} AND first_offset > {o:Int64} ORDER BY first_offset`,
      { g: k.group, t: k.topic, p: k.partition, o: after });
    return rows.map((x) => ({ first: Number(x.first_offset), last: Number(x.last_offset) }));
  }

  /** Each input's checkpoint slot and snapshot as last read or written by this process. */
  private readonly slots = new Map<string, number>();

  async loadCheckpoint(k: InputKey): Promise<Checkpoint | undefined> {
    const where = 'group_id = {g:String} AND topic = {t:String} AND partition = {p:UInt32}';
    const params = { g: k.group, t: k.topic, p: k.partition };
    const [cp] = await this.query<{ offset: string; state: string; snapshot: string; slot: number; chunks: number }>(
      `SELECT offset, state, snapshot, slot, chunks FROM ${this.db}.processor_checkpoints FINAL WHERE ${where}`, params);
    if (!cp) return undefined;
    this.slots.set(slotKey(k), cp.snapshot ? cp.slot : 1);
    if (!cp.snapshot) return { offset: Number(cp.offset), chunks: [Buffer.from(cp.state, 'base64')] }; // before chunks: JSON in the row
    const rows = await this.query<{ seq: number; snapshot: string; data: string }>(
      `SELECT seq, snapshot, data FROM ${this.db}.processor_checkpoint_chunks FINAL
       WHERE ${where} AND slot = {s:UInt8} AND seq < {n:UInt32} ORDER BY seq`, { ...params, s: cp.slot, n: cp.chunks });
    if (rows.length !== cp.chunks || rows.some((r, i) => r.seq !== i || r.snapshot !== cp.snapshot)) {
      throw new CtpipeError('CHECKPOINT_INVALID', `the checkpoint of ${k.topic}:${k.partition} (snapshot ${cp.snapshot}) has ${rows.filter((r) => r.snapshot === cp.snapshot).length} of its ${cp.chunks} chunks`);
    }
    return { offset: Number(cp.offset), chunks: rows.map((r) => Buffer.from(r.data, 'base64')) };
  }

  async saveCheckpoint(k: InputKey, offset: number, chunks: readonly Buffer[], version: number): Promise<void> {
    const key = slotKey(k);
    // the slot the current checkpoint does not name: it stays whole until the row below switches
    const slot = 1 - (this.slots.get(key) ?? (await this.currentSlot(k)));
    const snapshot = `${offset}-${randomBytes(4).toString('hex')}`;
    const head = `${tsvText(k.group)}\t${tsvText(k.topic)}\t${k.partition}\t${slot}\t`;
    for (let i = 0; i < chunks.length;) {
      const lines: Buffer[] = [];
      let bytes = 0;
      for (; i < chunks.length && (lines.length === 0 || bytes < CHUNK_INSERT_BYTES); i++) {
        // base64: chDB's insert path reads text, not arbitrary bytes (ZSTD on the column takes the size back)
        const line = Buffer.from(`${head}${i}\t${snapshot}\t${chunks[i]!.toString('base64')}\t${version}\n`);
        lines.push(line);
        bytes += line.length;
      }
      await this.client.insert({
        table: `${this.db}.processor_checkpoint_chunks`, format: 'TabSeparated', values: Readable.from(lines, { objectMode: false }),
        columns: ['group_id', 'topic', 'partition', 'slot', 'seq', 'snapshot', 'data', 'version'],
      });
    }
    await this.client.insert({
      table: `${this.db}.processor_checkpoints`, format: 'JSONEachRow',
      values: [{ group_id: k.group, topic: k.topic, partition: k.partition, offset, state: '', snapshot, slot, chunks: chunks.length, version }],
    });
    this.slots.set(key, slot);
  }

  private async currentSlot(k: InputKey): Promise<number> {
    const [cp] = await this.query<{ slot: number; snapshot: string }>(
      `SELECT slot, snapshot FROM ${this.db}.processor_checkpoints FINAL WHERE group_id = {g:String} AND topic = {t:String} AND partition = {p:UInt32}`,
      { g: k.group, t: k.topic, p: k.partition });
    return cp?.snapshot ? cp.slot : 1;
  }

  async query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    return (await this.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
  }

  async queryWithMeta(sql: string, params?: Record<string, unknown>): Promise<{ meta: ColumnMeta[]; rows: Record<string, unknown>[] }> {
    const r = await (await this.client.query({ query: sql, query_params: params, format: 'JSON' })).json<Record<string, unknown>>();
    return { meta: (r.meta ?? []) as ColumnMeta[], rows: r.data };
  }

  async queryCsv(sql: string, params?: Record<string, unknown>): Promise<string> {
    return (await this.client.query({ query: sql, query_params: params, format: 'CSVWithNames' })).text();
  }

  async command(sql: string, params?: Record<string, unknown>): Promise<void> {
    await this.client.command({ query: sql, query_params: params });
  }

  database(db: string): Store {
    return new ClickHouseStore(this.client, db);
  }

  async ping(): Promise<void> {
    const r = await this.client.ping();
    if (!r.success) throw r.error;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/**
 * chDB locks DIR/status (holding the owner's PID) while a process has the directory open: name
 * that process and the ways out.
 */
function holder(path: string): string | undefined {
  let status: string;
  try {
    status = readFileSync(join(path, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = /^PID: (\d+)/m.exec(status)?.[1];
  if (!pid || !existsSync(`/proc/${pid}`)) return undefined;
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  return `the directory is in use by process ${pid} (${cmd.slice(0, 120)}); the embedded store serves one process at a time. ` +
    'Stop that process first, give this command another directory, or run a ClickHouse server and point both at it with --clickhouse-url http://HOST:8123';
}

export async function openStore(o: StoreOptions): Promise<Store> {
  const settings: ClickHouseSettings = { output_format_json_quote_64bit_integers: 1 };
  if (o.url.startsWith('chdb:')) {
    const path = o.url.slice(5) || './data';
    const { createChdbConnection } = await import('chdb/connection');
    try {
      return new ClickHouseStore(createClient({ connection: createChdbConnection({ path }), log: QUIET, clickhouse_settings: settings } as Parameters<typeof createClient>[0]), o.database);
    } catch (e) {
      throw new CtpipeError('STORE_UNAVAILABLE', `cannot open the embedded ClickHouse at ${path}: ${holder(path) ?? errorMessage(e)}`);
    }
  }
  if (!/^https?:\/\//.test(o.url)) {
    throw new CtpipeError('CONFIG_INVALID', `clickhouse.url must be chdb:PATH or http(s)://HOST:PORT, got "${o.url}"`);
  }
  const password = o.passwordFile ? readFileSync(o.passwordFile, 'utf8').trim() : o.password;
  return new ClickHouseStore(createClient({
    url: o.url, username: o.username, password, request_timeout: o.requestTimeoutMs ?? 60_000, log: QUIET, clickhouse_settings: settings,
  }), o.database);
}
