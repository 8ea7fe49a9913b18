/**
 * The store on ClickHouse, and the only processor file that imports @clickhouse/client and chdb.
 * `chdb:PATH` opens an embedded ClickHouse (chDB) in this process; `http(s)://...` a server. Both
 * go through the same client, so every query and insert in ctpipe has one code path.
 *
 * Every insert is RowBinary (rowbinary.ts). A server takes it as the body of `INSERT ... FORMAT
 * RowBinary` (`exec`); chDB reads it from a private tmpfs file (load-files.ts) with `INSERT ...
 * SELECT FROM file()`: its inline data is text, costs ~5 us a row more, and chDB would append the
 * process's stdin to an INSERT that carries data (`ctpipe run < file` stored the file's lines).
 * So on chDB no statement is ever an INSERT without a SELECT: the store refuses them.
 *
 * chDB's inserts run side by side on connections of their own (INSERTS_IN_FLIGHT), their values
 * written as escaped literals: chdb-node runs a connection's statements one at a time, and every
 * statement with bound parameters one at a time in the whole process (node_modules/chdb/index.js,
 * runExclusiveParam: chDB's parameters are not kept apart between connections), so inserts queued
 * behind each other and behind any query.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { privateDir } from '../../common/files.js';
import { describeCommandLine, redactUrls } from '../../common/redact.js';
import { INSERTS_IN_FLIGHT, type Checkpoint, type CheckpointSave, type ColumnMeta, type InputKey, type InputRange, type Store, type Table } from '../store.js';
import { chdbDirProblem, lockHolder } from './chdb-dir.js';
import { LoadFiles } from './load-files.js';
import { BATCH_COLUMNS, CHECKPOINT_CHUNK_COLUMNS, CHECKPOINT_COLUMNS } from './tables.js';
import { codecOf, type TableCodec, type TableRows } from './table-rows.js';
import { ByteSink } from './rowbinary.js';
import { readOnlyProblem } from './statements.js';
import { Pool } from './pool.js';
import { sqlString } from './tsv.js';

// The client would print its own errors to stdout; ctpipe reports them through its logger instead.
const QUIET = { level: ClickHouseLogLevel.OFF };

/** How the embedded store inserts: the files chDB reads, and the connections that run the inserts. */
interface Loads {
  files: LoadFiles;
  connections: Pool<ClickHouseClient>;
}

export interface StoreOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  requestTimeoutMs?: number;
  /** Where the embedded store's insert files go (default /dev/shm, else the OS temp directory). */
  loadDir?: string;
  /**
   * Reads only (`query`, `top`, `report`): ClickHouse's `readonly = 1` on every statement (no
   * writes, settings or table functions such as file() and url()), and one statement at a time
   * without INTO OUTFILE (statements.ts).
   */
  readonly?: boolean;
}

/**
 * Checkpoint chunks go in inserts of at most about this many bytes: one per input at fleet scale
 * (each insert has a fixed cost), a large state in a few.
 */
const CHUNK_INSERT_BYTES = 32 << 20;
const slotKey = (k: InputKey) => `${k.group}\0${k.topic}\0${k.partition}`;

/**
 * `(group_id = .. AND topic = .. AND partition = .. AND <more>) OR ...` over inputs, every value a
 * bound parameter: each input's primary-key range, for one statement over several inputs.
 */
function inputsWhere<T>(items: readonly T[], key: (x: T) => InputKey, more: (x: T, i: number, params: Record<string, unknown>) => string = () => ''):
  { where: string; params: Record<string, unknown> } {
  const params: Record<string, unknown> = {};
  const where = items.map((x, i) => {
    const k = key(x);
    Object.assign(params, { [`g${i}`]: k.group, [`t${i}`]: k.topic, [`p${i}`]: k.partition });
    const extra = more(x, i, params);
    return `(group_id = {g${i}:String} AND topic = {t${i}:String} AND partition = {p${i}:UInt32}${extra ? ` AND ${extra}` : ''})`;
  }).join(' OR ');
  return { where, params };
}

interface InputRow {
  group_id: string;
  topic: string;
  partition: number;
}
const rowKey = (r: InputRow) => slotKey({ group: r.group_id, topic: r.topic, partition: Number(r.partition) });

type InsertSettings = Record<string, string | number>;

/**
 * Insert settings: the token deduplicates a retried or replayed insert, views included; never
 * asynchronous, so an acknowledged insert is stored (chDB 26 and some servers default to async).
 */
const insertSettings = (token: string): InsertSettings => ({
  insert_deduplication_token: token, insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, optimize_on_insert: 0, async_insert: 0,
});

const SYNC: InsertSettings = { async_insert: 0 };

/**
 * An INSERT without a SELECT, or one reading `input()`: the statements ClickHouse's client feeds
 * from stdin when stdin holds data, which chDB, in this process, would do.
 */
export function readsStdin(sql: string): boolean {
  const s = sql.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--[^\n]*/g, ' ');
  return /^[\s(]*INSERT\b/i.test(s) && (!/\bSELECT\b/i.test(s) || /\binput\s*\(/i.test(s));
}

/** Encodes rows of a list as RowBinary (the store's own small inserts). */
function encodeRows(codec: TableCodec, rows: readonly Record<string, unknown>[]): Buffer[] {
  const sink = new ByteSink(1 << 16);
  for (const r of rows) codec.encode(sink, r);
  return sink.pieces(0, sink.offset);
}

class ClickHouseStore implements Store {
  /** `loads` only on chDB. */
  constructor(private readonly client: ClickHouseClient, readonly db: string, private readonly loads?: Loads, private readonly readonly = false) {}

  async insert(table: Table, rows: TableRows, token: string): Promise<void> {
    if (rows.table !== table) throw new Error(`Store.insert: ${rows.table} rows given for ${table}`);
    rows.assertEncoded();
    if (rows.length === 0) return;
    await this.load(table, rows.codec, rows.pieces, insertSettings(`${table}:${token}`));
  }

  /**
   * RowBinary `bytes` of `codec`'s columns into `table`, with `settings`. chDB: through a file, on
   * one of the insert connections, the settings in the statement (a client's settings would be SET
   * on the session and outlive the insert: a deduplication token left behind dropped the next
   * logRange as a duplicate), the token, path and structure as literals. A server: the bytes as the
   * body, the settings per request.
   */
  private async load(table: string, codec: TableCodec, bytes: readonly Buffer[], settings: InsertSettings): Promise<void> {
    const into = `INSERT INTO ${this.db}.${table} (${codec.names.join(', ')})`;
    if (!this.loads) {
      const r = await this.client.exec({ query: `${into} FORMAT RowBinary`, values: Readable.from(bytes, { objectMode: false }), clickhouse_settings: settings as ClickHouseSettings });
      for await (const _ of r.stream); // the response is empty; reading it frees the socket
      return;
    }
    const set = Object.entries(settings).map(([k, v]) => {
      if (!/^[a-z_]+$/.test(k)) throw new Error(`not a setting name: ${k}`);
      return `${k} = ${typeof v === 'number' ? Number(v) : sqlString(v)}`;
    });
    const { files, connections } = this.loads;
    const path = files.write(bytes);
    try {
      await connections.use((c) => c.command({
        query: `${into} ${set.length ? `SETTINGS ${set.join(', ')} ` : ''}SELECT * FROM file(${sqlString(path)}, 'RowBinary', ${sqlString(codec.structure)})`,
      }));
    } finally {
      await files.remove(path);
    }
  }

  async logRange(k: InputKey, r: InputRange): Promise<void> {
    // the range's own token: logged twice (a retry) it is stored once
    const codec = codecOf(BATCH_COLUMNS);
    const row = { group_id: k.group, topic: k.topic, partition: k.partition, first_offset: r.first, last_offset: r.last };
    await this.load('processor_batches', codec, encodeRows(codec, [row]), insertSettings(`range:${k.group}:${k.topic}:${k.partition}:${r.first}-${r.last}`));
  }

  async ranges(k: InputKey, after: number): Promise<InputRange[]> {
    return (await this.rangesAfter([{ key: k, after }]))[0]!;
  }

  async rangesAfter(ks: readonly { key: InputKey; after: number }[]): Promise<InputRange[][]> {
    if (ks.length === 0) return [];
    const { where, params } = inputsWhere(ks, (x) => x.key, (x, i, ps) => {
      ps[`o${i}`] = x.after;
      return `first_offset > {o${i}:Int64}`;
    });
    const rows = await this.query<InputRow & { first_offset: string; last_offset: string }>(
      `SELECT DISTINCT group_id, topic, partition, first_offset, last_offset FROM ${this.db}.processor_batches
       WHERE ${where} ORDER BY group_id, topic, partition, first_offset`, params);
    const of = new Map<string, InputRange[]>();
    for (const r of rows) {
      const list = of.get(rowKey(r)) ?? [];
      list.push({ first: Number(r.first_offset), last: Number(r.last_offset) });
      of.set(rowKey(r), list);
    }
    return ks.map((x) => of.get(slotKey(x.key)) ?? []);
  }

  /** Each input's checkpoint slot and snapshot as last read or written by this process. */
  private readonly slots = new Map<string, number>();

  async loadCheckpoint(k: InputKey): Promise<Checkpoint | undefined> {
    return (await this.loadCheckpoints([k]))[0];
  }

  /**
   * Two statements for any number of inputs, neither with FINAL (which merges every part of the
   * table's key range at read time): each input's newest checkpoint row by version, then the chunks
   * of the snapshot it names, read by their primary-key range (input, slot, seq) and streamed.
   * A snapshot's name is unique, so rows of other snapshots are never taken for it; a chunk stored
   * twice (a retried insert) is the same bytes.
   */
  async loadCheckpoints(ks: readonly InputKey[]): Promise<(Checkpoint | undefined)[]> {
    if (ks.length === 0) return [];
    const { where, params } = inputsWhere(ks, (k) => k);
    const cps = await this.query<InputRow & { offset: string; state: string; snapshot: string; slot: number; chunks: number }>(
      `SELECT group_id, topic, partition, offset, state, snapshot, slot, chunks FROM ${this.db}.processor_checkpoints
       WHERE ${where} ORDER BY version DESC LIMIT 1 BY group_id, topic, partition`, params);
    const byKey = new Map(cps.map((cp) => [rowKey(cp), cp]));
    const chunked = cps.filter((cp) => cp.snapshot && cp.chunks > 0);
    const data = new Map<string, (Buffer | undefined)[]>(chunked.map((cp) => [rowKey(cp), new Array<Buffer | undefined>(cp.chunks)]));
    if (chunked.length) {
      const q = inputsWhere(chunked, (cp) => ({ group: cp.group_id, topic: cp.topic, partition: Number(cp.partition) }), (cp, i, ps) => {
        Object.assign(ps, { [`s${i}`]: cp.slot, [`n${i}`]: cp.chunks, [`x${i}`]: cp.snapshot });
        return `slot = {s${i}:UInt8} AND seq < {n${i}:UInt32} AND snapshot = {x${i}:String}`;
      });
      const rs = await this.client.query({
        query: this.guard(`SELECT group_id, topic, partition, seq, data FROM ${this.db}.processor_checkpoint_chunks WHERE ${q.where}`), query_params: q.params, format: 'JSONEachRow',
      });
      // row by row: the states of a takeover's partitions together can be more than a string holds
      for await (const rows of rs.stream<InputRow & { seq: number; data: string }>()) {
        for (const row of rows) {
          const r = row.json();
          const list = data.get(rowKey(r));
          if (list && r.seq < list.length) list[r.seq] ??= Buffer.from(r.data, 'base64');
        }
      }
    }
    return ks.map((k) => {
      const cp = byKey.get(slotKey(k));
      if (!cp) return undefined;
      this.slots.set(slotKey(k), cp.snapshot ? cp.slot : 1);
      if (!cp.snapshot) return { offset: Number(cp.offset), chunks: [Buffer.from(cp.state, 'base64')] }; // before chunks: JSON in the row
      const chunks = data.get(slotKey(k)) ?? [];
      const have = chunks.filter((c) => c !== undefined).length;
      if (have !== cp.chunks) {
        throw new CtpipeError('CHECKPOINT_INVALID', `the checkpoint of ${k.topic}:${k.partition} (snapshot ${cp.snapshot}) has ${have} of its ${cp.chunks} chunks`);
      }
      return { offset: Number(cp.offset), chunks: chunks as Buffer[] };
    });
  }

  async saveCheckpoint(k: InputKey, offset: number, chunks: readonly Buffer[], version: number): Promise<void> {
    await this.saveCheckpoints([{ key: k, offset, chunks, version }]);
  }

  /**
   * Every input's chunks into the slot its current checkpoint does not name, each input's as soon as
   * it is given (a promise resolves: a stop's snapshots are made one after another, and each one's
   * insert overlaps the next one's snapshot), in inserts of at most about CHUNK_INSERT_BYTES; then
   * every checkpoint row in one insert: no row names a snapshot before all its chunks are stored,
   * and a failure before the rows leaves every input at its previous checkpoint.
   */
  async saveCheckpoints(given: readonly (CheckpointSave | Promise<CheckpointSave>)[]): Promise<void> {
    if (given.length === 0) return;
    const chunkCodec = codecOf(CHECKPOINT_CHUNK_COLUMNS);
    const named: (CheckpointSave & { slot: number; snapshot: string })[] = [];
    let rows: Record<string, unknown>[] = [];
    let bytes = 0;
    const flush = async () => {
      if (rows.length) await this.load('processor_checkpoint_chunks', chunkCodec, encodeRows(chunkCodec, rows), SYNC);
      rows = [];
      bytes = 0;
    };
    for (const item of given) {
      const c = await item;
      if (!this.slots.has(slotKey(c.key))) await this.currentSlots([c.key]);
      const n = { ...c, slot: 1 - this.slots.get(slotKey(c.key))!, snapshot: `${c.offset}-${randomBytes(4).toString('hex')}` };
      named.push(n);
      const k = c.key;
      for (let i = 0; i < c.chunks.length; i++) {
        // base64: the column was made when chDB's inserts took text only (ZSTD takes the size back)
        const data = c.chunks[i]!.toString('base64');
        rows.push({ group_id: k.group, topic: k.topic, partition: k.partition, slot: n.slot, seq: i, snapshot: n.snapshot, data, version: c.version });
        bytes += data.length;
        if (bytes >= CHUNK_INSERT_BYTES) await flush();
      }
      await flush(); // this input's chunks now, while the next one's snapshot is made
    }
    const codec = codecOf(CHECKPOINT_COLUMNS);
    await this.load('processor_checkpoints', codec, encodeRows(codec, named.map((c) => ({
      group_id: c.key.group, topic: c.key.topic, partition: c.key.partition, offset: c.offset, state: '', snapshot: c.snapshot, slot: c.slot, chunks: c.chunks.length, version: c.version,
    }))), SYNC);
    for (const c of named) this.slots.set(slotKey(c.key), c.slot);
  }

  /** The slots the inputs' current checkpoints name, into `slots` (1 for none: the first goes to 0). */
  private async currentSlots(ks: readonly InputKey[]): Promise<void> {
    const { where, params } = inputsWhere(ks, (k) => k);
    const rows = await this.query<InputRow & { slot: number; snapshot: string }>(
      `SELECT group_id, topic, partition, slot, snapshot FROM ${this.db}.processor_checkpoints
       WHERE ${where} ORDER BY version DESC LIMIT 1 BY group_id, topic, partition`, params);
    const of = new Map(rows.map((r) => [rowKey(r), r.snapshot ? r.slot : 1]));
    for (const k of ks) this.slots.set(slotKey(k), of.get(slotKey(k)) ?? 1);
  }

  /**
   * On chDB, a statement that would take stdin as insert data is refused (readsStdin); on a
   * read-only store, what `readonly = 1` lets through (readOnlyProblem).
   */
  private guard(sql: string): string {
    const problem = this.readonly ? readOnlyProblem(sql) : undefined;
    if (problem) throw new CtpipeError('QUERY_REFUSED', `this command only reads: ${problem}`);
    if (this.loads && readsStdin(sql)) {
      throw new CtpipeError('QUERY_FAILED', 'on the embedded store an INSERT must take its rows from a SELECT (INSERT ... SELECT ... FROM format(...) for literal data): ' +
        'chDB would append the process\'s stdin to an INSERT ... VALUES or FORMAT');
    }
    return sql;
  }

  async query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    return (await this.client.query({ query: this.guard(sql), query_params: params, format: 'JSONEachRow' })).json<T>();
  }

  async queryWithMeta(sql: string, params?: Record<string, unknown>): Promise<{ meta: ColumnMeta[]; rows: Record<string, unknown>[] }> {
    const r = await (await this.client.query({ query: this.guard(sql), query_params: params, format: 'JSON' })).json<Record<string, unknown>>();
    return { meta: (r.meta ?? []) as ColumnMeta[], rows: r.data };
  }

  async queryCsv(sql: string, params?: Record<string, unknown>): Promise<string> {
    return (await this.client.query({ query: this.guard(sql), query_params: params, format: 'CSVWithNames' })).text();
  }

  async command(sql: string, params?: Record<string, unknown>): Promise<void> {
    await this.client.command({ query: this.guard(sql), query_params: params });
  }

  database(db: string): Store {
    return new ClickHouseStore(this.client, db, this.loads, this.readonly);
  }

  async ping(): Promise<void> {
    const r = await this.client.ping();
    if (!r.success) throw r.error;
  }

  async close(): Promise<void> {
    this.loads?.files.close();
    for (const c of this.loads?.connections.all ?? []) await c.close();
    await this.client.close();
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
  // its program and subcommand only: its arguments may hold a password
  const cmd = describeCommandLine(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
  return `the directory is in use by process ${pid} (${cmd}); the embedded store serves one process at a time. ` +
    'Stop that process first, give this command another directory, or run a ClickHouse server and point both at it with --clickhouse-url http://HOST:8123';
}

export async function openStore(o: StoreOptions): Promise<Store> {
  const settings: ClickHouseSettings = { output_format_json_quote_64bit_integers: 1, ...(o.readonly ? { readonly: '1' } : {}) };
  if (o.url.startsWith('chdb:')) {
    const path = o.url.slice(5) || './data';
    const { createChdbConnection } = await import('chdb/connection');
    try {
      privateDir(path); // the store holds every connection of the host: its owner's alone
      // chDB prints its own "Cannot lock file" line before failing: the lock is checked first
      const locked = lockHolder(path);
      if (locked !== undefined) throw new CtpipeError('STORE_UNAVAILABLE', `cannot open the embedded ClickHouse at ${path}: ${holder(path) ?? `the directory is in use by process ${locked}`}`);
      const problem = chdbDirProblem(path);
      if (problem) throw new CtpipeError('STORE_UNAVAILABLE', `cannot open the embedded ClickHouse at ${path}: ${problem}`);
      const connect = () => createClient({ connection: createChdbConnection({ path }), log: QUIET, clickhouse_settings: settings } as Parameters<typeof createClient>[0]);
      const loads = { files: LoadFiles.open(o.loadDir ? [o.loadDir] : undefined), connections: new Pool(INSERTS_IN_FLIGHT, connect) };
      return new ClickHouseStore(connect(), o.database, loads, !!o.readonly);
    } catch (e) {
      if (e instanceof CtpipeError) throw e;
      throw new CtpipeError('STORE_UNAVAILABLE', `cannot open the embedded ClickHouse at ${path}: ${holder(path) ?? errorMessage(e)}`);
    }
  }
  if (!/^https?:\/\//.test(o.url)) {
    throw new CtpipeError('CONFIG_INVALID', `clickhouse.url must be chdb:PATH or http(s)://HOST:PORT, got "${redactUrls(o.url)}"`);
  }
  const password = o.passwordFile ? readFileSync(o.passwordFile, 'utf8').trim() : o.password;
  return new ClickHouseStore(createClient({
    url: o.url, username: o.username, password, request_timeout: o.requestTimeoutMs ?? 60_000, log: QUIET, clickhouse_settings: settings,
  }), o.database, undefined, !!o.readonly);
}
