/**
 * Counter dumps on the real kernel (collector/counter-dumps.ts): the kernel sends a flow's byte
 * counters only in DESTROY events and dumps, so without them a flow still open at Ctrl-C of
 * `ctpipe run` got a row with 0 bytes. A long TCP transfer through the lab firewall stays open:
 * - with periodic counter dumps, its refresh rows carry growing byte counts while it runs (read
 *   during the run through the ClickHouse front, as a dashboard would);
 * - at Ctrl-C, the stop dump gives its row the bytes the kernel counted (`conntrack -L -o
 *   extended` in the firewall, the transfer paused so the count holds still);
 * - past `collect.counter_dump_max_entries` no dump runs and the log says so;
 * - through Kafka (`ctpipe collect` -> librdkafka's mock cluster -> `ctpipe process`) the dump rows
 *   travel as records and the processor's refresh rows grow the same way.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';

let lab: Lab;
let dir: string;
let front: ClickHouseFront;
let kafka: KafkaMock | undefined;
const procs = new Procs();
const streams: ChildProcess[] = [];

interface Row { version: string; end_reason: string; orig_bytes: string; orig_packets: string; reply_bytes: string; reply_packets: string }

async function frontQuery<T>(sql: string, params: Record<string, string | number> = {}): Promise<T[]> {
  const q = new URLSearchParams({ query: `${sql} FORMAT JSONEachRow` });
  for (const [k, v] of Object.entries(params)) q.set(`param_${k}`, String(v));
  const r = await fetch(`${front.url}/?${q.toString()}`, { method: 'POST' });
  const text = await r.text();
  if (!r.ok) throw new Error(`query failed: ${text}`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/** Every stored row of the lab client's connection from `sport` (all versions not yet merged). */
const flowRows = (host: string, sport: number) => frontQuery<Row>(
  `SELECT toString(version) AS version, end_reason, toString(orig_bytes) AS orig_bytes, toString(orig_packets) AS orig_packets,
     toString(reply_bytes) AS reply_bytes, toString(reply_packets) AS reply_packets
   FROM ctpipe.flows WHERE host = {host:String} AND orig_sport = {sport:UInt16} AND orig_dport = 8080 ORDER BY version`,
  { host, sport });

/** The kernel's counters of the lab client's connection from `sport`, as conntrack-tools prints them. */
async function kernelCounters(sport: number): Promise<{ origBytes: number; origPackets: number; replyBytes: number; replyPackets: number }> {
  const r = await lab.conntrack(['-L', '-o', 'extended', '-p', 'tcp', '--orig-port-src', String(sport)]);
  const line = r.stdout.split('\n').find((l) => l.includes(`sport=${sport} `));
  const m = line && /packets=(\d+) bytes=(\d+) .*packets=(\d+) bytes=(\d+)/.exec(line);
  if (!m) throw new Error(`no counters for sport ${sport} in conntrack -L (nf_conntrack_acct off?):\n${r.stdout}`);
  return { origPackets: Number(m[1]), origBytes: Number(m[2]), replyPackets: Number(m[3]), replyBytes: Number(m[4]) };
}

/** `ctpipe run` on the lab firewall into the front's store; resolves once it runs. */
async function startRun(host: string, flags: string[]): Promise<[ReturnType<Procs['start']>[0], number]> {
  const [p, log] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', front.url, '--host', host,
    '--process-flush', '300ms', '--stats-interval', '1s', '--no-metrics-enabled', ...flags]);
  await procs.waitLog(log, 'running: collector and processor', 90_000);
  return [p, log];
}

/** Collects open-transfer refresh rows of `host` until three carry bytes; their bytes by version, checked to grow. */
async function growingRefreshRows(host: string, sport: number): Promise<number[]> {
  const seen = new Map<string, number>();
  await procs.until(`three refresh rows of the open transfer with growing bytes (${host})`, async () => {
    for (const r of await flowRows(host, sport)) if (r.end_reason === 'open') seen.set(r.version, Number(r.orig_bytes));
    return [...seen.values()].filter((b) => b > 0).length >= 3;
  }, 90_000);
  const bytes = [...seen.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([, b]) => b).filter((b) => b > 0);
  for (let i = 1; i < bytes.length; i++) expect(bytes[i]!).toBeGreaterThan(bytes[i - 1]!);
  return bytes;
}

/** A transfer that stays open: 32 KB every 100 ms from the client to the server. */
async function stream(): Promise<{ local: number; proc: ChildProcess }> {
  const s = await lab.tcpStream(ADDR.server4, 8080, 32 * 1024, 100);
  streams.push(s.proc);
  return s;
}

const within = (got: number, want: number, frac: number) => Math.abs(got - want) <= want * frac;

beforeAll(async () => {
  lab = await Lab.create({ accounting: true });
  await lab.tcpServer(8080);
  dir = tempDir('counter-dumps');
  front = await ClickHouseFront.start(dir);
}, 60_000);

afterAll(async () => {
  for (const s of streams) s.kill('SIGKILL');
  await release(procs, front, kafka, lab, dir);
});

describe('counter dumps (real kernel, ctpipe run)', () => {
  it('gives an open flow\'s refresh rows growing byte counts while the run goes on (periodic dumps)', async () => {
    const [p, log] = await startRun('cd-periodic', ['--counter-dump-interval', '1s', '--process-refresh', '1s', '--counter-dump-at-stop', '0']);
    const { local } = await stream();
    // the rows as they are stored during the run: each refresh row newer and with more bytes
    const byVersion = await growingRefreshRows('cd-periodic', local);
    // the newest refresh row is at most a couple of dump intervals behind the kernel
    const kernel = await kernelCounters(local);
    expect(byVersion[byVersion.length - 1]!).toBeGreaterThan(kernel.origBytes * 0.3);
    expect(byVersion[byVersion.length - 1]!).toBeLessThanOrEqual(kernel.origBytes);
    p.kill('SIGINT');
    expect(await exited(p)).toBe(0);
    expect(procs.logs[log]).not.toContain('counter dump failed');
  }, 180_000);

  it('gives a flow still open at Ctrl-C the bytes the kernel counted (stop dump)', async () => {
    // no periodic dump: only the stop dump can bring the counters
    const [p, log] = await startRun('cd-stop', ['--counter-dump-interval', '0']);
    const { local, proc } = await stream();
    await sleep(3000);
    proc.kill('SIGSTOP'); // the transfer holds still (the connection stays open) so the kernel's count is the one to match
    await sleep(500);
    const kernel = await kernelCounters(local);
    expect(kernel.origBytes).toBeGreaterThan(64 * 1024);
    p.kill('SIGINT');
    expect(await exited(p)).toBe(0);
    proc.kill('SIGKILL');
    expect(procs.logs[log]).toContain('"why":"stop"');
    const rows = await frontQuery<Row>(
      `SELECT toString(version) AS version, end_reason, toString(orig_bytes) AS orig_bytes, toString(orig_packets) AS orig_packets,
         toString(reply_bytes) AS reply_bytes, toString(reply_packets) AS reply_packets
       FROM ctpipe.flows FINAL WHERE host = 'cd-stop' AND orig_sport = {sport:UInt16} AND orig_dport = 8080`, { sport: local });
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.end_reason).toBe('open');
    expect(within(Number(row.orig_bytes), kernel.origBytes, 0.02)).toBe(true);
    expect(within(Number(row.orig_packets), kernel.origPackets, 0.02)).toBe(true);
    expect(within(Number(row.reply_bytes), kernel.replyBytes, 0.02)).toBe(true);
    expect(within(Number(row.reply_packets), kernel.replyPackets, 0.02)).toBe(true);
  }, 180_000);

  it('skips the dump with a log line when the table holds more entries than counter_dump_max_entries', async () => {
    const [p, log] = await startRun('cd-guard', ['--counter-dump-interval', '1s', '--counter-dump-max-entries', '0']);
    const { local, proc } = await stream();
    await procs.waitLog(log, 'counter dump skipped', 30_000);
    proc.kill('SIGSTOP');
    p.kill('SIGINT');
    expect(await exited(p)).toBe(0);
    proc.kill('SIGKILL');
    const skipped = procs.logs[log]!.split('\n').filter((l) => l.includes('counter dump skipped')).map((l) => JSON.parse(l) as { why: string; entries: number });
    // said once when periodic dumps start being skipped, and again for the stop dump
    expect(skipped.map((s) => s.why)).toEqual(['periodic', 'stop']);
    expect(skipped[0]!.entries).toBeGreaterThan(0);
    const rows = await flowRows('cd-guard', local);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.orig_bytes === '0')).toBe(true); // no dump, no counters: the state before this feature
  }, 180_000);

  it('does the same through Kafka: ctpipe collect\'s dump rows update the open flow in ctpipe process', async () => {
    kafka = await KafkaMock.start();
    const topic = `counter-dumps-${Date.now()}`;
    const env = { CTPIPE_KAFKA_BROKERS: kafka.brokers.join(','), CTPIPE_KAFKA_TOPIC: topic };
    const [collector, cl] = procs.start(['collect', '--netns', lab.netnsPath('fw'), '--host', 'cd-kafka', '--kafka-linger', '100ms',
      '--counter-dump-interval', '1s', '--stats-interval', '1s', '--no-metrics-enabled'], env);
    await procs.waitLog(cl, '"collecting"', 60_000);
    const [processor, pl] = procs.start(['process', '--clickhouse-url', front.url, '--process-refresh', '1s', '--process-flush', '300ms',
      '--process-session-timeout', '10s', '--no-metrics-enabled'], env);
    await procs.waitLog(pl, 'joined the consumer group', 90_000);
    const { local } = await stream();
    const bytes = await growingRefreshRows('cd-kafka', local);
    const kernel = await kernelCounters(local);
    expect(bytes[bytes.length - 1]!).toBeLessThanOrEqual(kernel.origBytes);
    collector.kill('SIGINT');
    processor.kill('SIGINT');
    expect(await exited(collector)).toBe(0);
    expect(await exited(processor)).toBe(0);
    expect(procs.logs[cl]).not.toContain('counter dump failed');
  }, 240_000);
});
