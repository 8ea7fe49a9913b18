/**
 * `ctpipe run` end to end on real kernel traffic: lab traffic -> collector -> lifecycle engine ->
 * embedded ClickHouse (chDB). For each connection the lab made: exactly one `flows` row, with the
 * tuple, final state, conn_state and the packet and byte counts the kernel counted (conntrack-tools'
 * own listener is the oracle), and FTP data flows linked to their control connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { expectFtpLinked } from '../helpers/flows.js';
import { BIN } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { parseConntrackEvent, type OracleEvent } from '../../lab/oracle.js';


let lab: Lab;
let dir: string;
let stdinDir: string;
let store: Store;
let oracle: ChildProcess;
let oracleText = '';
let stderr = '';
let exitCode: number | null = null;
const made: Record<string, number> = {};

interface Row {
  flow_id: string; proto: number; family: string; orig_src: string; orig_dst: string; orig_sport: number; orig_dport: number;
  final_tcp_state: string; conn_state: string; end_reason: string; orig_packets: string; orig_bytes: string;
  reply_packets: string; reply_bytes: string; related: boolean; master_flow_id: string; helper: string; ct_id: number;
  handshake_ms: number | null; tcp_states: string[];
}
let rows: Row[] = [];

beforeAll(async () => {
  lab = await Lab.create();
  dir = tempDir('run');
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  oracle = lab.spawn('fw', 'conntrack', ['-E', '-o', 'extended,id']);
  oracle.stdout!.on('data', (d: Buffer) => (oracleText += d.toString()));
  // stdin is a file of rows as the insert formats would read them: chDB must never take it as data
  stdinDir = tempDir('run-stdin');
  const rowsFile = path.join(stdinDir, 'rows');
  writeFileSync(rowsFile, `${'STDIN-EVIL\t'.repeat(46)}\n{"host":"STDIN-EVIL","topic":"STDIN-EVIL","group_id":"STDIN-EVIL"}\n\n`.repeat(100));
  const stdin = openSync(rowsFile, 'r');
  const p = spawn(process.execPath, [BIN, 'run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', `chdb:${dir}`, '--host', 'lab-fw',
    '--process-flush', '300ms', '--stats-interval', '1s', '--no-metrics-enabled'], { stdio: [stdin, 'pipe', 'pipe'] });
  closeSync(stdin);
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => p.on('exit', (code) => { exitCode = code; r(); }));
  for (let i = 0; i < 100 && !stderr.includes('running: collector and processor'); i++) await sleep(100);
  made.tcp = (await lab.tcpConnect(ADDR.server4, 8080, 3000)).local;
  await lab.tcpRefused(ADDR.server4, 9);
  made.udp = (await lab.udpExchange(ADDR.server4, 5353, 3, 200)).local;
  await lab.ping(ADDR.server4, 2);
  made.tcp6 = (await lab.tcpConnect(ADDR.server6, 8080, 100)).local;
  await lab.ftpGet('passive');
  await lab.ftpGet('active');
  await sleep(300);
  await lab.conntrack(['-F']); // every flow ends with a DESTROY carrying the kernel's counters
  await sleep(1500);
  p.kill('SIGTERM');
  await exited;
  oracle.kill('SIGTERM');
  store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  rows = await store.query<Row>(
    `SELECT flow_id, proto, family, orig_src_text AS orig_src, orig_dst_text AS orig_dst, orig_sport, orig_dport, final_tcp_state,
      conn_state, end_reason, orig_packets, orig_bytes, reply_packets, reply_bytes, related, master_flow_id, helper, ct_id, handshake_ms, tcp_states
      FROM ctpipe.flows FINAL WHERE host = {host:String}`,
    { host: 'lab-fw' });
}, 180_000);

afterAll(() => release(store, lab, dir, stdinDir));

describe('ctpipe run on real traffic', () => {
  it('stops cleanly on SIGTERM', () => {
    expect(exitCode).toBe(0);
    expect(stderr).toContain('"stopped"');
  });

  it('takes nothing from its stdin, a file of rows, into any table', async () => {
    const tables = await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'ctpipe' AND engine LIKE '%MergeTree'");
    expect(tables.length).toBeGreaterThanOrEqual(10);
    for (const { name } of tables) {
      const [r] = await store.query<{ evil: string }>(`SELECT countIf(positionCaseInsensitive(formatRow('TabSeparated', *), 'stdin-evil') > 0) evil FROM ctpipe.${name}`);
      expect([name, Number(r!.evil)]).toEqual([name, 0]);
    }
    expect(rows.length).toBeGreaterThanOrEqual(8); // and it stored what it saw
  });

  it('stores exactly one row per connection, with the kernel\'s counts', () => {
    const destroys = oracleText.split('\n').map(parseConntrackEvent).filter((e): e is OracleEvent => e?.type === 'destroy');
    expect(destroys.length).toBeGreaterThanOrEqual(8);
    expect(rows.length).toBe(destroys.length);
    expect(new Set(rows.map((r) => r.flow_id)).size).toBe(rows.length);
    for (const d of destroys) {
      const row = rows.find((r) => r.ct_id === d.id)!;
      expect(row, `flow ${d.id}`).toBeDefined();
      expect([row.orig_src, row.orig_dst]).toEqual([d.orig.src, d.orig.dst]);
      expect(row.end_reason).toBe('destroy');
      expect([Number(row.orig_packets), Number(row.orig_bytes), Number(row.reply_packets), Number(row.reply_bytes)])
        .toEqual([d.orig.packets, d.orig.bytes, d.reply.packets, d.reply.bytes]);
    }
  });

  it('summarizes each kind of connection', () => {
    const tcp = rows.find((r) => r.orig_sport === made.tcp && r.orig_dport === 8080)!;
    expect(tcp).toMatchObject({ conn_state: 'SF', final_tcp_state: 'TIME_WAIT' });
    expect(tcp.tcp_states.slice(0, 3)).toEqual(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED']);
    expect(tcp.handshake_ms).toBeGreaterThan(0);
    expect(rows.find((r) => r.orig_dport === 9)!.conn_state).toBe('REJ');
    expect(rows.find((r) => r.orig_sport === made.udp)!).toMatchObject({ conn_state: 'SF', orig_packets: '3', reply_packets: '3' });
    expect(rows.find((r) => r.proto === 1)!.conn_state).toBe('SF');
    expect(rows.find((r) => r.orig_sport === made.tcp6)!).toMatchObject({ family: 'ipv6', orig_src: ADDR.client6, conn_state: 'SF' });
  });

  it('links FTP data flows to their control connection', () => {
    expectFtpLinked(rows);
  });

  it('raised no anomaly: FTP through the kernel helper, a refused connection, normal traffic', async () => {
    expect(await store.query('SELECT kind FROM ctpipe.anomalies FINAL')).toEqual([]);
  });

  it('answers ad hoc SQL with bound parameters in every format (ctpipe query)', async () => {
    await store.close(); // chDB is one process's store: hand it to the query command
    const { spawnSync } = await import('node:child_process');
    const q = (fmt: string) => spawnSync(process.execPath, [BIN, 'query', '--clickhouse-url', `chdb:${dir}`, '--format', fmt,
      'SELECT conn_state, count() AS n FROM ctpipe.flows FINAL WHERE host = {host:String} AND proto = {p:UInt8} GROUP BY conn_state ORDER BY conn_state',
      '--param', 'host=lab-fw', '--param', 'p=6'], { encoding: 'utf8' });
    const json = q('json');
    expect(json.status).toBe(0);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { conn_state: string; n: string });
    expect(lines.find((l) => l.conn_state === 'REJ')!.n).toBe('1');
    expect(q('table').stdout).toMatch(/conn_state\s+n\n-+\s+-+\n/);
    expect(q('csv').stdout.split('\n')[0]).toBe('"conn_state","n"');
    const bad = spawnSync(process.execPath, [BIN, 'query', '--clickhouse-url', `chdb:${dir}`, 'SELECT nope FROM nowhere'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/the query failed/);
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  });

  it('fills the host statistics and the per-minute rollup', async () => {
    const [st] = await store.query<{ n: string; m: string }>('SELECT count() n, max(max_entries) m FROM ctpipe.host_stats');
    expect(Number(st!.n)).toBeGreaterThan(0);
    expect(Number(st!.m)).toBeGreaterThan(0);
    const [f] = await store.query<{ n: string }>('SELECT sum(flows) n FROM ctpipe.flows_1m');
    expect(Number(f!.n)).toBe(rows.length);
  });
});
