/** Runs programs for the lab: argument arrays only (a shell string only as a constant), inside a namespace or not. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

import { asError } from '../common/errors.js';
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function nsArgs(ns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
}

export function run(
  cmd: string,
  args: string[],
  opts: { ns?: string; timeoutMs?: number; allowFail?: boolean; input?: string } = {},
): Promise<RunResult> {
  const [c, a] = nsArgs(opts.ns, cmd, args);
  return new Promise((resolve, reject) => {
    const child = execFile(c, a, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (err && !opts.allowFail) {
        reject(new Error(`${c} ${a.join(' ')} failed (${String(err.code ?? err.signal)}): ${stderr || err.message}`));
        return;
      }
      resolve({ stdout, stderr, code });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function start(cmd: string, args: string[], ns?: string): ChildProcess {
  const [c, a] = nsArgs(ns, cmd, args);
  return spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves with the first stdout line that parses as JSON (the traffic helpers' answers). */
export function firstJsonLine(child: ChildProcess, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (e) {
          reject(asError(e));
        }
      }
    });
    child.on('exit', (code) => {
      if (buf.indexOf('\n') < 0) {
        clearTimeout(timer);
        reject(new Error(`exited ${String(code)} before answering: ${err}`));
      }
    });
  });
}

/** Fails loudly (never skips) when the lab cannot run here. */
export function requireLabPrerequisites(tools: string[] = ['ip', 'nft', 'conntrack']): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the lab needs root (network namespaces, nftables, conntrack): run the tests as root');
  }
  const missing = tools.filter((t) => !which(t));
  if (missing.length) {
    throw new Error(`the lab needs ${missing.join(', ')}: install them (see .ci/run: apt-get install conntrack nftables hping3 kcat ...)`);
  }
}

export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(`${dir}/${tool}`, constants.X_OK);
      return `${dir}/${tool}`;
    } catch {
      // next
    }
  }
  return undefined;
}
