/**
 * The `ctpipe` program against a store holding hostile or damaged things (issue 18 items 2, 7, 9
 * and 10), as users run it:
 * - `ctpipe report --html` with a host named to inject SQL that fetches a URL, sorted first so the
 *   Host detail shows it: its section is that host's, and nothing is fetched;
 * - `ctpipe query` reads only unless --write: DROP, `SELECT 1; DROP`, file(), url(), INTO OUTFILE
 *   refused with QUERY_REFUSED and the store as it was; `ctpipe top` reads;
 * - a database migrated by a newer ctpipe: `migrate` and `run` refuse it (SCHEMA_UNKNOWN_VERSION);
 * - `ctpipe process` names its store without the URL's password;
 * - `ctpipe run` after a table it writes is dropped under it: the stop ends promptly, says what
 *   could not be stored, exits 1 and removes its nftables table.
 * One chDB directory (one per process), served over HTTP by the ClickHouse front while the test
 * itself reads and writes it, and opened by the ctpipe processes while the front is closed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetOf, insertFlows, insertStats } from '../../bench/synthetic-fleet.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { MIGRATIONS } from '../../processor/clickhouse/schema.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { copyRenamed } from '../helpers/hostile.js';
import { BIN, exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';

const SECRET = 'hunter2-s3cret';
let dir: string;
let front: ClickHouseFront | undefined;
let server: Server;
let hits = 0;
let evilHost = '';
const fleet = fleetOf({ hosts: 3, rows: 3000, hours: 1 });
const procs = new Procs(() => ({ CTPIPE_METRICS_ENABLED: 'false' }));

const ctpipe = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const chdb = () => ['--clickhouse-url', `chdb:${dir}`];

/** SQL through the front (the test's own reads and writes while it serves the directory). */
async function frontQuery(sql: string): Promise<string> {
  const r = await fetch(`${front!.url}/?query=${encodeURIComponent(sql)}`, { method: 'POST' });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${sql}: ${text}`);
  return text;
}

beforeAll(async () => {
  server = createServer((_req, res) => (hits++, res.end('1\n')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fetched`;
  // ends the Host detail's string literal as :singlequote let it; its own strings are heredocs
  evilHost = `!\\' OR 0 IN (SELECT count() FROM url($$${url}$$, $$LineAsString$$)) --`;
  dir = tempDir('hostile-store');
  front = await ClickHouseFront.start(dir);
  const store = await openStore({ url: front.url, database: 'ctpipe' });
  for (const db of ['gen', 'ctpipe']) await migrate(store.database(db), { db, flowsTtlDays: 30, eventsTtlDays: 3 });
  await insertFlows(store.database('gen'), fleet, 0, fleet.rows);
  await insertStats(store.database('gen'), fleet);
  await copyRenamed(store, 'gen', 'ctpipe', 'fw-0001', { host: evilHost });
  await store.close();
  await front.close();
  front = undefined;
}, 300_000);

afterAll(async () => {
  await release(procs, front, dir);
  server?.close();
});

describe('ctpipe report with a hostile host name stored', () => {
  it('shows that host in the Host detail, from its rows, and fetches nothing', () => {
    const file = path.join(dir, 'report.html');
    const from = new Date(fleet.fromMs).toISOString();
    const to = new Date(fleet.toMs).toISOString();
    const r = ctpipe(['report', '--html', file, ...chdb(), '--from', from, '--to', to]);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(file, 'utf8');
    const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const host = html.slice(html.indexOf('<h2>Host detail'), html.indexOf('<h2>', html.indexOf('<h2>Host detail') + 4));
    expect(host).toContain(`<h2>Host detail: ${esc(evilHost)}</h2>`);
    expect(host.match(/<path class="series"/g)?.length ?? 0).toBeGreaterThan(3); // its rows drawn: the filter matched
    expect(hits).toBe(0);
    // another host named on the command line
    const other = ctpipe(['report', '--html', file, ...chdb(), '--from', from, '--to', to, '--report-host', 'fw-0002']);
    expect(other.status, other.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('<h2>Host detail: fw-0002</h2>');
    expect(hits).toBe(0);
    // a host the store holds nothing of is refused, the closest named; --host is not report's
    const none = ctpipe(['report', '--html', file, ...chdb(), '--from', from, '--to', to, '--report-host', 'fw-0O02']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--report-host: the store holds nothing of host "fw-0O02" \(did you mean fw-0002\?\) \(it holds \d+ host\(s\): .*\[CONFIG_INVALID\]/);
    expect(ctpipe(['report', '--html', file, ...chdb(), '--host', 'fw-0002']).stderr).toContain("Unknown option '--host'");
  });
});

describe('ctpipe query and top only read', () => {
  const tables = () => JSON.parse(ctpipe(['query', ...chdb(), '--format', 'json', "SELECT groupArray(name) AS t FROM (SELECT name FROM system.tables WHERE database = 'ctpipe' ORDER BY name)"]).stdout) as { t: string[] };

  it('refuses DROP, a second statement, file(), url(), settings and INTO OUTFILE with QUERY_REFUSED, and the store stays as it was', () => {
    const before = tables();
    expect(before.t).toContain('flows');
    const out = path.join(dir, 'outfile.txt');
    for (const sql of ['DROP TABLE ctpipe.flows', 'SELECT 1; DROP TABLE ctpipe.flows', "SELECT * FROM file('/etc/hostname', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')", 'SELECT count() FROM ctpipe.flows SETTINGS readonly = 0',
      `SELECT host FROM ctpipe.host_stats INTO OUTFILE '${out}'`, "INSERT INTO ctpipe.host_stats (host) SELECT 'x'"]) {
      const r = ctpipe(['query', ...chdb(), sql]);
      expect(r.status, sql).toBe(1);
      expect(r.stderr, sql).toMatch(/\[QUERY_REFUSED\]\n$/);
    }
    expect(existsSync(out)).toBe(false);
    expect(tables()).toEqual(before);
    const n = ctpipe(['query', ...chdb(), '--format', 'csv', 'SELECT count() FROM ctpipe.flows WHERE host = {h:String}', '--param', `h=${evilHost}`]);
    expect(n.status, n.stderr).toBe(0);
    expect(Number(n.stdout.split('\n')[1])).toBeGreaterThan(100);
  });

  it('--write lets one statement change the store, and still only one', () => {
    const make = ctpipe(['query', '--write', ...chdb(), 'CREATE TABLE ctpipe.scratch (a UInt8) ENGINE = Memory']);
    expect(make.status, make.stderr).toBe(0);
    const two = ctpipe(['query', '--write', ...chdb(), 'DROP TABLE ctpipe.scratch; DROP TABLE ctpipe.flows']);
    expect(two.status).toBe(1);
    expect(two.stderr).toMatch(/only one statement at a time.*\[QUERY_REFUSED\]/);
    expect(tables().t).toEqual(expect.arrayContaining(['flows', 'scratch']));
    expect(ctpipe(['query', '--write', ...chdb(), 'DROP TABLE ctpipe.scratch']).status).toBe(0);
    expect(tables().t).not.toContain('scratch');
  });

  it('ctpipe top reads the store', () => {
    const r = ctpipe(['top', ...chdb(), '--iterations', '1', '--window', '600h']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('HOSTS');
    expect(r.stdout).toContain('fw-0002');
  });
});

describe('a database migrated by a newer ctpipe', () => {
  it('ctpipe migrate refuses it with SCHEMA_UNKNOWN_VERSION instead of calling it current', () => {
    expect(ctpipe(['migrate', ...chdb(), '--clickhouse-database', 'drift']).status).toBe(0);
    const next = MIGRATIONS[MIGRATIONS.length - 1]!.version + 1;
    const add = ctpipe(['query', '--write', ...chdb(), `INSERT INTO drift.schema_migrations (version, description) SELECT ${next}, 'from a newer ctpipe'`]);
    expect(add.status, add.stderr).toBe(0);
    const r = ctpipe(['migrate', ...chdb(), '--clickhouse-database', 'drift']);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('current');
    expect(r.stderr).toMatch(new RegExp(`records schema version ${next} \\("from a newer ctpipe"\\), which this ctpipe does not know .*\\[SCHEMA_UNKNOWN_VERSION\\]`));
  });
});

describe('with the lab: ctpipe run and ctpipe process', () => {
  let lab: Lab;
  let kafka: KafkaMock;

  beforeAll(async () => {
    lab = await Lab.create();
    await lab.tcpServer(8080);
    kafka = await KafkaMock.start();
  });
  afterAll(() => release(procs, lab, kafka));

  it('ctpipe run refuses a database migrated by a newer ctpipe, and leaves no nftables table behind', async () => {
    const [p, log] = procs.start(['run', '--netns', lab.netnsPath('fw'), ...chdb(), '--clickhouse-database', 'drift', '--host', 'lab-fw', '--enable-conntrack']);
    expect(await exited(p)).toBe(1);
    expect(procs.logs[log]).toMatch(/which this ctpipe does not know .*\[SCHEMA_UNKNOWN_VERSION\]/);
    expect(nftTables()).not.toContain('ctpipe_conntrack');
  });

  const nftTables = () => spawnSync('nsenter', [`--net=${lab.netnsPath('fw')}`, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout;

  it('ctpipe process names its store without the password of its URL', async () => {
    front = await ClickHouseFront.start(dir);
    const url = `http://ctpipe:${SECRET}@127.0.0.1:${front.port}`;
    const [p, log] = procs.start(['process', '--kafka-brokers', kafka.brokers.join(','), '--kafka-topic', `creds-${Date.now()}`, '--clickhouse-url', url]);
    await procs.waitLog(log, '"processing"');
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
    expect(procs.logLine<{ store: string }>(log, '"processing"').store).toBe(`http://ctpipe:[redacted]@127.0.0.1:${front.port}`);
    expect(procs.logs[log]).not.toContain(SECRET);
  });

  for (const table of ['flows', 'processor_checkpoint_chunks']) {
    it(`ctpipe run whose ${table} table is dropped under it stops promptly, says what it could not store, exits 1 and removes its nftables table`, async () => {
      front ??= await ClickHouseFront.start(dir);
      const db = `damage_${table}`;
      const [p, log] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', front.url, '--clickhouse-database', db, '--host', 'lab-fw',
        '--process-flush', '300ms', '--stats-interval', '1s', '--enable-conntrack']);
      await procs.waitLog(log, 'running: collector and processor');
      expect(nftTables()).toContain('ctpipe_conntrack');
      await frontQuery(`DROP TABLE ${db}.${table}`);
      for (let i = 0; i < 3; i++) await lab.tcpConnect(ADDR.server4, 8080, 100);
      await lab.conntrack(['-F']);
      await sleep(2000);
      const t0 = Date.now();
      p.kill('SIGINT');
      expect(await exited(p)).toBe(1);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(procs.logs[log]).toMatch(new RegExp(`"err":"[A-Z_]+ \\d+: [^"]*${table}[^"]*".*"msg":"stopped; what was left could not be stored"`));
      expect(procs.logs[log]).not.toMatch(/UnhandledPromiseRejection|Node\.js v/);
      expect(nftTables()).not.toContain('ctpipe_conntrack');
    });
  }
});
