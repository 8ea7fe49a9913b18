/**
 * `ctpipe run --top` on a namespace's real conntrack (activated with --enable-conntrack): the live
 * view redraws with the traffic made meanwhile; then `ctpipe top` on the store it left shows the same.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, exited } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';

const ns = `ctp-top-${process.pid}`;
let dir: string;
const inNs = (cmd: string, ...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });

beforeAll(() => {
  expect(process.getuid?.(), 'these tests need root').toBe(0);
  dir = tempDir('top');
  expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
  expect(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status).toBe(0);
  expect(inNs('sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_icmp_timeout=1').status).toBe(0);
});

afterAll(() => {
  spawnSync('ip', ['netns', 'del', ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ctpipe top', () => {
  it('run --top redraws the busiest hosts, ports and states as traffic comes', async () => {
    const p = spawn(process.execPath, [BIN, 'run', '--top', '--netns', `/run/netns/${ns}`, '--enable-conntrack', '--host', 'top-host',
      '--clickhouse-url', `chdb:${dir}/chdb`, '--no-metrics-enabled', '--process-flush', '200ms']);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await waitWhile(() => !out.includes('ctpipe top:'), { within: 60_000, every: 100, alive: p, why: () => err });
      expect(out).toContain('nothing in the last 1 min: no flows are stored yet');
      inNs('ping', '-c', '5', '-i', '0.2', '127.0.0.1');
      for (let t = 0; !/^top-host\s/m.test(out); t += 500) {
        expect(t < 30_000, out.slice(-2000)).toBe(true);
        inNs('conntrack', '-L'); // evicts the expired ICMP entry at once (else the kernel's GC, up to a minute)
        await sleep(500);
      }
      const frame = out.slice(out.lastIndexOf('ctpipe top:'));
      expect(frame).toMatch(/^icmp\s+1\s+1\s+\d+/m);
      expect(frame).toMatch(/^SF\s+1\s+100\.0%$/m);
    } finally {
      p.kill('SIGTERM');
      expect(await exited(p), err).toBe(0);
    }
    // the store it left, through ctpipe top: two views, then it exits
    const r = spawnSync(process.execPath, [BIN, 'top', '--clickhouse-url', `chdb:${dir}/chdb`, '--iterations', '2', '--interval', '1s', '--window', '10m'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/^ctpipe top: last 600 s/gm)?.length).toBe(2);
    expect(r.stdout).toMatch(/^top-host\s+1\s+[\d.]+\s+0\s+\d+/m); // active, new/s, failed, bytes
  });
});
