/**
 * Statistics per network namespace on the real kernel: `ctpipe run --netns all` follows a lab whose
 * firewall and server namespaces both track connections (the server its own output). INVALID
 * packets (hping3 SYN+FIN+RST) reach the firewall only: its host_stats rows count them, the
 * server's count none, and the invalid_spike anomaly names the firewall's namespace alone. Before
 * version 11 both namespaces' counters went into one host's baseline and table. The Host detail
 * dashboard's INVALID panel keeps the namespace picked.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostDashboard } from '../../dashboards/host.js';
import { resolveVariables, runDashboard } from '../../dashboards/run-queries.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { BIN, exited } from '../helpers/procs.js';
import { queryStore } from '../helpers/store.js';

const HOST = 'netns-stats';
let lab: Lab;
let dir = '';
let p: ChildProcessWithoutNullStreams | undefined;
let stderr = '';

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    if (ok()) return;
    if (p?.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}\n${stderr.slice(-4000)}`);
}

beforeAll(async () => {
  lab = await Lab.create();
  // the server tracks its own output: a second namespace with a live conntrack table, and no INVALID
  await lab.exec('server', 'nft', ['add', 'table', 'inet', 'ctp_track']);
  await lab.exec('server', 'nft', ['add', 'chain', 'inet', 'ctp_track', 'out', '{', 'type', 'filter', 'hook', 'output', 'priority', '0', ';', '}']);
  await lab.exec('server', 'nft', ['add', 'rule', 'inet', 'ctp_track', 'out', 'ct', 'state', 'new', 'counter']);
  await lab.tcpServer(8080);
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-netns-stats-'));
  p = spawn(process.execPath, [BIN, 'run', '--netns', 'all', '--netns-interval', '300ms', '--host', HOST, '--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`,
    '--no-metrics-enabled', '--stats-interval', '500ms']);
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  p.stdout.resume();
  await until('the lab followed', () => stderr.includes(`following the network namespace ${lab.ns.fw}`) && stderr.includes(`following the network namespace ${lab.ns.server}`)
    && stderr.includes('"running: collector and processor"'));
  for (let i = 0; i < 3; i++) await lab.tcpConnect(ADDR.server4, 8080, 200);
  await sleep(3000); // quiet intervals: the namespaces' baselines
  await lab.hpingInvalid(ADDR.server4, 4000);
  await sleep(1500);
  p.kill('SIGINT');
  expect(await exited(p)).toBe(0);
}, 180_000);

afterAll(async () => {
  p?.kill('SIGKILL');
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const mine = (netns: string) => netns.startsWith(`ctp-${lab.id}-`);

describe('statistics and their anomalies per network namespace (--netns all, real kernel)', () => {
  it('host_stats has rows per namespace: the firewall counts the INVALID packets, the server none', async () => {
    const rows = await queryStore<{ netns: string; n: string; invalid: string; entries: number }>(path.join(dir, 'chdb'),
      `SELECT netns, count() AS n, sum(invalid) AS invalid, max(entries) AS entries FROM ctpipe.host_stats WHERE host = '${HOST}' GROUP BY netns ORDER BY netns`);
    const by = new Map(rows.filter((r) => mine(r.netns)).map((r) => [r.netns, r]));
    expect([...by.keys()].sort()).toEqual([lab.ns.client, lab.ns.fw, lab.ns.server].sort());
    for (const r of by.values()) expect(Number(r.n)).toBeGreaterThanOrEqual(5);
    expect(Number(by.get(lab.ns.fw)!.invalid)).toBeGreaterThanOrEqual(Math.min(4000, await lab.invalidCounter()) * 0.9);
    expect(Number(by.get(lab.ns.server)!.invalid)).toBe(0);
    expect(Number(by.get(lab.ns.server)!.entries)).toBeGreaterThan(0); // tracking, not idle
    expect(rows.every((r) => r.netns !== '')).toBe(true); // every row of a --netns all collector names its namespace
  });

  it('the invalid_spike anomaly names the firewall\'s namespace only', async () => {
    const rows = await queryStore<{ netns: string; kind: string; observed: number }>(path.join(dir, 'chdb'),
      `SELECT netns, kind, observed FROM ctpipe.anomalies FINAL WHERE host = '${HOST}' AND kind IN ('invalid_spike', 'table_pressure', 'table_drops')`);
    const ours = rows.filter((r) => mine(r.netns));
    expect(ours.map((r) => [r.netns, r.kind])).toEqual([[lab.ns.fw, 'invalid_spike']]);
    expect(ours[0]!.observed).toBeGreaterThan(5);
  });

  it('the Host detail dashboard lists the namespaces and its INVALID panel keeps the one picked', async () => {
    const st = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: 'ctpipe' });
    try {
      const d = hostDashboard('ctpipe');
      const ctx = { fromMs: Date.now() - 600_000, toMs: Date.now() + 60_000, intervalMs: 10_000 };
      const vars = await resolveVariables(st, d, ctx, 'all');
      expect(vars.host!.values).toEqual([HOST]);
      expect(vars.netns!.options).toEqual(expect.arrayContaining([lab.ns.fw, lab.ns.server].map(encodeURIComponent)));
      const invalid = async (netns: string) => {
        const [r] = await runDashboard(st, d, { ...ctx, vars: { ...vars, netns: { values: [encodeURIComponent(netns)], multi: true } } }, (x) => x.title === 'INVALID and drops per second');
        return r!.rows.reduce((s, x) => s + Number(x.invalid_per_s), 0);
      };
      expect(await invalid(lab.ns.fw)).toBeGreaterThan(0);
      expect(await invalid(lab.ns.server)).toBe(0);
      const [table] = await runDashboard(st, d, { ...ctx, vars }, (x) => x.title === 'Table entries and maximum');
      expect(new Set(table!.rows.map((x) => x.netns)).has(lab.ns.server)).toBe(true);
    } finally {
      await st.close();
    }
  });
});
