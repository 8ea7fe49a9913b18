/**
 * Several ctpipe processes on one namespace with --enable-conntrack (real kernel, lab namespaces):
 * each adds a table of its own, so one that exits (a second `ctpipe run` refused by the store lock,
 * a short `ctpipe collect`) leaves the others tracked; nobody else can remove a process's table,
 * and the kernel removes it when the process is SIGKILLed. When the table goes while running, or
 * events stop coming, the collector says so (log and gauge).
 */
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVATION_TABLE, ownTableName } from '../../collector/activation.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let lab: Lab;
let dir: string;
const procs = new Procs(() => ({ CTPIPE_METRICS_ENABLED: 'false' }));

beforeAll(async () => {
  expect(process.getuid?.(), 'these tests need root').toBe(0);
  lab = await Lab.create();
  dir = tempDir('second');
  await lab.tcpServer(8080);
  await lab.sysctl('client', 'net.netfilter.nf_conntrack_acct', '1'); // the DESTROY carries the byte counts
}, 60_000);

afterAll(() => release(procs, lab, dir));

/** The activation tables in a lab namespace. */
async function tables(which: 'client' | 'server'): Promise<string[]> {
  const r = await lab.exec(which, 'nft', ['list', 'tables']);
  return [...r.stdout.matchAll(/^table inet (\S+)/gm)].map((m) => m[1]!).filter((t) => t.startsWith(ACTIVATION_TABLE));
}

/** The pid of the `nft -i` that holds a ctpipe process's table (its child). */
function holderOf(p: ChildProcessWithoutNullStreams): number {
  const r = spawnSync('pgrep', ['-P', String(p.pid), '-x', 'nft'], { encoding: 'utf8' });
  return Number(r.stdout.trim().split('\n')[0]);
}

describe('a second ctpipe never switches off the first', () => {
  it('a second run refused by the store lock and a short collect both exit; the first keeps receiving events', async () => {
    // the client namespace has no rule of its own: only --enable-conntrack makes conntrack track it
    const common = ['--netns', lab.netnsPath('client'), '--enable-conntrack', '--clickhouse-url', `chdb:${dir}`];
    const [first, i] = procs.start(['run', ...common, '--host', 'first', '--process-flush', '300ms', '--stats-interval', '1s']);
    await procs.waitLog(i, 'running: collector and processor');
    const firstTable = ownTableName(first.pid);
    expect(await tables('client')).toEqual([firstTable]);

    const [second, j] = procs.start(['run', ...common, '--host', 'second']);
    expect(await exited(second)).toBe(1);
    expect(procs.logs[j]).toContain('the directory is in use by process');
    const [third, k] = procs.start(['collect', '--netns', lab.netnsPath('client'), '--enable-conntrack', '--output', 'jsonl', '--duration', '1s']);
    await procs.waitLog(k, 'conntrack enabled in this network namespace');
    expect((await tables('client')).length).toBe(2);
    expect(await exited(third)).toBe(0);
    expect(await tables('client')).toEqual([firstTable]);

    // nobody else can remove it: the kernel gave it to the first process
    const del = await lab.exec('client', 'nft', ['delete', 'table', 'inet', firstTable], { allowFail: true });
    expect(del.code).not.toBe(0);
    expect(del.stderr).toContain('Operation not permitted');

    const { local } = await lab.tcpConnect(ADDR.server4, 8080, 2000);
    await lab.exec('client', 'conntrack', ['-F']); // its DESTROY, with the counters, now
    await sleep(1500);
    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
    expect(procs.logs[i]).not.toMatch(/CONNTRACK_RULE_GONE|CONNTRACK_QUIET/);
    expect(await tables('client')).toEqual([]);
    const rows = await queryStore<{ orig_bytes: string; end_reason: string }>(dir,
      `SELECT orig_bytes, end_reason FROM ctpipe.flows FINAL WHERE host = 'first' AND orig_sport = ${local} AND orig_dport = 8080`);
    expect(rows.length).toBe(1);
    expect(Number(rows[0]!.orig_bytes)).toBeGreaterThan(2000);
  }, 120_000);

  it('the kernel removes the table of a SIGKILLed process', async () => {
    const [p, i] = procs.start(['collect', '--netns', lab.netnsPath('server'), '--enable-conntrack', '--output', 'jsonl']);
    await procs.waitLog(i, 'collecting');
    expect(await tables('server')).toEqual([ownTableName(p.pid)]);
    p.kill('SIGKILL');
    await exited(p);
    for (let t = 0; t < 50 && (await tables('server')).length > 0; t++) await sleep(100);
    expect(await tables('server')).toEqual([]);
  }, 60_000);

  it('says so when its table goes while running, and when conntrack events stop coming', async () => {
    const [p, i] = procs.start(['collect', '--netns', lab.netnsPath('server'), '--enable-conntrack', '--output', 'jsonl',
      '--stats-interval', '500ms', '--quiet-warning', '3s']);
    await procs.waitLog(i, 'collecting');
    await lab.exec('server', 'ping', ['-c', '2', '-i', '0.2', '127.0.0.1']); // events, so a later silence means something
    process.kill(holderOf(p), 'SIGKILL'); // what a stray `kill` or an OOM kill of the holder would do
    await procs.waitLog(i, 'CONNTRACK_RULE_GONE', 10_000);
    expect(await tables('server')).toEqual([]);
    await lab.exec('server', 'ping', ['-c', '3', '-i', '0.2', '127.0.0.2']); // no longer tracked: no event
    await procs.waitLog(i, 'CONNTRACK_QUIET', 15_000);
    expect(procs.logLine<{ msg: string }>(i, 'CONNTRACK_QUIET').msg).toMatch(/^no conntrack event for \d+ s after events came before: conntrack may have stopped tracking/);
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
  }, 60_000);
});
