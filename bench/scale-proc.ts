/**
 * What the scale benchmarks share: a ctpipe command as a child process watched through its
 * operator endpoint and /proc, and the kernel's own list of the lab firewall's flows.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_FLAGS } from '../common/node-flags.js';
import { packageRoot } from '../common/paths.js';
import type { Lab } from '../lab/lab.js';

/** /proc's clock ticks per second (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

/** A /proc stat line's fields after the command name (which may hold spaces): minflt is the 8th, utime and stime the 12th and 13th. */
const statFields = (stat: string): string[] => stat.replace(/^.*\) /s, '').split(' ');

function cpuOfStat(stat: string): number {
  const f = statFields(stat);
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** The kernel's part of a thread's time and its page faults: on this machine kind a fault costs ~15 us (docs/PERFORMANCE.md). */
export interface KernelUse { systemS: number; faults: number }
export type ThreadUse = KernelUse & { cpuS: number };

/**
 * Process `pid`'s threads grouped: "main" (the event loop), "netlink readers" (`readers`' ids), and
 * every other thread by its name (chDB's "ThreadPool", "MergeMutate"; "node": V8's helpers and
 * libuv's pool, where chDB's calls run), from /proc/PID/task.
 */
export function threadUse(pid: number, readers: ReadonlySet<number> = new Set()): Map<string, ThreadUse> {
  const out = new Map<string, ThreadUse>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = Number(tid) === pid ? 'main' : readers.has(Number(tid)) ? 'netlink readers' : /\((.*)\)/s.exec(stat)![1]!.replace(/[\d:]+$/, '');
        const f = statFields(stat);
        const t = out.get(name) ?? { cpuS: 0, systemS: 0, faults: 0 };
        out.set(name, { cpuS: t.cpuS + cpuOfStat(stat), systemS: t.systemS + Number(f[12]) / CLOCK_TICKS, faults: t.faults + Number(f[7]) });
      } catch { /* the thread ended */ }
    }
  } catch { /* the process ended */ }
  return out;
}

/** Microseconds of CPU per `n` by thread between two threadUse readings (groups under 0.05 us left out). */
export function usPerBy(before: Map<string, ThreadUse>, after: Map<string, ThreadUse>, n: number): Record<string, number> {
  return Object.fromEntries([...after].map(([name, t]): [string, number] => [name, ((t.cpuS - (before.get(name)?.cpuS ?? 0)) * 1e6) / n])
    .filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]));
}

/** A ctpipe command as a child: its log, its health and metrics, and its peak RSS sampled until it exits. */
export class CtpipeProcess<Health extends { detail: object }> {
  log = '';
  peakKb = 0;
  private readonly p: ChildProcessWithoutNullStreams;
  private readonly port = 20000 + Math.floor(Math.random() * 20000);
  private readonly exit: Promise<number | null>;
  private readonly sampler: NodeJS.Timeout;

  /** `root`: the checkout whose bin/ctpipe.js runs (another build's, for a before/after pair). */
  constructor(readonly command: string, args: string[], env: Record<string, string> = {}, root = packageRoot()) {
    // node's flags as ctpipe is started (common/node-flags.ts), then SCALE_NODE_ARGS (a profile: --cpu-prof --cpu-prof-dir=DIR)
    const node = process.env.SCALE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    this.p = spawn(process.execPath, [...NODE_FLAGS, ...node, path.join(root, 'bin', 'ctpipe.js'), command, ...args, '--metrics-listen', `127.0.0.1:${this.port}`], {
      env: { ...process.env, ...env },
    });
    this.p.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    // SCALE_STDOUT=PREFIX: the child's stdout into PREFIX.PID (V8's --trace-gc-nvp lines, through SCALE_NODE_ARGS)
    if (process.env.SCALE_STDOUT) this.p.stdout.pipe(createWriteStream(`${process.env.SCALE_STDOUT}.${this.p.pid}`));
    this.exit = new Promise((r) => this.p.once('exit', (c) => r(c)));
    this.sampler = setInterval(() => this.sample(), 100);
  }

  private sample(): void {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${this.p.pid}/status`, 'utf8'));
      if (m) this.peakKb = Math.max(this.peakKb, Number(m[1]));
    } catch {
      // exited
    }
  }

  async health(): Promise<Health | undefined> {
    return fetch(`http://127.0.0.1:${this.port}/healthz`).then((r) => r.json() as Promise<Health>, () => undefined);
  }

  /** A metric's value: the sum of its series whose labels contain `label` (e.g. `table="flows"`), NaN if absent. */
  async metric(name: string, label = ''): Promise<number> {
    const text = await fetch(`http://127.0.0.1:${this.port}/metrics`).then((r) => r.text(), () => '');
    const values = [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].filter((m) => (m[1] ?? '').includes(label)).map((m) => Number(m[2]));
    return values.length ? values.reduce((a, b) => a + b, 0) : NaN;
  }

  /** /healthz's HTTP status (0: no answer). */
  async status(): Promise<number> {
    return fetch(`http://127.0.0.1:${this.port}/healthz`).then((r) => r.status, () => 0);
  }

  /** Waits until `ok()`; seconds taken. Fails when the process exits first. */
  async waitFor(what: string, ok: () => Promise<boolean>, ms = 600_000, say?: (line: string) => void): Promise<number> {
    const t0 = performance.now();
    let told = t0;
    while (performance.now() - t0 < ms && this.p.exitCode === null) {
      if (await ok()) return (performance.now() - t0) / 1000;
      if (say && performance.now() - told > 5000) {
        told = performance.now();
        say(`  ${what}: peak RSS ${Math.round(this.peakKb / 1024)} MB`);
      }
      await sleep(250);
    }
    throw new Error(`ctpipe ${this.command}: ${what} not reached\n${this.log.slice(-4000)}`);
  }

  /** Waits until `ok` on the health detail; seconds taken. */
  async until(what: string, ok: (h: Health['detail']) => boolean, ms = 600_000, say?: (line: string) => void): Promise<number> {
    let last: Health['detail'] | undefined;
    return this.waitFor(what, async () => {
      last = (await this.health())?.detail;
      return last !== undefined && ok(last);
    }, ms, say && ((line) => say(`${line}; ${JSON.stringify(last ?? 'no answer')}`)));
  }

  /** CPU seconds the process has used so far, every thread (chDB's included), from /proc (NaN once it exited). */
  cpuSeconds(): number {
    try {
      return cpuOfStat(readFileSync(`/proc/${this.p.pid}/stat`, 'utf8'));
    } catch {
      return NaN;
    }
  }

  /** CPU seconds so far by thread group (threadUse's groups; the netlink readers' ids from the log). */
  threadCpu(): Map<string, number> {
    return new Map([...this.threads()].map(([name, t]) => [name, t.cpuS]));
  }

  /** threadCpu's groups with their kernel time and page faults. */
  threads(): Map<string, ThreadUse> {
    return threadUse(this.p.pid!, new Set((/"readers":\[([\d,]*)\]/.exec(this.log)?.[1] ?? '').split(',').map(Number)));
  }

  /** SIGINT (Ctrl-C) or SIGTERM; seconds until it exited. */
  async stop(signal: 'SIGINT' | 'SIGTERM' = 'SIGINT'): Promise<number> {
    this.sample();
    const t0 = performance.now();
    this.p.kill(signal);
    const code = await this.exit;
    clearInterval(this.sampler);
    if (code !== 0) throw new Error(`ctpipe ${this.command} exited ${String(code)}\n${this.log.slice(-4000)}`);
    return (performance.now() - t0) / 1000;
  }

  kill(): void {
    clearInterval(this.sampler);
    this.p.kill('SIGKILL');
  }
}

/** Kernel flows of the firewall (`conntrack -L -o id`), keyed by id, source and source port (ids alone collide). */
export async function kernelFlows(lab: Lab): Promise<Set<string>> {
  // read as a stream: a million entries are far more text than a buffered child's output may be
  const list = lab.spawn('fw', 'conntrack', ['-L', '-o', 'id']);
  const keys = new Set<string>();
  for await (const line of createInterface({ input: list.stdout! })) {
    const m = /src=(\S+) dst=\S+ sport=(\d+) .*?\bid=(\d+)/.exec(line);
    if (m) keys.add(`${m[3]}|${m[1]}|${m[2]}`);
  }
  return keys;
}

