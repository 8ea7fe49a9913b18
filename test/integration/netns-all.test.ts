/**
 * `--netns all` against the real kernel: one collector follows every named network namespace,
 * picks up one created after it started and lets go of removed ones. Two labs (ctp-*, made and
 * removed here only): the first's client namespace tracks its own output besides the firewall, so
 * one connection is seen with the same tuple in two namespaces; the second lab comes after start.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromJsonLine } from '../../contract/json.js';
import type { CtpipeRecord, CtRecord } from '../../contract/records.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { BIN, exited } from '../helpers/procs.js';
import { queryStore } from '../helpers/store.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { flowsDashboard } from '../../dashboards/flows.js';
import { resolveVariables, runDashboard } from '../../dashboards/run-queries.js';

const METRICS = '127.0.0.1:19537';

let labA: Lab;
let labB: Lab | undefined;
const procs: ChildProcessWithoutNullStreams[] = [];
const dirs: string[] = [];

function ctpipe(args: string[]) {
  const p = spawn(process.execPath, [BIN, ...args]);
  procs.push(p);
  const out = { stdout: '', stderr: '' };
  p.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return { p, out };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, log: () => string, ms = 30_000): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    if (await ok()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}\n${log().slice(-4000)}`);
}

/** Makes conntrack track a namespace's own output (a lab tracks only in its firewall). */
async function trackOutput(lab: Lab, which: 'client' | 'server'): Promise<void> {
  await lab.exec(which, 'nft', ['add', 'table', 'inet', 'ctp_track']);
  await lab.exec(which, 'nft', ['add', 'chain', 'inet', 'ctp_track', 'out', '{', 'type', 'filter', 'hook', 'output', 'priority', '0', ';', '}']);
  await lab.exec(which, 'nft', ['add', 'rule', 'inet', 'ctp_track', 'out', 'ct', 'state', 'new', 'counter']);
}

const records = (stdout: string): CtpipeRecord[] => stdout.trim().split('\n').filter(Boolean).map(fromJsonLine);
const flows = (stdout: string, dport: number, local: number) =>
  records(stdout).filter((r): r is CtRecord => 'orig' in r && r.orig.dport === dport && r.orig.sport === local);

beforeAll(async () => {
  labA = await Lab.create();
  await trackOutput(labA, 'client');
  await labA.tcpServer(8080);
});

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await labB?.destroy();
  await labA?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('ctpipe collect --netns all', () => {
  it('follows every named namespace, one created after start, tags each flow, and lets go of removed ones', async () => {
    const { p, out } = ctpipe(['collect', '--netns', 'all', '--netns-interval', '300ms', '--output', 'jsonl', '--host', 'netns-all',
      '--stats-interval', '500ms', '--metrics-listen', METRICS]);
    const log = () => out.stderr;
    await until('the first lab followed', () => out.stderr.includes(`following the network namespace ${labA.ns.fw}`) && out.stderr.includes('"collecting"'), log);
    expect(out.stderr).toContain(`following the network namespace ${labA.ns.client}`);

    // a namespace created while it runs
    labB = await Lab.create();
    await labB.tcpServer(8081);
    await until('the new lab followed', () => out.stderr.includes(`following the network namespace ${labB!.ns.fw}`), log);

    const a = await labA.tcpConnect(ADDR.server4, 8080, 1000);
    const b = await labB.tcpConnect(ADDR.server4, 8081, 500);
    await until('the flows of three namespaces', () =>
      new Set(flows(out.stdout, 8080, a.local).map((r) => r.netns)).size === 2 && flows(out.stdout, 8081, b.local).length > 0, log);

    // the same connection, the same tuple, in the client's namespace and in the firewall's
    const fa = flows(out.stdout, 8080, a.local);
    expect(new Set(fa.map((r) => r.netns))).toEqual(new Set([labA.ns.client, labA.ns.fw]));
    for (const ns of [labA.ns.client, labA.ns.fw]) {
      expect(fa.filter((r) => r.netns === ns).map((r) => r.type)).toContain('new');
    }
    const fb = flows(out.stdout, 8081, b.local);
    expect(new Set(fb.map((r) => r.netns))).toEqual(new Set([labB.ns.fw]));
    // every record says its namespace; one run, one gap-free sequence across them
    const all = records(out.stdout);
    expect(all.every((r) => typeof r.netns === 'string' && r.netns !== '')).toBe(true);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
    expect(new Set(all.map((r) => r.run)).size).toBe(1);
    // each namespace has its own start dump
    for (const ns of [labA.ns.fw, labA.ns.client, labB.ns.fw]) {
      expect(all.some((r) => r.type === 'dump_end' && r.netns === ns)).toBe(true);
    }

    const scrape = async () => (await fetch(`http://${METRICS}/metrics`)).text();
    await until('per-namespace event counters', async () => {
      const m = await scrape();
      return [labA.ns.client, labA.ns.fw, labB!.ns.fw].every((ns) => new RegExp(`ctpipe_collector_netns_events_total\\{netns="${ns}"\\} [1-9]`).test(m));
    }, log);
    let m = await scrape();
    expect(m).toContain(`ctpipe_collector_netns_up{netns="${labB.ns.fw}"} 1`);
    expect(m).toMatch(new RegExp(`ctpipe_collector_netns_lost_events_total\\{netns="${labA.ns.fw}"\\} 0`));
    const removedBefore = Number(/ctpipe_collector_netns_removed_total (\d+)/.exec(m)![1]);

    // a removed namespace is let go: said, counted, its series gone
    const gone = labB.ns;
    await labB.destroy();
    labB = undefined;
    await until('the removed lab let go', () => [gone.fw, gone.client, gone.server].every((ns) => out.stderr.includes(`let go of the network namespace ${ns}`)), log);
    m = await scrape();
    expect(m).not.toContain(`netns="${gone.fw}"`);
    expect(Number(/ctpipe_collector_netns_removed_total (\d+)/.exec(m)![1])).toBeGreaterThanOrEqual(removedBefore + 3);
    expect(m).toContain(`ctpipe_collector_netns_up{netns="${labA.ns.fw}"} 1`);
    const letGo = out.stderr.split('\n').find((l) => l.includes(`let go of the network namespace ${gone.fw}`))!;
    expect(JSON.parse(letGo)).toMatchObject({ netns: gone.fw, events: expect.any(Number) as number, drops: 0 });

    // the first lab is still followed after the other went
    const again = await labA.tcpConnect(ADDR.server4, 8080, 100);
    await until('a later flow of the remaining namespace', () => flows(out.stdout, 8080, again.local).some((r) => r.netns === labA.ns.fw), log);

    p.kill('SIGTERM');
    expect(await exited(p), out.stderr.slice(-4000)).toBe(0);
  });

  it('--netns containers follows the namespaces of running processes, the host\'s own among them, and lets go of one whose last process ended', async () => {
    const { p, out } = ctpipe(['collect', '--netns', 'containers', '--netns-interval', '300ms', '--output', 'jsonl', '--host', 'netns-containers',
      '--stats-interval', '500ms', '--no-metrics-enabled']);
    const log = () => out.stderr;
    const own = statSync('/proc/self/ns/net').ino;
    await until('the host namespace followed', () => out.stderr.includes(`following the network namespace inode:${own}`) && out.stderr.includes('"collecting"'), log);
    // a named namespace keeps its name, though processes (the lab's servers) hold it too
    expect(out.stderr).toContain(`following the network namespace ${labA.ns.server}`);
    expect(out.stderr).not.toMatch(new RegExp(`following the network namespace inode:${statSync(labA.netnsPath('server')).ino}`));
    // a process in an unnamed namespace of its own, made after start
    const holder = spawn('unshare', ['--net', 'sleep', '60']);
    procs.push(holder as ChildProcessWithoutNullStreams);
    let ino = 0;
    await until('the process\'s namespace', () => {
      try {
        const n = statSync(`/proc/${holder.pid}/ns/net`).ino;
        if (n !== own) ino = n;
      } catch { /* not started yet */ }
      return ino !== 0 && out.stderr.includes(`following the network namespace inode:${ino}`);
    }, log);
    expect(records(out.stdout).some((r) => r.type === 'dump_end' && r.netns === `inode:${ino}`)).toBe(true);
    holder.kill('SIGKILL');
    await until('the ended namespace let go', () => out.stderr.includes(`let go of the network namespace inode:${ino}`), log);
    p.kill('SIGTERM');
    expect(await exited(p), out.stderr.slice(-4000)).toBe(0);
  });

  it('ctpipe run keeps the same tuple of two namespaces apart: a row each, tagged with its namespace', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-netns-'));
    dirs.push(dir);
    const chdb = path.join(dir, 'chdb');
    const { p, out } = ctpipe(['run', '--netns', 'all', '--netns-interval', '300ms', '--host', 'netns-run', '--clickhouse-url', `chdb:${chdb}`,
      '--no-metrics-enabled', '--stats-interval', '500ms']);
    await until('the lab followed', () => out.stderr.includes(`following the network namespace ${labA.ns.client}`) && out.stderr.includes('"running: collector and processor"'), () => out.stderr, 60_000);
    const c = await labA.tcpConnect(ADDR.server4, 8080, 300);
    await sleep(1500);
    p.kill('SIGINT');
    expect(await exited(p), out.stderr.slice(-4000)).toBe(0);
    const rows = await queryStore<{ netns: string; orig_sport: number; conn_state: string }>(chdb,
      `SELECT netns, orig_sport, conn_state FROM ctpipe.flows FINAL WHERE host = 'netns-run' AND orig_dport = 8080 AND orig_sport = ${c.local} ORDER BY netns`);
    expect(rows.map((r) => r.netns)).toEqual([labA.ns.client, labA.ns.fw].sort());

    // the Flow explorer filters by namespace: its variable lists them, its table keeps the one picked
    const st = await openStore({ url: `chdb:${chdb}`, database: 'ctpipe' });
    try {
      const d = flowsDashboard('ctpipe');
      const ctx = { fromMs: Date.now() - 600_000, toMs: Date.now() + 60_000, intervalMs: 10_000 };
      const vars = await resolveVariables(st, d, ctx, 'all');
      expect(vars.netns!.options).toEqual(expect.arrayContaining([labA.ns.client, labA.ns.fw].map(encodeURIComponent)));
      const connections = async (netns: typeof vars.netns) => {
        const [r] = await runDashboard(st, d, { ...ctx, vars: { ...vars, netns: netns! } }, (p) => p.title === 'Connections');
        return r!.rows.filter((x) => Number(x.sport) === c.local && Number(x.dport) === 8080).map((x) => x.netns as string).sort();
      };
      expect(await connections(vars.netns)).toEqual([labA.ns.client, labA.ns.fw].sort());
      expect(await connections({ values: [encodeURIComponent(labA.ns.client)], multi: true })).toEqual([labA.ns.client]);
    } finally {
      await st.close();
    }
  });
});
