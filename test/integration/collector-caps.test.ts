/**
 * The collector's capability claim, tested: `ctpipe collect` runs inside the lab firewall's network
 * namespace as an unprivileged user (nobody) holding exactly what deploy/systemd's unit grants it
 * (CapabilityBoundingSet / AmbientCapabilities, applied with setpriv), and receives the kernel's
 * conntrack events and statistics. Without the capability it stops with a clear error.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { exited } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';
import { ADDR, Lab } from '../../lab/lab.js';

let lab: Lab;
/** The package, bind-mounted where an unprivileged user can reach it (a clone under /root could not be). */
let mnt = '';

/** The capabilities the collector's systemd unit grants, as setpriv takes them. */
function unitCapabilities(): string[] {
  const unit = readFileSync(path.join(packageRoot(), 'deploy', 'systemd', 'ctpipe-collector.service'), 'utf8');
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
  const bounding = value('CapabilityBoundingSet');
  expect(value('AmbientCapabilities')).toEqual(bounding);
  return bounding.map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

/**
 * `ctpipe collect` in the firewall's namespace as nobody with `caps`: JSON lines on stdout. Started
 * inside the namespace (ip netns exec), or with `--netns` from outside when `viaFlag`.
 */
function collectAs(caps: string[], viaFlag = false): { p: ChildProcessWithoutNullStreams; out: () => string; err: () => string } {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  const inside = viaFlag ? [] : ['ip', 'netns', 'exec', lab.ns.fw];
  const argv = [...inside, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
    `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--',
    process.execPath, path.join(mnt, 'bin', 'ctpipe.js'), 'collect', '--output', 'jsonl', '--no-metrics-enabled', '--host', 'caps', '--stats-interval', '1s',
    ...(viaFlag ? ['--netns', lab.netnsPath('fw')] : [])];
  const p = spawn(argv[0]!, argv.slice(1));
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { p, out: () => out, err: () => err };
}

beforeAll(async () => {
  const tools = spawnSync('setpriv', ['--version']);
  expect(tools.status, 'setpriv (util-linux) is needed').toBe(0);
  mnt = tempDir('caps');
  chmodSync(mnt, 0o755);
  const bind = spawnSync('mount', ['--bind', packageRoot(), mnt], { encoding: 'utf8' });
  expect(bind.status, bind.stderr).toBe(0);
  // the checkout itself must be readable by others (a clone made by mktemp -d is 0700)
  const readable = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '-e',
    `require(${JSON.stringify(path.join(mnt, 'node_modules', 'pino'))})`], { encoding: 'utf8' });
  expect(readable.status, `these tests run ctpipe as the user nobody, who cannot read the checkout at ${packageRoot()} ` +
    `(${readable.stderr.split('\n').find((l) => l.includes('Error')) ?? readable.stderr.slice(0, 300)}): give others read and enter rights ` +
    `(chmod -R o+rX ${packageRoot()}), or clone it where they have them`).toBe(0);
  lab = await Lab.create();
  await lab.tcpServer(8080);
});
afterAll(async () => {
  await lab?.destroy();
  if (mnt) {
    spawnSync('umount', [mnt]);
    rmdirSync(mnt);
  }
});

describe('the collector with CAP_NET_ADMIN only, as a non-root user', () => {
  it('takes exactly CAP_NET_ADMIN from its unit, and receives events and statistics with it', async () => {
    expect(unitCapabilities()).toEqual(['net_admin']);
    const c = collectAs(unitCapabilities());
    for (let t = 0; t < 100 && !c.err().includes('collecting'); t++) await sleep(100);
    // ip netns exec and setpriv exec in place: the pid is node's. Its credentials, from the kernel:
    const status = readFileSync(`/proc/${c.p.pid!}/status`, 'utf8');
    expect(/^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/)).toEqual(['65534', '65534', '65534', '65534']);
    expect(BigInt(`0x${/^CapEff:\s+(\w+)$/m.exec(status)![1]!}`)).toBe(1n << 12n); // CAP_NET_ADMIN alone
    expect(BigInt(`0x${/^CapBnd:\s+(\w+)$/m.exec(status)![1]!}`)).toBe(1n << 12n);
    const { local } = await lab.tcpConnect(ADDR.server4, 8080, 100);
    await sleep(2500);
    c.p.kill('SIGTERM');
    expect(await exited(c.p), c.err()).toBe(0);
    const records = c.out().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; orig?: { sport?: number }; cpus?: unknown[] });
    expect(records.some((r) => r.type === 'new' && r.orig?.sport === local), 'the NEW event of the test connection').toBe(true);
    expect(records.some((r) => r.type === 'stats' && (r.cpus?.length ?? 0) > 0), 'a statistics record').toBe(true);
  });

  it('with --netns and CAP_NET_ADMIN only, stops at once and says setns needs CAP_SYS_ADMIN too, and the way without it', async () => {
    const c = collectAs(['net_admin'], true);
    expect(await exited(c.p)).toBe(1);
    expect(c.err()).toBe(`ctpipe: cannot enter the network namespace ${lab.netnsPath('fw')}: entering a network namespace (setns) needs CAP_SYS_ADMIN ` +
      'as well as CAP_NET_ADMIN, and this process lacks it. Grant both (systemd AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_ADMIN, docker/compose ' +
      'cap_add: [NET_ADMIN, SYS_ADMIN]), or run ctpipe inside the namespace without --netns (ip netns exec NAME ctpipe ..., a container in that ' +
      'namespace), which needs CAP_NET_ADMIN only [NETNS_UNAVAILABLE]\n');
  });

  it('with --netns and CAP_NET_ADMIN and CAP_SYS_ADMIN, collects from the namespace', async () => {
    const c = collectAs(['net_admin', 'sys_admin'], true);
    for (let t = 0; t < 100 && !c.err().includes('collecting'); t++) await sleep(100);
    const { local } = await lab.tcpConnect(ADDR.server4, 8080, 100);
    await sleep(1500);
    c.p.kill('SIGTERM');
    expect(await exited(c.p), c.err()).toBe(0);
    expect(c.out()).toContain(`"sport":${local}`);
  });

  it('without it, stops at once with an error that names the capability', async () => {
    const c = collectAs([]);
    const code = await exited(c.p);
    expect(code).not.toBe(0);
    expect(c.err()).toMatch(/CAP_NET_ADMIN/);
  });
});
