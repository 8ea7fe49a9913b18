/**
 * The messages a newcomer meets in the first hour, each produced for real: no root or no
 * CAP_NET_ADMIN, a namespace where conntrack is not active (and --enable-conntrack fixing it),
 * conntrack sysctls off, Kafka and ClickHouse unreachable (which address, what to check), and the
 * embedded store's directory held by another process.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVATION_TABLE } from '../../collector/activation.js';
import { BIN, exited } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';

let dir: string;
const ns = `ctp-newcomer-${process.pid}`;
const inNs = (cmd: string, ...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
const ctpipe = (args: string[], opts: { timeout?: number } = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
const messages = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; code?: string });

beforeAll(() => {
  expect(process.getuid?.(), 'these tests need root').toBe(0);
  dir = tempDir('newcomer');
  // a namespace with no firewall rule at all: conntrack does not track it
  expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
  expect(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status).toBe(0);
});

afterAll(() => {
  spawnSync('ip', ['netns', 'del', ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `ctpipe collect` in the namespace for `seconds`, pinging loopback there meanwhile. */
async function collectWithPings(extra: string[], seconds: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [BIN, 'collect', '--netns', `/run/netns/${ns}`, '--output', 'jsonl', '--duration', `${seconds}s`, '--no-metrics-enabled', ...extra]);
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // pings once it listens (a fixed wait lost them on a loaded machine: the start took longer)
  for (let t = 0; !stderr.includes('subscribed to conntrack events'); t += 100) {
    if (t > 30_000 || p.exitCode !== null) throw new Error(`ctpipe collect did not subscribe:\n${stderr}`);
    await sleep(100);
  }
  inNs('ping', '-c', '3', '-i', '0.2', '127.0.0.1');
  return { code: await exited(p), stdout, stderr };
}

describe('messages a newcomer understands', () => {
  it('ctpipe demo without root says it needs root and how to run it', () => {
    const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, BIN, 'demo'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ctpipe demo builds network namespaces.*needs root\. Run it as root: sudo \.\/bin\/ctpipe\.js demo.*\[NEEDS_ROOT\]/s);
  });

  it('ctpipe run without CAP_NET_ADMIN names the capability and the ways to grant it', () => {
    const r = spawnSync('setpriv', ['--bounding-set', '-net_admin', process.execPath, BIN, 'run', '--clickhouse-url', `chdb:${dir}/caps`], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs CAP_NET_ADMIN.*AmbientCapabilities=CAP_NET_ADMIN.*cap_add: \[NET_ADMIN\].*\[CAP_NET_ADMIN_MISSING\]/s);
  });

  it('warns when conntrack is not active in the namespace and says how to enable it', async () => {
    const r = await collectWithPings([], 13);
    expect(r.code, r.stderr).toBe(0);
    const warn = messages(r.stderr).filter((m) => m.code === 'CONNTRACK_INACTIVE');
    expect(warn.length).toBe(1);
    expect(warn[0]!.msg).toMatch(/conntrack is probably not active in this network namespace.*--enable-conntrack.*nft add rule inet track pre ct state new counter/);
    expect(r.stdout).not.toMatch(/"type":"new"/); // the pings were not tracked
  });

  it('--enable-conntrack makes the namespace tracked while it runs, then removes its table', async () => {
    const r = await collectWithPings(['--enable-conntrack'], 13);
    expect(r.code, r.stderr).toBe(0);
    expect(messages(r.stderr).some((m) => m.code === 'CONNTRACK_INACTIVE')).toBe(false);
    const news = r.stdout.split('\n').filter((l) => l.includes('"type":"new"')).map((l) => JSON.parse(l) as { orig: { proto: number; dst: string } });
    expect(news.some((n) => n.orig.proto === 1 && n.orig.dst === '127.0.0.1')).toBe(true);
    expect(inNs('nft', 'list', 'tables').stdout).not.toContain(ACTIVATION_TABLE);
  });

  it('says which conntrack sysctl is off, what is lost, and the fix', async () => {
    expect(inNs('sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_acct=0').status).toBe(0);
    const r = ctpipe(['collect', '--netns', `/run/netns/${ns}`, '--output', 'jsonl', '--duration', '1s', '--no-metrics-enabled']);
    expect(r.status, r.stderr).toBe(0);
    expect(messages(r.stderr).map((m) => m.msg)).toContain(
      'net.netfilter.nf_conntrack_acct is 0: DESTROY events and dumps carry no packet or byte counters. Fix: sysctl -w net.netfilter.nf_conntrack_acct=1, or run with --set-sysctls');
  });

  it('names the Kafka address it cannot reach and what to check; the collector keeps the records and stops cleanly', () => {
    const spool = path.join(dir, 'spool');
    const r = ctpipe(['collect', '--netns', `/run/netns/${ns}`, '--kafka-brokers', '127.0.0.1:1', '--kafka-spool-dir', spool,
      '--kafka-flush-timeout', '2s', '--duration', '3s', '--stats-interval', '1s', '--no-metrics-enabled'], { timeout: 40_000 });
    expect(r.status, r.stderr).toBe(0);
    const err = messages(r.stderr).find((m) => m.level === 50);
    expect(err?.msg).toMatch(/^Kafka at 127\.0\.0\.1:1 does not take records \(.*ECONNREFUSED.*\)\. Check that the brokers run .*--kafka-brokers, CTPIPE_KAFKA_BROKERS.*Nothing is lost meanwhile.*spool \(.*spool\)/);
    expect(readdirSync(spool).length).toBeGreaterThan(0);
    const p = ctpipe(['process', '--kafka-brokers', '127.0.0.1:1', '--clickhouse-url', `chdb:${dir}/proc`, '--no-metrics-enabled'], { timeout: 120_000 });
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/^ctpipe: Kafka at 127\.0\.0\.1:1 cannot be reached \(.*ECONNREFUSED.*\)\. Check that the brokers run and are reachable .*\[KAFKA_UNAVAILABLE\]$/m);
  });

  it('names the ClickHouse address it cannot reach and what to check', () => {
    const r = ctpipe(['query', '--clickhouse-url', 'http://127.0.0.1:1', 'SELECT 1']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ctpipe: ClickHouse at http:\/\/127\.0\.0\.1:1 cannot be reached \(is it running, and are the address, user and password right\?\): .*ECONNREFUSED.*\[STORE_UNAVAILABLE\]$/m);
  });

  it('names the process holding the embedded store and the ways out', async () => {
    const store = path.join(dir, 'held');
    const holder = spawn(process.execPath, [BIN, 'run', '--netns', `/run/netns/${ns}`, '--clickhouse-url', `chdb:${store}`, '--no-metrics-enabled']);
    let log = '';
    holder.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitWhile(() => !log.includes('running: collector and processor'), { within: 60_000, every: 100, alive: holder, why: () => log });
      expect(existsSync(path.join(store, 'status'))).toBe(true);
      const r = ctpipe(['query', '--clickhouse-url', `chdb:${store}`, 'SELECT 1']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`ctpipe: cannot open the embedded ClickHouse at ${store}: the directory is in use by process ${holder.pid} \\(.*ctpipe\\.js run .*\\); ` +
        'the embedded store serves one process at a time\\. Stop that process first, .* --clickhouse-url http://HOST:8123 \\[STORE_UNAVAILABLE\\]'));
    } finally {
      holder.kill('SIGTERM');
      expect(await exited(holder)).toBe(0);
    }
  });
});
