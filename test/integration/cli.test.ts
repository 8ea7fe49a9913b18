/**
 * The `ctpipe` program as users run it: `ctpipe collect` in a lab namespace writing JSON lines or
 * publishing to Kafka (librdkafka's mock cluster), graceful shutdown, the operator endpoint,
 * help and errors.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { fromJsonLine } from '../../contract/json.js';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { consumeAll, KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';

const BIN = path.join(packageRoot(), 'bin', 'ctpipe.js');

function ctpipe(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
}

function collectOutput(p: ChildProcessWithoutNullStreams) {
  const out = { stdout: '', stderr: '' };
  p.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return { out, exited };
}

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error('timed out waiting');
    await sleep(50);
  }
}

let lab: Lab;
let recorded = '';
let kafka: KafkaMock;
const dirs: string[] = [];
beforeAll(async () => {
  lab = await Lab.create();
  await lab.tcpServer(8080);
  kafka = await KafkaMock.start();
});
afterAll(() => release(kafka, lab, ...dirs));

describe('ctpipe collect', () => {
  it('writes JSON lines for real traffic and flushes on SIGTERM', async () => {
    const p = ctpipe(['collect', '--output', 'jsonl', '--netns', lab.netnsPath('fw'), '--host', 'fw-jsonl', '--metrics-listen', '127.0.0.1:19501', '--stats-interval', '500ms']);
    const { out, exited } = collectOutput(p);
    await waitFor(() => out.stderr.includes('"collecting"'));
    const health = await fetch('http://127.0.0.1:19501/healthz');
    expect(health.status).toBe(200);
    const { local } = await lab.tcpConnect(ADDR.server4, 8080, 500);
    await waitFor(() => out.stdout.includes(`"sport":${local},"dport":8080`) && out.stdout.includes('TIME_WAIT'));
    const metrics = await (await fetch('http://127.0.0.1:19501/metrics')).text();
    expect(metrics).toMatch(/ctpipe_collector_records_total\{type="new"\} [1-9]/);
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stderr).toContain('"stopped"');
    recorded = out.stdout;
    const recs = out.stdout.trim().split('\n').map(fromJsonLine);
    expect(recs.map((r) => r.seq)).toEqual(recs.map((_, i) => i + 1));
    expect(recs.every((r) => r.host === 'fw-jsonl')).toBe(true);
    const conn = recs.filter((r): r is CtRecord => 'orig' in r && r.orig.sport === local);
    expect(conn[0]!.type).toBe('new');
    expect(recs.some((r) => r.type === 'stats')).toBe(true);
  });

  it('publishes to Kafka keyed by host, and everything arrives', async () => {
    const spool = tempDir('cli-spool');
    dirs.push(spool);
    const topic = `cli-${Date.now()}`;
    const p = ctpipe(['collect', '--netns', lab.netnsPath('fw'), '--host', 'fw-kafka', '--no-metrics-enabled'], {
      CTPIPE_KAFKA_BROKERS: kafka.brokers.join(','), CTPIPE_KAFKA_TOPIC: topic, CTPIPE_KAFKA_SPOOL_DIR: spool,
    });
    const { out, exited } = collectOutput(p);
    await waitFor(() => out.stderr.includes('"collecting"'));
    const locals: number[] = [];
    for (let i = 0; i < 5; i++) locals.push((await lab.tcpConnect(ADDR.server4, 8080, 100)).local);
    await sleep(500);
    p.kill('SIGINT');
    expect(await exited).toBe(0);
    const stopped = JSON.parse(out.stderr.trim().split('\n').find((l) => l.includes('"stopped"'))!) as { seq: number; sent: number };
    expect(stopped.sent).toBe(stopped.seq);
    const msgs = await consumeAll(kafka.brokers, topic, (m) => m.reduce((n, x) => n + decodeBatch(x.value).records.length, 0) >= stopped.seq);
    expect(new Set(msgs.map((m) => m.key))).toEqual(new Set(['fw-kafka']));
    const recs: CtpipeRecord[] = msgs.flatMap((m) => decodeBatch(m.value).records);
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: stopped.seq }, (_, i) => i + 1));
    for (const l of locals) expect(recs.some((r) => 'orig' in r && r.orig.sport === l && r.type === 'new')).toBe(true);
  });

  it('warns about conntrack sysctls that lose data, and --set-sysctls turns them on in the watched namespace', async () => {
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_acct', '0');
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_events', '2');
    const read = async (k: string) => (await lab.exec('fw', 'sysctl', ['-n', k])).stdout.trim();
    const warn = spawnSync(process.execPath, [BIN, 'collect', '--output', 'jsonl', '--netns', lab.netnsPath('fw'), '--duration', '500ms', '--no-metrics-enabled'], { encoding: 'utf8' });
    expect(warn.status).toBe(0);
    expect(warn.stderr).toContain('nf_conntrack_acct is 0: DESTROY events and dumps carry no packet or byte counters');
    expect(warn.stderr).toContain('nf_conntrack_events is 2');
    expect(await read('net.netfilter.nf_conntrack_acct')).toBe('0');
    const set = spawnSync(process.execPath, [BIN, 'collect', '--output', 'jsonl', '--netns', lab.netnsPath('fw'), '--duration', '500ms', '--no-metrics-enabled', '--set-sysctls'], { encoding: 'utf8' });
    expect(set.status).toBe(0);
    expect(set.stderr).toContain('sysctl turned on (--set-sysctls); it applies to connections created from now on, in the whole network namespace, and stays on after stop (--restore-sysctls puts it back)');
    // said again at stop, with the way back: the change outlives the process
    expect(set.stderr).toContain('net.netfilter.nf_conntrack_acct stays 1 after this stop (it was 0; --set-sysctls changed it): sysctl -w net.netfilter.nf_conntrack_acct=0 puts it back, or run with --restore-sysctls');
    expect(set.stderr).toContain('net.netfilter.nf_conntrack_events stays 1 after this stop (it was 2;');
    expect(await read('net.netfilter.nf_conntrack_acct')).toBe('1');
    expect(await read('net.netfilter.nf_conntrack_events')).toBe('1');
  });

  it('--restore-sysctls puts back at stop what --set-sysctls turned on', async () => {
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_acct', '0');
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_events', '2');
    const read = async (k: string) => (await lab.exec('fw', 'sysctl', ['-n', k])).stdout.trim();
    const r = spawnSync(process.execPath, [BIN, 'collect', '--output', 'jsonl', '--netns', lab.netnsPath('fw'), '--duration', '500ms', '--no-metrics-enabled',
      '--set-sysctls', '--restore-sysctls'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('is put back to 0 at stop (--restore-sysctls)');
    expect(r.stderr).toContain('net.netfilter.nf_conntrack_acct put back to 0 (--restore-sysctls)');
    expect(r.stderr).toContain('net.netfilter.nf_conntrack_events put back to 2 (--restore-sysctls)');
    expect(await read('net.netfilter.nf_conntrack_acct')).toBe('0');
    expect(await read('net.netfilter.nf_conntrack_events')).toBe('2');
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_acct', '1'); // as the lab had it
  });

  it('replays a recorded JSON lines file to Kafka exactly, skipping malformed lines', async () => {
    expect(recorded.length).toBeGreaterThan(0);
    const dir = tempDir('replay');
    dirs.push(dir);
    const file = path.join(dir, 'recording.jsonl');
    const lines = recorded.trim().split('\n');
    writeFileSync(file, [...lines.slice(0, 2), '{"type":"new","broken":', ...lines.slice(2)].join('\n') + '\n');
    const topic = `replay-${Date.now()}`;
    const r = spawnSync(process.execPath, [BIN, 'replay', file, '--kafka-brokers', kafka.brokers.join(','), '--kafka-topic', topic], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`replayed ${lines.length} of ${lines.length} records from ${file} to Kafka topic ${topic}; 1 unreadable part(s) skipped (first at: line 3)\n`);
    const msgs = await consumeAll(kafka.brokers, topic, (m) => m.reduce((n, x) => n + decodeBatch(x.value).records.length, 0) >= lines.length);
    const got = msgs.flatMap((m) => decodeBatch(m.value).records);
    const want = lines.map(fromJsonLine);
    expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(want)));
  });

  it('exits with a clear message when it lacks CAP_NET_ADMIN', () => {
    const r = spawnSync('setpriv', ['--bounding-set', '-net_admin', process.execPath, BIN, 'collect', '--output', 'jsonl', '--no-metrics-enabled'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs CAP_NET_ADMIN.*\[CAP_NET_ADMIN_MISSING\]/s);
  });
});

describe('ctpipe help and errors', () => {
  it.each(['collect', 'config', 'replay'])('%s --help lists its flags', (cmd) => {
    const r = spawnSync(process.execPath, [BIN, cmd, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`ctpipe ${cmd}:`);
    expect(r.stdout).toContain('--log-level');
  });

  it('rejects a bad flag and bad config with exit code 2', () => {
    const bad = spawnSync(process.execPath, [BIN, 'collect', '--nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--nope'");
    const cfg = spawnSync(process.execPath, [BIN, 'config', '--check'], { encoding: 'utf8', env: { ...process.env, CTPIPE_COLLECT_RCVBUF: 'big' } });
    expect(cfg.status).toBe(2);
    expect(cfg.stderr).toContain('collect.rcvbuf: "big" is not a size');
    const unknown = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it('never prints secrets', () => {
    const r = spawnSync(process.execPath, [BIN, 'config'], { encoding: 'utf8', env: { ...process.env, CTPIPE_KAFKA_SASL_PASSWORD: 'hunter2' } });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('hunter2');
    expect(r.stdout).toContain('[redacted]');
  });
});
