/**
 * RowBinary inserts (processor/clickhouse/rowbinary.ts, table-rows.ts, store.ts) against the real
 * part: every column type the tables use, at its edges, goes in through the embedded store (a
 * tmpfs file read by chDB) and through a server's HTTP interface (lab/clickhouse-front.ts), and
 * ClickHouse gives back exactly the bytes, numbers and times written; a replayed insert adds
 * nothing, rollups included; values a column cannot hold are refused by name and dead-lettered;
 * stdin never reaches a table; the load files stay private and go away.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { silentLogger } from '../../common/log.js';
import type { ChType, ColumnDef, Time } from '../../processor/clickhouse/ch-type.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { LoadFiles } from '../../processor/clickhouse/load-files.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { readRowBinary } from '../../processor/clickhouse/rowbinary.js';
import { openStore, readsStdin } from '../../processor/clickhouse/store.js';
import { TableRows } from '../../processor/clickhouse/table-rows.js';
import { TABLE_COLUMNS, type TableRow } from '../../processor/clickhouse/tables.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import { Pipeline } from '../../processor/pipeline.js';
import { TABLES, type Store, type Table } from '../../processor/store.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { release, tempDir } from '../helpers/resources.js';

const ctx = { flowsTtlDays: 30, eventsTtlDays: 3 };

/** Strings every text format must escape or chokes on, bytes >= 0x80, and lengths past one length byte. */
const NASTY = ['', 'plain', 'tab\there', 'nl\nthere', 'blank\n\nline', 'cr\rx', 'nul\0x', "quote'", 'back\\slash', '\b\f', 'é', '€ 🙂',
  '\u0080\u00ff', 'x'.repeat(200), 'é'.repeat(100), 'lone \ud800 surrogate'];
const U64 = [0, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 18446744073709549568]; // the last: the largest double below 2^64
const I64 = [-(2 ** 63), -(2 ** 53), -1, 0, 2 ** 53 + 2];
const F64 = [0.1, -0, 1e308, 5e-324, Number.NaN, Infinity, -Infinity, 1234.5678];
const NOW = Math.floor(Date.now() / 1000);
const TIMES: Time[] = [{ sec: NOW, nsec: 999_999_999 }, { sec: NOW, nsec: 1 }, { sec: 9_223_372_035, nsec: 854_775_807 }, { sec: 0, nsec: 0 }];
/** Columns a table's TTL and partition read: times there stay near now (1970 is past every TTL). */
const TTL_COLUMNS = new Set(['first_seen', 'ts', 'started_at']);
/** Addresses as rows carry them, and the 16 bytes ClickHouse must hold. */
const ADDRS: [string, string][] = [
  ['192.0.2.1', '00000000000000000000FFFFC0000201'], ['2001:db8::1', '20010DB8000000000000000000000001'],
  ['::ffff:198.51.100.7', '00000000000000000000FFFFC6336407'], ['::', '00000000000000000000000000000000'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE'], ['0.0.0.0', '00000000000000000000FFFF00000000'],
];
const pick = <T>(list: readonly T[], i: number): T => list[i % list.length]!;

/** SQL giving a column's value exactly: bytes as hex, integers and ticks as decimal text. */
function exactSql(c: ChType, x: string): string {
  switch (c.t) {
    case 'LowCardinality': return exactSql(c.of, `toString(${x})`);
    case 'Nullable': return `if(isNull(${x}), 'NULL', ${exactSql(c.of, `assumeNotNull(${x})`)})`;
    case 'Array': return `arrayMap(y -> ${exactSql(c.of, 'y')}, ${x})`;
    case 'String': case 'IPv6': return `hex(${x})`;
    case 'Float64': return `hex(reinterpretAsFixedString(${x}))`;
    case 'DateTime64': return `toString(${c.precision === 9 ? 'toUnixTimestamp64Nano' : 'toUnixTimestamp64Milli'}(${x}))`;
    case 'Bool': return `toString(toUInt8(${x}))`;
    default: return `toString(${x})`; // integers, Enum8 (its name)
  }
}

/** The same in JS, from the value a row holds. */
function exactJs(c: ChType, v: unknown): unknown {
  switch (c.t) {
    case 'LowCardinality': return exactJs(c.of, v);
    case 'Nullable': return v === null ? 'NULL' : exactJs(c.of, v);
    case 'Array': return (v as unknown[]).map((x) => exactJs(c.of, x));
    case 'String': return Buffer.from(v as string, 'utf8').toString('hex').toUpperCase();
    case 'IPv6': { // dotted IPv4 (what a row read back holds) is IPv4-mapped
      const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(v as string);
      return v4 ? `00000000000000000000FFFF${v4.slice(1).map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase()}` : ADDRS.find(([t]) => t === v)![1];
    }
    case 'Float64': {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v as number);
      return b.toString('hex').toUpperCase();
    }
    case 'DateTime64': {
      const t = v as Time;
      return c.precision === 9 ? String(BigInt(t.sec) * 10n ** 9n + BigInt(t.nsec)) : String(BigInt(t.sec) * 1000n + BigInt(Math.floor(t.nsec / 1e6)));
    }
    case 'Bool': return v ? '1' : '0';
    case 'Enum8': return v;
    default: return BigInt(v as number).toString();
  }
}

/** Row `i` of a table: each column an edge value of its type, different rows different edges. */
function edgeValue(col: ColumnDef, i: number): unknown {
  const value = (c: ChType, k: number): unknown => {
    switch (c.t) {
      case 'LowCardinality': return value(c.of, k);
      case 'Nullable': return k % 3 === 0 ? null : value(c.of, k);
      case 'Array': return Array.from({ length: k % 4 }, (_, j) => value(c.of, k + j + 1));
      case 'String': return col.values ? pick(col.values, k) : col.plain ? `plain-${k}` : pick(NASTY, k);
      case 'IPv6': return pick(ADDRS, k)[0];
      case 'Float64': return pick(F64, k);
      case 'DateTime64': return pick(TTL_COLUMNS.has(col.name) ? TIMES.slice(0, 2) : TIMES, k);
      case 'Bool': return k % 2 === 1;
      case 'Enum8': return pick(Object.keys(c.values), k);
      case 'UInt8': return pick([0, 255, 7], k);
      case 'UInt16': return pick([0, 65535, 443], k);
      case 'UInt32': return pick([0, 4294967295, 123456], k);
      case 'Int32': return pick([-(2 ** 31), 2 ** 31 - 1, -1], k);
      case 'UInt64': return pick(U64, k);
      case 'Int64': return pick(I64, k);
    }
  };
  return value(col.type, i);
}

function edgeRows<T extends Table>(table: T, n: number): TableRow<T>[] {
  const cols = TABLE_COLUMNS[table].filter((c: ColumnDef) => !c.filled);
  return Array.from({ length: n }, (_, i) => Object.fromEntries(cols.map((c: ColumnDef, k: number) => [c.name, edgeValue(c, i + k)])) as TableRow<T>);
}

/** What ClickHouse holds of `table`, exactly, as sorted JSON lines. */
async function stored(store: Store, db: string, table: Table): Promise<string[]> {
  const cols = TABLE_COLUMNS[table].filter((c: ColumnDef) => !c.filled);
  const rows = await store.query<Record<string, unknown>>(`SELECT ${cols.map((c: ColumnDef) => `${exactSql(c.type, c.name)} AS ${c.name}`).join(', ')} FROM ${db}.${table}`);
  return rows.map((r) => JSON.stringify(r)).sort();
}

function expected(table: Table, rows: readonly Record<string, unknown>[]): string[] {
  const cols = TABLE_COLUMNS[table].filter((c: ColumnDef) => !c.filled);
  return rows.map((r) => JSON.stringify(Object.fromEntries(cols.map((c: ColumnDef) => [c.name, exactJs(c.type, r[c.name])])))).sort();
}

describe('RowBinary inserts', () => {
  let dir: string;
  let store: Store;
  let front: ClickHouseFront;
  let viaServer: Store;
  beforeAll(async () => {
    dir = tempDir('rowbinary');
    // one chDB data directory per process: the front serves the same one, each test its own databases
    store = await openStore({ url: `chdb:${path.join(dir, 'db')}`, database: 'ctpipe' });
    front = await ClickHouseFront.start(path.join(dir, 'db'));
    viaServer = await openStore({ url: front.url, database: 'ctpipe' });
  }, 60_000);
  const both = () => [['embedded', store], ['server', viaServer]] as const;
  afterAll(() => release(viaServer, front, store, dir));

  it('stores every column type at its edges exactly as written, embedded and through a server', async () => {
    for (const [name, s] of both()) {
      await migrate(s, { ...ctx, db: `edges_${name}` });
      const db = s.database(`edges_${name}`);
      for (const table of TABLES) {
        const rows = edgeRows(table, 24);
        await db.insert(table, TableRows.of(table, rows), 'edges');
        expect([name, table, await stored(s, `edges_${name}`, table)]).toEqual([name, table, expected(table, rows)]);
      }
    }
    expect(front.served.binaryInserts).toBe(TABLES.length);
  }, 60_000);

  it('reads back in JS what it wrote (the dead letters\' text comes from there)', () => {
    for (const table of TABLES) {
      const rows = edgeRows(table, 24);
      const batch = TableRows.of(table, rows);
      const back = readRowBinary(TABLE_COLUMNS[table], batch.bytes);
      expect(expected(table, back)).toEqual(expected(table, rows));
      // a slice is the same rows' bytes
      expect(expected(table, readRowBinary(TABLE_COLUMNS[table], batch.slice(5, 9).bytes))).toEqual(expected(table, rows.slice(5, 9)));
    }
  });

  it('keeps a batch in blocks, never copied to grow: slices across block edges, inserted whole', async () => {
    const rows = edgeRows('flows', 3000);
    const batch = TableRows.of('flows', rows);
    expect(batch.pieces.length).toBeGreaterThan(2);
    expect(batch.pieces.reduce((n, b) => n + b.length, 0)).toBe(batch.byteLength);
    for (const [a, b] of [[0, 3000], [1, 2999], [700, 2300], [1500, 1501]] as const) {
      expect(expected('flows', readRowBinary(FLOW_COLUMN_DEFS, batch.slice(a, b).bytes))).toEqual(expected('flows', rows.slice(a, b)));
    }
    for (const [name, s] of both()) {
      await migrate(s, { ...ctx, db: `blocks_${name}` });
      await s.database(`blocks_${name}`).insert('flows', batch, 'blocks');
      expect(await stored(s, `blocks_${name}`, 'flows')).toEqual(expected('flows', rows));
    }
  }, 60_000);

  it('refuses, by column, a value its column cannot hold; the other rows are untouched', () => {
    const good = edgeRows('flows', 3) as Record<string, unknown>[];
    const cases: [string, unknown, RegExp][] = [
      ['proto', 300, /flows\.proto: 300 is not a UInt8/], ['ct_id', -1, /flows\.ct_id: -1 is not a UInt32/],
      ['orig_bytes', 1.5, /flows\.orig_bytes: 1\.5 is not a UInt64/], ['orig_packets', '5', /flows\.orig_packets: "5" is not a UInt64/],
      ['version', 2 ** 64, /flows\.version: .* is not a UInt64/], ['family', 'ipv5', /flows\.family: "ipv5" is not one of Enum8/],
      ['orig_src', '300.1.2.3', /flows\.orig_src: "300\.1\.2\.3" is not an IP address/], ['first_seen', { sec: -1, nsec: 0 }, /flows\.first_seen: .* is outside DateTime64\(9\)'s range/],
      ['ended_at', { sec: 1, nsec: 1e9 }, /flows\.ended_at: .* is not a time/], ['run', null, /flows\.run: null is not a string/],
      ['tcp_states', 'SYN_SENT', /flows\.tcp_states: "SYN_SENT" is not an array/], ['assured', 1, /flows\.assured: 1 is not a Bool/],
      ['duration_ms', undefined, /flows\.duration_ms: undefined is not a number/],
    ];
    for (const [col, v, why] of cases) {
      const batch = TableRows.empty('flows');
      batch.push(good[0] as FlowRow);
      batch.push({ ...good[1], [col]: v } as FlowRow);
      batch.push(good[2] as FlowRow);
      expect(batch.length).toBe(3);
      expect(() => batch.assertEncoded()).toThrow(why);
      expect(() => batch.slice(1, 2).assertEncoded()).toThrow(why);
      expect(() => batch.slice(0, 1).assertEncoded()).not.toThrow();
      expect(() => batch.slice(2).assertEncoded()).not.toThrow();
      expect(expected('flows', readRowBinary(FLOW_COLUMN_DEFS, batch.bytes))).toEqual(expected('flows', [good[0]!, good[2]!]));
      expect(batch.text(1).split('\t').length).toBe(FLOW_COLUMN_DEFS.length); // the row as text, for its dead letter
    }
  });

  it('dead-letters, as its text, a row ClickHouse itself refuses (a constraint), embedded and through a server', async () => {
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    for (const [name, s] of both()) {
      const db = `refused_${name}`;
      await migrate(s, { ...ctx, db });
      // one flow's row breaks a rule the table was given by hand
      const engine = { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 };
      const rows: FlowRow[] = [];
      const e = new LifecycleEngine({ ...engine, onRow: (r) => rows.push(r), onHealth: () => {} });
      for (const r of recs) e.apply(r);
      const p = new Pipeline({ store: s.database(db), rawEvents: false, log: silentLogger, registry: new Registry(), engine });
      p.process(recs);
      const bad = rows.find((r) => r.end_reason === 'destroy')!;
      await s.command(`ALTER TABLE ${db}.flows ADD CONSTRAINT not_that CHECK flow_id != '${bad.flow_id}'`);
      expect(await p.write('t:0:1-100', { origin: { input: 'topic', partition: 1, offset: 7 } })).toBe(true);
      const [n] = await s.query<{ n: string }>(`SELECT uniqExact(flow_id) n FROM ${db}.flows`);
      expect(Number(n!.n)).toBe(new Set(rows.map((r) => r.flow_id)).size - 1);
      const letters = await s.query<{ reason: string; row: string }>(`SELECT reason, unhex(payload_hex) row FROM ${db}.dead_letters`);
      expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/^VIOLATED_CONSTRAINT 469: .*not_that.*\(input topic, token flows:t:0:1-100(\/[01])+\)$/)]);
      expect(letters[0]!.row.split('\t').slice(0, 4)).toEqual(['h', '', 'r', bad.flow_id]); // host, netns (none), run, flow_id
    }
  }, 60_000);

  it('a replayed insert under the same token adds nothing, rollups included; another token adds again', async () => {
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    for (const [name, s] of both()) {
      // the fixture's events are from 2026-11-21: under a 3-day TTL a TTL merge may empty the part
      // between the writes (one ran at once once flows inserts looked names up in a dictionary)
      await migrate(s, { ...ctx, eventsTtlDays: 3650, db: `replay_${name}` });
      const db = s.database(`replay_${name}`);
      const counts = async () => Promise.all(['flows', 'flows_1m', 'fleet_1m', 'events'].map(async (t) =>
        Number(((await s.query<{ n: string }>(`SELECT ${t === 'flows_1m' || t === 'fleet_1m' ? 'sum(flows)' : 'count()'} n FROM replay_${name}.${t}`))[0]!.n))));
      const write = async (token: string) => {
        const p = new Pipeline({ store: db, rawEvents: true, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
        p.process(recs);
        expect(await p.write(token)).toBe(true);
      };
      await write('t:0:1-100');
      const once = await counts();
      expect(once[0]).toBeGreaterThan(5);
      expect(once[1]).toBeGreaterThan(0);
      await write('t:0:1-100');
      expect(await counts()).toEqual(once);
      await write('t:0:101-200');
      expect(await counts()).toEqual(once.map((n) => 2 * n));
    }
  }, 60_000);

  it('takes any token as it is: each stored once, none taken for another, none escaping its quotes', async () => {
    // the token names the input, whose host any writer to the topic chooses; chDB gets it as a literal
    const tokens = ["a'b", "a\\'b", "a\\\\'b", "x', insert_deduplicate = 0 --", 'line\nbreak\ttab', '{s0:String}', "h'); DROP TABLE x; --", 'ünï €'];
    for (const [name, s] of both()) {
      await migrate(s, { ...ctx, db: `tokens_${name}` });
      const db = s.database(`tokens_${name}`);
      const row = edgeRows('pipeline_health', 1);
      for (let pass = 0; pass < 2; pass++) for (const t of tokens) await db.insert('pipeline_health', TableRows.of('pipeline_health', row), t);
      const [r] = await s.query<{ n: string }>(`SELECT count() n FROM tokens_${name}.pipeline_health`);
      expect([name, Number(r!.n)]).toEqual([name, tokens.length]);
    }
  }, 60_000);

  it('runs chDB\'s inserts side by side, none behind a query, and while a burst holds the event loop', async () => {
    await migrate(store, { ...ctx, db: 'side' });
    const db = store.database('side');
    // every row's insert takes a second (a column computed on insert sleeps)
    await store.command('ALTER TABLE side.pipeline_health ADD COLUMN slow UInt8 MATERIALIZED sleepEachRow(1)');
    const insert = (i: number) => db.insert('pipeline_health', TableRows.of('pipeline_health', edgeRows('pipeline_health', 1)), `side-${i}`);
    let t0 = performance.now();
    await Promise.all([0, 1, 2].map(insert));
    const three = performance.now() - t0; // one after another: 3 s or more
    expect(three).toBeLessThan(2500);
    // a query with bound parameters (which chdb-node runs one at a time) does not hold an insert up
    t0 = performance.now();
    const query = store.query('SELECT sleepEachRow(1) FROM numbers({n:UInt8}) SETTINGS max_block_size = 1', { n: 3 }).then(() => performance.now() - t0);
    const inserted = await insert(3).then(() => performance.now() - t0);
    expect([inserted < 2000, await query >= 3000]).toEqual([true, true]);
    // one begun while a burst holds the event loop (promise after promise, as the collector's gate
    // and the sink hand records on) runs meanwhile: nothing it needs waits for a turn of the loop
    t0 = performance.now();
    const during = insert(4).then(() => performance.now() - t0);
    while (performance.now() - t0 < 1500) await Promise.resolve();
    const burst = performance.now() - t0;
    expect((await during) - burst).toBeLessThan(500); // after the burst it would end a second later
    const [r] = await store.query<{ n: string }>('SELECT count() n FROM side.pipeline_health');
    expect(Number(r!.n)).toBe(5);
  }, 60_000);

  it('splits a batch past the insert bound before sending it, and a replay splits alike', async () => {
    await migrate(store, { ...ctx, db: 'bound' });
    const db = store.database('bound');
    const recs = decodeBuffers(fixtureBuffers('events')).ct.map((r, i) => ({ ...r, host: 'h', run: 'r', seq: i + 1 }));
    const inserts: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      let n = 0;
      // the writer only inserts
      const counting = {
        insert: (t: Table, rows: TableRows, token: string) => {
          if (t === 'flows') {
            n++;
            expect(rows.byteLength).toBeLessThanOrEqual(1024);
          }
          return db.insert(t, rows, token);
        },
      } as unknown as Store;
      const p = new Pipeline({ store: counting, rawEvents: false, log: silentLogger, registry: new Registry(), maxInsertBytes: 1024, engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
      p.process(recs);
      expect(await p.write('t:0:1-100')).toBe(true);
      inserts.push(n);
    }
    expect(inserts[0]).toBeGreaterThan(2);
    expect(inserts[1]).toBe(inserts[0]);
    const [r] = await store.query<{ n: string; u: string }>('SELECT count() n, uniqExact(flow_id, version) u FROM bound.flows');
    expect(Number(r!.n)).toBe(Number(r!.u));
  }, 60_000);

  it('keeps every logged range: no insert\'s token outlives it on chDB\'s session', async () => {
    await migrate(store, { ...ctx, db: 'ranges' });
    const db = store.database('ranges');
    const k = { group: 'g', topic: 't', partition: 0 };
    await db.logRange(k, { first: 1, last: 10 });
    await db.insert('pipeline_health', TableRows.of('pipeline_health', edgeRows('pipeline_health', 1)), 'tok');
    await db.logRange(k, { first: 11, last: 20 });
    await db.logRange(k, { first: 21, last: 30 });
    await db.logRange(k, { first: 21, last: 30 }); // a retry: stored once
    expect(await db.ranges(k, 0)).toEqual([{ first: 1, last: 10 }, { first: 11, last: 20 }, { first: 21, last: 30 }]);
  });

  it('refuses on chDB the statements that would take stdin as rows', async () => {
    expect(readsStdin('INSERT INTO t VALUES (1)')).toBe(true);
    expect(readsStdin(' /* c */ insert into t format TSV')).toBe(true);
    expect(readsStdin('INSERT INTO t SELECT * FROM input(\'a String\') FORMAT TSV')).toBe(true);
    expect(readsStdin('INSERT INTO t SELECT 1')).toBe(false);
    expect(readsStdin('ALTER TABLE t ADD COLUMN insert UInt64')).toBe(false);
    expect(readsStdin("SELECT 'INSERT INTO t VALUES'")).toBe(false);
    await migrate(store, { ...ctx, db: 'guard' });
    await expect(store.command("INSERT INTO guard.dead_letters (topic) VALUES ('x')")).rejects.toMatchObject({ code: 'QUERY_FAILED' });
    await store.command("INSERT INTO guard.dead_letters (topic) SELECT 'x'");
    await viaServer.command('CREATE DATABASE IF NOT EXISTS guard');
    await viaServer.command('CREATE TABLE IF NOT EXISTS guard.t (a String) ENGINE = Memory');
    await viaServer.command("INSERT INTO guard.t VALUES ('a server reads no stdin')"); // only chDB is guarded
  });

  it('on chDB, stdin holding rows reaches no table, whatever the store writes', () => {
    // a child whose stdin is a file of rows as the insert formats would read them
    const file = path.join(dir, 'stdin-rows');
    const line = 'STDIN-EVIL\t'.repeat(5);
    writeFileSync(file, `${line}\n{"host":"STDIN-EVIL","topic":"STDIN-EVIL"}\n\n${line}\n`.repeat(50));
    const dist = (m: string) => JSON.stringify(path.join(packageRoot(), 'dist', m));
    const script = `
      const { openStore } = await import(${dist('processor/clickhouse/store.js')});
      const { migrate } = await import(${dist('processor/clickhouse/migrate.js')});
      const { Pipeline } = await import(${dist('processor/pipeline.js')});
      const { silentLogger } = await import(${dist('common/log.js')});
      const { recordChunks } = await import(${dist('bench/lifecycle.js')});
      const { Registry } = await import('prom-client');
      const store = await openStore({ url: ${JSON.stringify(`chdb:${path.join(dir, 'stdin-db')}`)}, database: 'ctpipe' });
      // the bench's records are from 2026-11-18: TTLs that keep them
      await migrate(store, { db: 'ctpipe', flowsTtlDays: 3650, eventsTtlDays: 3650 });
      const p = new Pipeline({ store, rawEvents: true, log: silentLogger, registry: new Registry(), engine: { maxOpen: 1000, refreshMs: 60_000, graceMs: 5000 } });
      const recs = [...recordChunks(100)].flat();
      const cpu = (n) => ({ cpu: 0, found: n, invalid: n, insert: 0, insert_failed: 0, drop: 0, early_drop: 0, error: 0, search_restart: 0, clash_resolve: 0, chaintoolong: 0 });
      const last = recs[recs.length - 1];
      for (const i of [1, 2]) recs.push({ type: 'stats', host: last.host, run: last.run, seq: last.seq + i, sec: last.sec + i, nsec: 0, cpus: [cpu(i * 10)], entries: 5, max_entries: 100 });
      p.process(recs);
      p.deadLetter({ topic: 't', partition: 0, offset: '1', reason: 'r', payload_hex: '' });
      p.noteActivity('p', 0, 0, Date.now(), 0);
      const k = { group: 'g', topic: 't', partition: 0 };
      await store.logRange(k, { first: 1, last: 2 });
      if (!(await p.write('t:0:1-2'))) throw new Error('not written');
      await store.saveCheckpoint(k, 2, [Buffer.from('state')], 3);
      const tables = await store.query("SELECT name FROM system.tables WHERE database = 'ctpipe' AND engine LIKE '%MergeTree'");
      const out = {};
      for (const { name } of tables) {
        const [r] = await store.query(\`SELECT count() n, countIf(positionCaseInsensitive(formatRow('TabSeparated', *), 'stdin-evil') > 0) evil FROM ctpipe.\${name}\`);
        out[name] = [Number(r.n), Number(r.evil)];
      }
      await store.close();
      process.stdout.write(JSON.stringify(out));`;
    const fd = openSync(file, 'r');
    let child;
    try {
      child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', cwd: packageRoot(), timeout: 120_000 });
    } finally {
      closeSync(fd);
    }
    expect(child.stderr.replace(/^.*Warning.*$\n?/gm, '')).toBe('');
    const tables = JSON.parse(child.stdout) as Record<string, [number, number]>;
    // every table the store writes got its rows, and none a row from stdin
    for (const t of [...TABLES, 'processor_batches', 'processor_checkpoint_chunks', 'processor_checkpoints', 'schema_migrations']) {
      expect([t, tables[t]![0] > 0, tables[t]![1]]).toEqual([t, t !== 'anomalies', 0]); // no anomaly in this traffic
    }
    expect(Object.values(tables).every(([, evil]) => evil === 0)).toBe(true);
  }, 180_000);

  it('checks every table written from a list at start, the store\'s own included', async () => {
    await migrate(store, { ...ctx, db: 'lists' });
    await store.command('ALTER TABLE lists.host_stats MODIFY COLUMN entries UInt64');
    await store.command('ALTER TABLE lists.processor_batches DROP COLUMN last_offset');
    await expect(migrate(store, { ...ctx, db: 'lists' })).rejects.toThrow(
      'table lists.host_stats does not match the columns this processor writes (processor/clickhouse/tables.ts): column entries is UInt64, expected UInt32');
    await store.command('ALTER TABLE lists.host_stats MODIFY COLUMN entries UInt32');
    await expect(migrate(store, { ...ctx, db: 'lists' })).rejects.toThrow('table lists.processor_batches does not match the columns this processor writes (processor/clickhouse/tables.ts): missing column last_offset Int64');
  });

  it('keeps insert files in a private directory, each gone after its insert, the directory at close', async () => {
    const files = LoadFiles.open();
    expect(files.dir.startsWith('/dev/shm/')).toBe(existsSync('/dev/shm'));
    expect(statSync(files.dir).mode & 0o777).toBe(0o700);
    const f = files.write([Buffer.from('x')]);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(files.write([Buffer.from('y')])).not.toBe(f);
    await files.remove(f);
    files.close();
    expect(existsSync(files.dir)).toBe(false);
    // no /dev/shm: the next root; a directory a dead process left: swept
    const root = path.join(dir, 'roots');
    mkdirSync(root);
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('exit', r));
    const stale = path.join(root, `ctpipe-load-${dead.pid}-abc`);
    mkdirSync(stale);
    const other = LoadFiles.open([path.join(dir, 'absent', 'shm'), root]);
    expect(path.dirname(other.dir)).toBe(root);
    expect(existsSync(stale)).toBe(false);
    other.close();
    // the store's inserts leave nothing behind
    const shm = readdirSync(existsSync('/dev/shm') ? '/dev/shm' : root).filter((n) => n.startsWith(`ctpipe-load-${process.pid}-`));
    for (const d of shm) expect(readdirSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : root, d))).toEqual([]);
    rmSync(root, { recursive: true, force: true });
  });
});
