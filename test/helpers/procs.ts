/** `ctpipe` child processes for end-to-end tests: their logs and log lines, waiting on a log line, their exit. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_FLAGS } from '../../common/node-flags.js';
import { packageRoot } from '../../common/paths.js';

export const BIN = path.join(packageRoot(), 'bin', 'ctpipe.js');

export class Procs {
  readonly logs: string[] = [];
  private readonly children = new Set<ChildProcessWithoutNullStreams>();
  constructor(private readonly env: () => Record<string, string> = () => ({})) {}

  /** Children that find the Kafka brokers (asked at each start) and topic in their environment; no metrics endpoint. */
  static onKafka(brokers: () => string[], topic: string): Procs {
    return new Procs(() => ({ CTPIPE_KAFKA_BROKERS: brokers().join(','), CTPIPE_KAFKA_TOPIC: topic, CTPIPE_METRICS_ENABLED: 'false' }));
  }

  /** SIGKILLs whatever is still running (a failed or timed-out test leaves no process behind). */
  async killAll(): Promise<void> {
    const left = [...this.children]; // each leaves the set when it exits
    for (const p of left) p.kill('SIGKILL');
    await Promise.all(left.map(exited));
  }

  /** Starts `ctpipe ARGS`; returns the process and the index of its log. */
  start(args: string[], env: Record<string, string> = {}): [ChildProcessWithoutNullStreams, number] {
    const p = spawn(process.execPath, [...NODE_FLAGS, BIN, ...args], { env: { ...process.env, ...this.env(), ...env } });
    this.children.add(p);
    p.on('exit', () => this.children.delete(p));
    const i = this.logs.push('') - 1;
    p.stderr.on('data', (d: Buffer) => (this.logs[i] += d.toString()));
    return [p, i];
  }

  async waitLog(i: number, want: RegExp | string, ms = 60_000): Promise<void> {
    const ok = () => (typeof want === 'string' ? this.logs[i]!.includes(want) : want.test(this.logs[i]!));
    for (let t = 0; t < ms && !ok(); t += 100) await sleep(100);
    if (!ok()) throw new Error(`no ${String(want)} in log ${i}:\n${this.logs.map((l, k) => `[${k}] ${l.slice(-1500)}`).join('\n')}`);
  }

  /** Waits until `ok()`, looking every 250 ms; on timeout fails naming `what`, with every log's tail. */
  async until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
    for (let t = 0; t < ms; t += 250) {
      if (await ok()) return;
      await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}\n${this.logs.map((l, i) => `[${i}] ${l.slice(-3000)}`).join('\n')}`);
  }

  /** The first line of log `i` that holds `text`, parsed (ctpipe logs JSON lines). */
  logLine<T>(i: number, text: string): T {
    return JSON.parse(this.logs[i]!.split('\n').find((l) => l.includes(text))!) as T;
  }
}

export function exited(p: ChildProcessWithoutNullStreams): Promise<number | null> {
  // a process killed by a signal has no exit code, only a signal code
  return new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));
}
