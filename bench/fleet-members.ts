/**
 * `ctpipe process` members of one consumer group, for the fleet benchmark and its test: each a
 * child process whose JSON log lines are read as they come (the few that time a rebalance are
 * kept, with the processor's own timestamps), its /metrics on a port of its own, its memory from
 * /proc.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_FLAGS } from '../common/node-flags.js';
import { packageRoot } from '../common/paths.js';

export interface LogLine {
  time: number;
  level: number;
  msg: string;
  partition?: number;
  partitions?: number[];
  open?: number;
  restoreMs?: number;
  checkpoint?: number;
  replayRanges?: number;
  err?: string;
  batchMs?: number;
  checkpointMs?: number;
  leaveMs?: number;
  snapshotMs?: number;
  storeMs?: number;
  readMs?: number;
  openMs?: number;
  applyMs?: number;
  /** A replayed range's batch: 'not resent' (its rows known stored) or 'resent'. */
  replay?: string;
  /** kafkajs's request or response error (a heartbeat answered "rebalancing"). */
  error?: string;
}

/** Lines worth keeping: the membership, restores, stored batches, kafkajs's group requests (debug), warnings and errors. */
/** A heartbeat answered with an error: the coordinator has begun a rebalance (kafkajs logs it at debug). */
const HEARD = /^Response Heartbeat/;
const KEEP = /^(joined the consumer group|partition assigned|batch stored|stopped|(Request|Response) (JoinGroup|SyncGroup))/;

/** A process's CPU time so far (user + system), in ms, from /proc. */
export function cpuMsOf(pid: number): number {
  // the fields after the command's closing parenthesis: utime and stime are the 12th and 13th
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export class Member {
  readonly lines: LogLine[] = [];
  /** The last 200 lines of any kind, for a failure's message. */
  readonly tail: string[] = [];
  exitedAt: number | undefined;
  readonly exited: Promise<number | null>;
  private buf = '';

  private constructor(readonly name: string, readonly proc: ChildProcessWithoutNullStreams, readonly port: number) {
    this.exited = new Promise((r) => proc.once('exit', (code) => {
      this.exitedAt = Date.now();
      r(code);
    }));
    proc.stdout.on('data', () => {});
    proc.stderr.on('data', (d: Buffer) => this.read(d.toString()));
  }

  static async start(name: string, args: string[], env: Record<string, string>): Promise<Member> {
    const port = await freePort();
    const proc = spawn(process.execPath, [...NODE_FLAGS, path.join(packageRoot(), 'bin', 'ctpipe.js'), 'process', ...args, '--metrics-listen', `127.0.0.1:${port}`],
      { env: { ...process.env, CTPIPE_METRICS_ENABLED: 'true', ...env } });
    return new Member(name, proc, port);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private read(s: string): void {
    this.buf += s;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.tail.push(line);
      if (this.tail.length > 200) this.tail.shift();
      try {
        const l = JSON.parse(line) as LogLine;
        if (KEEP.test(l.msg) || l.level >= 40 || (l.error !== undefined && HEARD.test(l.msg))) this.lines.push(l);
      } catch {
        // not a log line (a crash's stack trace): in the tail only
      }
    }
  }

  /** The first kept line at or after `since` (ms) that `ok` accepts. */
  find(ok: (l: LogLine) => boolean, since = 0): LogLine | undefined {
    return this.lines.find((l) => l.time >= since && ok(l));
  }

  async waitFor(what: string, ok: (l: LogLine) => boolean, since = 0, ms = 60_000): Promise<LogLine> {
    for (let t = 0; t < ms; t += 50) {
      const l = this.find(ok, since);
      if (l) return l;
      if (this.exitedAt !== undefined) break;
      await sleep(50);
    }
    throw new Error(`${this.name}: no ${what} within ${ms} ms${this.exitedAt !== undefined ? ' (it exited)' : ''}:\n${this.tail.slice(-30).join('\n')}`);
  }

  /** The partitions of its latest group membership. */
  get partitions(): number[] {
    return this.lines.filter((l) => l.msg === 'joined the consumer group').at(-1)?.partitions ?? [];
  }

  /** VmRSS and VmHWM in bytes. */
  memory(): { rss: number; hwm: number } {
    if (this.exitedAt !== undefined) throw new Error(`${this.name} exited before its memory was read:\n${this.tail.slice(-30).join('\n')}`);
    const s = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  }

  /** CPU time used so far (user + system), in ms: less load-sensitive than a duration. */
  cpuMs(): number {
    return this.exitedAt !== undefined ? NaN : cpuMsOf(this.pid);
  }

  async metric(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  }

  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }
}

/**
 * Starts a member that joins a group which already has a leader. librdkafka's mock coordinator
 * answers a follower whose SyncGroup reaches it after the leader's with INVALID_REQUEST, which
 * kafkajs treats as fatal (test/helpers/group.ts tells the story), so the leader is frozen from
 * before the election until the newcomer has sent its SyncGroup. The newcomer logs at debug level
 * (kafkajs's requests show there), so its stored batches show too.
 */
export async function joinGroup(name: string, args: string[], env: Record<string, string>, leader: Member, heartbeatMs: number, sessionMs: number): Promise<Member> {
  const m = await Member.start(name, args, { ...env, CTPIPE_LOG_LEVEL: 'debug' });
  try {
    await joining(m, leader, heartbeatMs, sessionMs);
  } catch (e) {
    m.kill('SIGKILL'); // not yet the caller's to stop
    throw e;
  }
  return m;
}

async function joining(m: Member, leader: Member, heartbeatMs: number, sessionMs: number): Promise<void> {
  const since = Date.now();
  await m.waitFor('JoinGroup request', (l) => l.msg.startsWith('Request JoinGroup'));
  await sleep(heartbeatMs + 1000); // the leader notices the rebalance at its next heartbeat and rejoins
  leader.kill('SIGSTOP');
  try {
    // the mock elects a leader session - 1 s after the join (rd_kafka_mock_cgrp_rebalance)
    await m.waitFor('SyncGroup request', (l) => l.msg.startsWith('Request SyncGroup'), 0, sessionMs + 10_000);
    await sleep(300);
  } finally {
    leader.kill('SIGCONT');
  }
  await m.waitFor('a share of the partitions', (l) => l.msg === 'joined the consumer group' && (l.partitions?.length ?? 0) > 0, since);
}
