/**
 * What a read-only command may run (issue 18 item 7) and a database from a newer ctpipe (item 10),
 * on chDB: the statement splitter follows ClickHouse's lexer; a read-only store (`ctpipe query`
 * without --write, `top`, `report`) runs every dashboard query but refuses writes, settings,
 * file() and url(), a second statement and INTO OUTFILE, leaving the tables and the file system
 * as they were; migrate refuses a schema version it does not know.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboards } from '../../dashboards/generate.js';
import { queriesOf } from '../../dashboards/lint.js';
import { expand } from '../../dashboards/macros.js';
import { resolveVariables } from '../../dashboards/run-queries.js';
import { isCtpipeError } from '../../common/errors.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { MIGRATIONS } from '../../processor/clickhouse/schema.js';
import { readOnlyProblem, statements } from '../../processor/clickhouse/statements.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { BIN } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';

describe('statements, as ClickHouse splits them', () => {
  it('ends a statement at ; only outside literals, quoted names, heredocs and comments', () => {
    const words = (sql: string) => statements(sql).map((s) => s.words.join(' '));
    expect(words('SELECT 1')).toEqual(['SELECT']);
    expect(words('SELECT 1;')).toEqual(['SELECT']);
    expect(words('SELECT 1; DROP TABLE t')).toEqual(['SELECT', 'DROP TABLE T']);
    expect(words("SELECT 'a;b', 'it''s;', 'x\\';y' AS s")).toEqual(['SELECT AS S']);
    expect(words('SELECT "a;b", `c;d` FROM t')).toEqual(['SELECT FROM T']);
    expect(words('SELECT $$;DROP$$, $tag$ ; $$ ; $tag$ x')).toEqual(['SELECT X']);
    expect(words('SELECT 1 -- ; DROP TABLE t\n')).toEqual(['SELECT']);
    expect(words('SELECT 1 # ; DROP\n; SELECT 2')).toEqual(['SELECT', 'SELECT']);
    expect(words('SELECT 1 /* ; /* nested ; */ DROP ; */ ; -- only a comment\n ;; ')).toEqual(['SELECT']);
    expect(words('SELECT 1 /* a */; /* */ DROP TABLE t')).toEqual(['SELECT', 'DROP TABLE T']);
    for (const bad of ["SELECT 'a", 'SELECT "a', 'SELECT `a', 'SELECT $x$ a', 'SELECT 1 /* /* */', "SELECT 'a\\'"]) {
      expect(() => statements(bad), bad).toThrow(/unterminated/);
    }
  });

  it('allows one statement without INTO OUTFILE (one statement with --write)', () => {
    expect(readOnlyProblem('SELECT 1')).toBeUndefined();
    expect(readOnlyProblem("SELECT 'INTO OUTFILE' AS x; -- two? no: one")).toBeUndefined();
    expect(readOnlyProblem('SELECT 1; SELECT 2')).toMatch(/one statement/);
    expect(readOnlyProblem('  -- nothing\n')).toMatch(/no statement/);
    expect(readOnlyProblem("SELECT 1 INTO /* */ OUTFILE '/tmp/x'")).toMatch(/INTO OUTFILE/);
    expect(readOnlyProblem("SELECT 1 INTO OUTFILE '/tmp/x'", true)).toBeUndefined();
    expect(readOnlyProblem('CREATE TABLE t (a UInt8) ENGINE = Memory; DROP TABLE t', true)).toMatch(/one statement/);
  });
});

describe('a read-only store on chDB', () => {
  let dir: string;
  let store: Store;
  let server: Server;
  let hits = 0;
  let url = '';

  beforeAll(async () => {
    server = createServer((_req, res) => (hits++, res.end('1\n')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    dir = tempDir('readonly');
    const writable = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    await migrate(writable, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 });
    await writable.command("INSERT INTO ctpipe.host_stats (host, ts, entries) SELECT 'fw-1', now(), 5");
    await writable.close();
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe', readonly: true });
  });

  afterAll(async () => {
    await store?.close();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const refused = async (sql: string, code: string | RegExp, run: (q: string) => Promise<unknown> = (q) => store.query(q)) => {
    const e = await run(sql).then(() => undefined, (x: unknown) => x);
    expect(e, sql).toBeDefined();
    if (typeof code === 'string') expect(isCtpipeError(e, 'QUERY_REFUSED') ? 'QUERY_REFUSED' : (e as { code?: string }).code, sql).toBe(code);
    else expect(String(e), sql).toMatch(code);
  };
  const tables = async () => (await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'ctpipe' ORDER BY name")).map((t) => t.name);

  it('reads, with bound parameters', async () => {
    expect(await store.query('SELECT host, entries FROM ctpipe.host_stats WHERE host = {h:String}', { h: 'fw-1' })).toEqual([{ host: 'fw-1', entries: 5 }]);
  });

  it('refuses writes, settings, file() and url() (ClickHouse READONLY, 164), a second statement and INTO OUTFILE', async () => {
    const before = await tables();
    expect(before).toContain('flows');
    await refused('DROP TABLE ctpipe.flows', '164');
    await refused('TRUNCATE TABLE ctpipe.host_stats', '164');
    await refused("INSERT INTO ctpipe.host_stats (host) SELECT 'x'", '164');
    await refused('ALTER TABLE ctpipe.host_stats DELETE WHERE 1', '164');
    await refused('SELECT 1 SETTINGS readonly = 0', '164');
    await refused('SET readonly = 0', '164', (q) => store.command(q));
    await refused('DROP TABLE ctpipe.flows', '164', (q) => store.command(q));
    await refused("SELECT * FROM file('/etc/hostname', 'LineAsString')", '164');
    await refused(`SELECT * FROM url('${url}', 'LineAsString')`, '164');
    await refused('SYSTEM DROP DNS CACHE', '164', (q) => store.command(q));
    await refused('SELECT 1; DROP TABLE ctpipe.flows', 'QUERY_REFUSED');
    const out = path.join(dir, 'outfile.txt');
    await refused(`SELECT * FROM ctpipe.host_stats INTO OUTFILE '${out}'`, 'QUERY_REFUSED');
    expect(existsSync(out)).toBe(false);
    expect(hits).toBe(0);
    expect(await tables()).toEqual(before);
    expect(await store.query('SELECT count() AS n FROM ctpipe.host_stats')).toEqual([{ n: '1' }]);
  });

  it('runs every dashboard query (ctpipe report reads through it)', async () => {
    const at = { fromMs: Date.now() - 3_600_000, toMs: Date.now(), intervalMs: 60_000 };
    let n = 0;
    for (const d of dashboards('ctpipe')) {
      const vars = await resolveVariables(store, d, at, 'all', { address: '', flow: '' });
      for (const q of queriesOf(d)) {
        await store.queryWithMeta(expand(q.sql, { ...at, vars }));
        n++;
      }
    }
    expect(n).toBeGreaterThan(40);
  });
});

describe('a database migrated by a newer ctpipe', () => {
  it('is refused with SCHEMA_UNKNOWN_VERSION, naming the version, and nothing is applied', async () => {
    const dir = tempDir('schema-drift');
    const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    try {
      const ctx = { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 };
      await migrate(store, ctx);
      expect((await migrate(store, ctx)).applied).toEqual([]);
      const next = MIGRATIONS[MIGRATIONS.length - 1]!.version + 1;
      await store.command('INSERT INTO ctpipe.schema_migrations (version, description) SELECT {v:UInt32}, {d:String}', { v: next, d: "flows: a column of the future's" });
      const e = await migrate(store, ctx).then(() => undefined, (x: unknown) => x);
      expect(isCtpipeError(e, 'SCHEMA_UNKNOWN_VERSION')).toBe(true);
      expect(String(e)).toContain(`schema version ${next} ("flows: a column of the future's")`);
      expect(String(e)).toMatch(/newer ctpipe/);
      // an older database from before a version is not refused: it is what migrate upgrades
      const old = store.database('older');
      await migrate(old, { ...ctx, db: 'older' }, 3);
      expect((await migrate(old, { ...ctx, db: 'older' })).applied).toEqual(MIGRATIONS.filter((m) => m.version > 3).map((m) => m.version));
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('commands that only read', () => {
  it('never make an empty embedded store: query, top and report name the missing one, exit 1', () => {
    const cwd = tempDir('no-store');
    for (const args of [['query', 'SELECT 1'], ['top', '--iterations', '1'], ['report', '--html', 'r.html']]) {
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/there is no embedded store at \.\/data \(ctpipe run makes it; .*\[STORE_UNAVAILABLE\]/);
      expect(existsSync(path.join(cwd, 'data'))).toBe(false);
    }
    rmSync(cwd, { recursive: true, force: true });
  });
});
