/**
 * Ingest cost per table and path, the old insert forms and the new side by side in one run:
 *
 * - old: `flows` as TabSeparated lines (flowTsv), the other tables as JSONEachRow objects (times as
 *   unix seconds.nanoseconds), sent inline after the INSERT as ctpipe did before RowBinary: chDB's
 *   connection (chdb/connection, what @clickhouse/client's insert calls) for the embedded store,
 *   an HTTP POST for the server;
 * - new: rows encoded as RowBinary as they are made (table-rows.ts), inserted by the store: a tmpfs
 *   file read with `INSERT ... SELECT FROM file()` embedded, `INSERT ... FORMAT RowBinary` to a
 *   server.
 *
 * The server is lab/clickhouse-front.ts (ClickHouse's HTTP interface over chDB) in a child process,
 * so its CPU is read apart (/proc/PID/stat). Note that the front hands an old-style text body to
 * chDB inline, paying chDB's inline cost a real server does not have.
 *
 * Per row: JS CPU to build the insert's body (process.cpuUsage around the encoder: the event loop
 * alone runs then), ClickHouse CPU (embedded: this process during the insert, chDB's threads and
 * the call's own JS; server: the front's process), the client's CPU during a server insert, and
 * rows/s built and inserted one batch after the other. Medians of `rounds` rounds, old and new
 * alternating; every round checks that every row was stored.
 *
 * runIngestBreakdown: where ClickHouse's time goes in a `flows` insert, embedded: into a Null table
 * (reading and parsing), a MergeTree without key, indexes or views (and writing parts), `flows`'
 * own definition without its view (sorting, partitions, skip indexes, codecs), and `flows` itself
 * (the view); inline TabSeparated against RowBinary files read with plain types (what the store
 * sends) and with the table's LowCardinality types.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createChdbConnection } from 'chdb/connection';
import { packageRoot } from '../common/paths.js';
import { chTime, chTypeName, type ChType, type ColumnDef, type Time } from '../processor/clickhouse/ch-type.js';
import { LoadFiles } from '../processor/clickhouse/load-files.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { eventRow, flowTsv } from '../processor/clickhouse/rows.js';
import { openStore } from '../processor/clickhouse/store.js';
import { TableRows } from '../processor/clickhouse/table-rows.js';
import { TABLE_COLUMNS, type TableRow } from '../processor/clickhouse/tables.js';
import { LifecycleEngine } from '../processor/lifecycle/engine.js';
import type { FlowRow } from '../processor/lifecycle/flow-row.js';
import type { Store, Table } from '../processor/store.js';
import { recordChunks } from './lifecycle.js';

export interface IngestRow {
  table: Table;
  path: 'embedded' | 'server';
  format: 'TabSeparated' | 'JSONEachRow' | 'RowBinary';
  rows: number;
  batch: number;
  rowsPerSecond: number;
  /** Building the insert's body. */
  jsUsPerRow: number;
  /** ClickHouse's side of the insert (see above). */
  chUsPerRow: number;
  /** The client's CPU while a server inserts (0 embedded). */
  clientUsPerRow: number;
  bytesPerRow: number;
}

export interface IngestResult {
  rows: IngestRow[];
  loadavg: [number, number];
  cpus: number;
}

const DB = 'ctpipe';
const SETTINGS = { insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, optimize_on_insert: 0 };
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** A row as the old JSONEachRow inserts wrote it: times as text, everything else as it is. */
function jsonRow(columns: readonly ColumnDef[], row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const text = (c: ChType, v: unknown): unknown => {
    if (v === null) return null;
    switch (c.t) {
      case 'Nullable': case 'LowCardinality': return text(c.of, v);
      case 'Array': return (v as unknown[]).map((x) => text(c.of, x));
      case 'DateTime64': return chTime(v as Time, c.precision);
      default: return v;
    }
  };
  for (const c of columns) if (!c.filled) out[c.name] = text(c.type, row[c.name]);
  return out;
}

/** Rows of each table: flows and events from the lifecycle bench's connections, the rest made up alike. */
export function tableRows(flows: number, small: number): { [T in Table]: TableRow<T>[] } {
  const flowRows: FlowRow[] = [];
  const records: TableRow<'events'>[] = [];
  const e = new LifecycleEngine({ maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onRow: (r) => flowRows.push(r), onHealth: () => {} });
  for (const chunk of recordChunks(flows)) {
    for (const r of chunk) {
      e.apply(r);
      if (records.length < flows) records.push(eventRow(r));
    }
  }
  const at = (i: number): Time => ({ sec: 1_795_000_000 + Math.floor(i / 100), nsec: (i % 100) * 10_000_007 });
  const n = (f: (i: number) => unknown) => Array.from({ length: small }, (_, i) => f(i));
  return {
    flows: flowRows,
    events: records,
    host_stats: n((i) => ({
      host: `host-${i % 50}`, netns: '', run: 'run-1', ts: at(i), interval_s: 10.000123, entries: 1000 + i, max_entries: 262144, found: i, invalid: i % 7,
      insert: 0, insert_failed: 0, drop: 0, early_drop: 0, error: 0, search_restart: i % 3, clash_resolve: 0, chaintoolong: 0,
      exp_new: 1, exp_create: 1, exp_delete: 1, cpus: 2, reset: false, collector_events: 40_000 + i,
    })) as TableRow<'host_stats'>[],
    pipeline_health: n((i) => ({
      host: `host-${i % 50}`, run: 'run-1', ts: at(i), kind: i % 2 ? 'gap' : 'loss', count: 10 + i,
      first_seq: i % 2 ? 1000 * i : null, last_seq: i % 2 ? 1000 * i + 9 : null, detail: `seq ${1000 * i}..${1000 * i + 9} never arrived`,
    })) as TableRow<'pipeline_health'>[],
    anomalies: n((i) => ({
      host: `host-${i % 50}`, netns: '', kind: 'port_scan', severity: 'warning', started_at: at(i), ended_at: i % 3 ? at(i + 60) : null,
      score: 7.25, baseline: 3.5, observed: 120, details: JSON.stringify({ src: `198.51.100.${i & 255}`, ports: 120, first: [22, 80, 443] }),
      flow_ids: [(i * 7919).toString(16).padStart(16, '0'), (i * 104729).toString(16).padStart(16, '0')], version: 1_795_000_000_000 + i,
    })) as TableRow<'anomalies'>[],
    dead_letters: n((i) => ({
      topic: 'ctpipe.events.v1', partition: i % 4, offset: 1_000_000 + i, reason: 'RECORD_DECODE: a published record could not be decoded',
      payload_hex: Buffer.from(`bad record ${i} `.repeat(4)).toString('hex'),
    })) as TableRow<'dead_letters'>[],
    processor_stats: n((i) => ({
      ts: { sec: 1_795_000_000 + i * 10, nsec: 123_000_000 }, processor: `proc-${i % 4}`, partition: i % 16, lag: i % 1000, records: 500_000,
      rows: 60_000, inserts: 12, insert_seconds: 1.25, insert_max_seconds: 0.3, insert_errors: 0, dead_letters: 0,
    })) as TableRow<'processor_stats'>[],
  };
}

/** The front in a child process: its URL, and its CPU time so far (us). */
async function startServer(dir: string): Promise<{ url: string; child: ChildProcess; cpu: () => number }> {
  const front = JSON.stringify(path.join(packageRoot(), 'dist', 'lab', 'clickhouse-front.js'));
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { ClickHouseFront } = await import(${front});
    const f = await ClickHouseFront.start(${JSON.stringify(dir)});
    process.stdout.write(f.url + '\\n');
    process.stdin.on('end', async () => { await f.close(); process.exit(0); });
    process.stdin.resume();`], { stdio: ['pipe', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the ClickHouse front exited (${code})`)));
  });
  const tick = 1e6 / 100; // USER_HZ
  const cpu = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * tick; // utime, stime
  };
  return { url, child, cpu };
}

/** POSTs `body` on a connection of its own (a kept-alive one the server closed meanwhile fails a POST). */
function post(url: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`server insert: ${res.statusCode} ${text}`))));
    });
    req.once('error', reject);
    req.end(body);
  });
}

interface Path {
  name: 'embedded' | 'server';
  store: Store;
  /** The old inline text insert. */
  text: (table: Table, names: readonly string[], format: string, body: Buffer, token: string) => Promise<void>;
  /** CPU of ClickHouse's side so far (us). */
  chCpu: () => number;
}

export async function runIngest(flows = 200_000, small = 50_000, rounds = 3, progress: (s: string) => void = () => {}): Promise<IngestResult> {
  const loadBefore = os.loadavg()[0]!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctpipe-ingest-'));
  const ctx = { db: DB, flowsTtlDays: 3650, eventsTtlDays: 3650 }; // the bench's times are from 2026-11-18
  const embedded = await openStore({ url: `chdb:${path.join(dir, 'embedded')}`, database: DB });
  const conn = createChdbConnection({ path: path.join(dir, 'embedded') });
  const server = await startServer(path.join(dir, 'server'));
  const remote = await openStore({ url: server.url, database: DB });
  const paths: Path[] = [
    {
      name: 'embedded', store: embedded, chCpu: cpuUs,
      text: async (table, names, format, body, token) => {
        await conn.insert({ query: `INSERT INTO ${DB}.${table} (${names.join(', ')}) FORMAT ${format}`, values: body.toString(), clickhouse_settings: { ...SETTINGS, insert_deduplication_token: token } } as Parameters<typeof conn.insert>[0]);
      },
    },
    {
      name: 'server', store: remote, chCpu: server.cpu,
      text: async (table, names, format, body, token) => {
        const q = new URLSearchParams({ query: `INSERT INTO ${DB}.${table} (${names.join(', ')}) FORMAT ${format}`, insert_deduplication_token: token, ...Object.fromEntries(Object.entries(SETTINGS).map(([k, v]) => [k, String(v)])) });
        await post(`${server.url}/?${q}`, body);
      },
    },
  ];
  const out: IngestRow[] = [];
  try {
    for (const p of paths) await migrate(p.store, ctx);
    progress('ingest: making rows');
    const all = tableRows(flows, small);
    for (const table of Object.keys(TABLE_COLUMNS) as Table[]) {
      const rows = all[table] as Record<string, unknown>[];
      const cols = TABLE_COLUMNS[table] as readonly ColumnDef[];
      const names = cols.filter((c) => !c.filled).map((c) => c.name);
      const batch = table === 'flows' || table === 'events' ? 50_000 : 10_000;
      const oldFormat = table === 'flows' ? 'TabSeparated' : 'JSONEachRow';
      const build = {
        old: (part: Record<string, unknown>[]) => Buffer.from(`${(table === 'flows' ? part.map((r) => flowTsv(r as FlowRow)) : part.map((r) => JSON.stringify(jsonRow(cols, r)))).join('\n')}\n`),
        new: (part: Record<string, unknown>[]) => TableRows.of(table, part as TableRow<typeof table>[]),
      };
      for (const p of paths) {
        const runs: Record<'old' | 'new', { js: number; ch: number; client: number; wall: number; bytes: number }[]> = { old: [], new: [] };
        for (let round = 0; round < rounds; round++) {
          for (const form of ['old', 'new'] as const) {
            progress(`ingest: ${table} ${p.name} ${form === 'old' ? oldFormat : 'RowBinary'} round ${round + 1}`);
            await p.store.command(`TRUNCATE TABLE ${DB}.${table}`);
            let js = 0;
            let ch = 0;
            let client = 0;
            let bytes = 0;
            const t0 = performance.now();
            for (let i = 0; i < rows.length; i += batch) {
              const part = rows.slice(i, i + batch);
              const c0 = cpuUs();
              const body = build[form](part);
              const c1 = cpuUs();
              const s0 = p.chCpu();
              const token = `bench:${round}:${form}:${i}`;
              if (form === 'old') await p.text(table, names, oldFormat, body as Buffer, token);
              else await p.store.insert(table, body as TableRows, token);
              js += c1 - c0;
              if (p.name === 'server') {
                ch += p.chCpu() - s0;
                client += cpuUs() - c1;
              } else ch += cpuUs() - c1;
              bytes += form === 'old' ? (body as Buffer).length : (body as TableRows).byteLength;
            }
            const wall = (performance.now() - t0) / 1000;
            const [stored] = await p.store.query<{ n: string }>(`SELECT count() n FROM ${DB}.${table}`);
            if (Number(stored!.n) !== rows.length) throw new Error(`ingest guard: ${stored!.n} of ${rows.length} ${table} rows stored (${p.name}, ${form})`);
            runs[form].push({ js: js / rows.length, ch: ch / rows.length, client: client / rows.length, wall, bytes: bytes / rows.length });
          }
        }
        for (const form of ['old', 'new'] as const) {
          const r = runs[form];
          out.push({
            table, path: p.name, format: form === 'old' ? oldFormat : 'RowBinary', rows: rows.length, batch,
            rowsPerSecond: rows.length / median(r.map((x) => x.wall)), jsUsPerRow: median(r.map((x) => x.js)), chUsPerRow: median(r.map((x) => x.ch)),
            clientUsPerRow: median(r.map((x) => x.client)), bytesPerRow: median(r.map((x) => x.bytes)),
          });
        }
      }
    }
  } finally {
    await remote.close();
    server.child.stdin!.end();
    await new Promise((r) => server.child.once('exit', r));
    await conn.close();
    await embedded.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows: out, loadavg: [loadBefore, os.loadavg()[0]!], cpus: os.cpus().length };
}

export interface BreakdownRow {
  target: string;
  format: string;
  chUsPerRow: number;
}

export async function runIngestBreakdown(flows = 200_000, batch = 50_000, rounds = 3): Promise<BreakdownRow[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctpipe-breakdown-'));
  const store = await openStore({ url: `chdb:${dir}`, database: DB });
  const conn = createChdbConnection({ path: dir });
  const files = LoadFiles.open();
  try {
    await migrate(store, { db: DB, flowsTtlDays: 3650, eventsTtlDays: 3650 });
    const targets: [string, string][] = [
      ['flows_null', 'Null table: reading and parsing'], ['flows_bare', '+ parts (MergeTree, no key)'],
      ['flows_plain', "+ flows' key, partitions, indexes, codecs"], ['flows', '+ the materialized view (flows)'],
    ];
    await store.command(`CREATE TABLE ${DB}.flows_null AS ${DB}.flows ENGINE = Null`);
    await store.command(`CREATE TABLE ${DB}.flows_bare AS ${DB}.flows ENGINE = MergeTree ORDER BY tuple()`);
    await store.command(`CREATE TABLE ${DB}.flows_plain AS ${DB}.flows`);
    const rows = tableRows(flows, 0).flows;
    const texts: string[] = [];
    const paths: string[] = [];
    let codec = TableRows.empty('flows').codec;
    for (let i = 0; i < rows.length; i += batch) {
      const part = rows.slice(i, i + batch);
      texts.push(`${part.map((r) => flowTsv(r)).join('\n')}\n`);
      const b = TableRows.of('flows', part);
      codec = b.codec;
      paths.push(files.write(b.pieces));
    }
    const lc = codec.columns.map((c) => `${c.name} ${chTypeName(c.type)}`).join(', ');
    const formats = ['TabSeparated inline', 'RowBinary file', 'RowBinary file, LowCardinality types'];
    const us: Record<string, number[]> = {};
    let token = 0;
    for (let round = 0; round < rounds; round++) {
      for (const [t] of targets) {
        for (const format of formats) {
          if (t !== 'flows_null') await store.command(`TRUNCATE TABLE ${DB}.${t}`);
          const c0 = cpuUs();
          for (let i = 0; i < paths.length; i++) {
            const into = `INSERT INTO ${DB}.${t} (${codec.names.join(', ')}) SETTINGS insert_deduplication_token = 'bd${token++}', insert_deduplicate = 1, deduplicate_blocks_in_dependent_materialized_views = 1, optimize_on_insert = 0`;
            if (format === formats[0]) await conn.insert({ query: `${into} FORMAT TabSeparated`, values: texts[i]! } as Parameters<typeof conn.insert>[0]);
            else await store.command(`${into} SELECT * FROM file({p:String}, 'RowBinary', {s:String})`, { p: paths[i], s: format === formats[1] ? codec.structure : lc });
          }
          (us[`${t}\0${format}`] ??= []).push((cpuUs() - c0) / rows.length);
        }
      }
    }
    return targets.flatMap(([t, target]) => formats.map((format) => ({ target, format, chUsPerRow: median(us[`${t}\0${format}`]!) })));
  } finally {
    files.close();
    await conn.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
