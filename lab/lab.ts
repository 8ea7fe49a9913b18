/**
 * The network-namespace lab: a client, a firewall and a server on one machine, with real kernel
 * conntrack in the firewall namespace.
 *
 *   client (198.51.100.2, 2001:db8:c::2) --veth-- fw (198.51.100.1 | 203.0.113.1, ::1) --veth--
 *   server (203.0.113.2, 2001:db8:5::2)
 *
 * Documentation prefixes (RFC 5737, RFC 3849) so no lab address can be mistaken for a real host.
 * The firewall forwards v4 and v6; its nft ruleset uses conntrack (without a rule that does, the
 * namespace tracks nothing), attaches the FTP helper on port 21, counts and drops INVALID, and can
 * log INVALID packets to an NFLOG group. `destroy()` kills every process the lab started and
 * deletes the namespaces; a process exit hook does the same if a test dies first.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../common/paths.js';
import { firstJsonLine, requireLabPrerequisites, run, start, type RunResult } from './exec.js';

// The helper scripts stay in the source tree (they also run from dist/, e.g. the capture tool).
const here = path.join(packageRoot(), 'lab');
const TRAFFIC = path.join(here, 'traffic.mjs');
const FTP_CLIENT = path.join(here, 'ftp-client.py');
const SYSTEM_PYTHON = '/usr/bin/python3';

export const ADDR = {
  client4: '198.51.100.2',
  fwClient4: '198.51.100.1',
  fwServer4: '203.0.113.1',
  server4: '203.0.113.2',
  client6: '2001:db8:c::2',
  fwClient6: '2001:db8:c::1',
  fwServer6: '2001:db8:5::1',
  server6: '2001:db8:5::2',
} as const;

export interface LabOptions {
  /** NFLOG group for `ct state invalid log group N` on the firewall; none when absent. */
  nflogGroup?: number;
  /** Turn on nf_conntrack_acct and nf_conntrack_timestamp in the firewall (default true). */
  accounting?: boolean;
}

const live = new Set<Lab>();

const CONNTRACK_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
/**
 * Raises the global nf_conntrack_max (the root namespace's, shared by all) to at least `max`;
 * returns the undo, which puts the old value back (also run at exit if a test dies first).
 */
export function raiseConntrackMax(max: number): () => void {
  const old = Number(readFileSync(CONNTRACK_MAX, 'utf8'));
  if (old >= max) return () => {};
  writeFileSync(CONNTRACK_MAX, String(max));
  const undo = () => writeFileSync(CONNTRACK_MAX, String(old));
  process.once('exit', undo);
  return () => {
    process.off('exit', undo);
    undo();
  };
}
process.on('exit', () => {
  for (const lab of live) lab.destroySync();
});

/** How `fillUdp` fills: the entries' UDP timeout, and a pause while a consumer catches up. */
export interface FillOptions {
  /** The firewall's UDP timeouts while and after it fills (default 3600 s). */
  timeoutS?: number;
  /** Asked every 50 ms: true holds the flood (SIGSTOP) until it answers false. */
  hold?: () => Promise<boolean>;
}

export class Lab {
  readonly id: string;
  readonly ns: { client: string; fw: string; server: string };
  readonly ftpDir: string;
  private readonly procs = new Set<ChildProcess>();
  private udpPorts = 0; // default client ports handed out: picks the next

  private constructor(id: string) {
    this.id = id;
    this.ns = { client: `ctp-${id}-cli`, fw: `ctp-${id}-fw`, server: `ctp-${id}-srv` };
    this.ftpDir = mkdtempSync(path.join(tmpdir(), `ctpipe-ftp-${id}-`));
  }

  static async create(opts: LabOptions = {}): Promise<Lab> {
    requireLabPrerequisites();
    const lab = new Lab(randomBytes(3).toString('hex'));
    live.add(lab);
    try {
      await lab.build(opts);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  netnsPath(which: keyof Lab['ns'] = 'fw'): string {
    return `/run/netns/${this.ns[which]}`;
  }

  private async build(opts: LabOptions): Promise<void> {
    const { client, fw, server } = this.ns;
    const v = (s: string) => `v${this.id}${s}`; // veth names stay under 15 characters
    for (const n of [client, fw, server]) await run('ip', ['netns', 'add', n]);
    await run('ip', ['link', 'add', v('c0'), 'netns', client, 'type', 'veth', 'peer', 'name', v('c1'), 'netns', fw]);
    await run('ip', ['link', 'add', v('s0'), 'netns', server, 'type', 'veth', 'peer', 'name', v('s1'), 'netns', fw]);
    const ip = (ns: string, ...a: string[]) => run('ip', ['-n', ns, ...a]);
    for (const [ns, dev] of [[client, v('c0')], [fw, v('c1')], [fw, v('s1')], [server, v('s0')]] as const) {
      await ip(ns, 'link', 'set', dev, 'up');
    }
    for (const ns of [client, fw, server]) await ip(ns, 'link', 'set', 'lo', 'up');
    await ip(client, 'addr', 'add', `${ADDR.client4}/24`, 'dev', v('c0'));
    await ip(fw, 'addr', 'add', `${ADDR.fwClient4}/24`, 'dev', v('c1'));
    await ip(fw, 'addr', 'add', `${ADDR.fwServer4}/24`, 'dev', v('s1'));
    await ip(server, 'addr', 'add', `${ADDR.server4}/24`, 'dev', v('s0'));
    await ip(client, '-6', 'addr', 'add', `${ADDR.client6}/64`, 'dev', v('c0'), 'nodad');
    await ip(fw, '-6', 'addr', 'add', `${ADDR.fwClient6}/64`, 'dev', v('c1'), 'nodad');
    await ip(fw, '-6', 'addr', 'add', `${ADDR.fwServer6}/64`, 'dev', v('s1'), 'nodad');
    await ip(server, '-6', 'addr', 'add', `${ADDR.server6}/64`, 'dev', v('s0'), 'nodad');
    await ip(client, 'route', 'add', 'default', 'via', ADDR.fwClient4);
    await ip(server, 'route', 'add', 'default', 'via', ADDR.fwServer4);
    await ip(client, '-6', 'route', 'add', 'default', 'via', ADDR.fwClient6);
    await ip(server, '-6', 'route', 'add', 'default', 'via', ADDR.fwServer6);
    await this.sysctl('fw', 'net.ipv4.ip_forward', '1');
    await this.sysctl('fw', 'net.ipv6.conf.all.forwarding', '1');
    if (opts.accounting !== false) {
      await this.sysctl('fw', 'net.netfilter.nf_conntrack_acct', '1');
      await this.sysctl('fw', 'net.netfilter.nf_conntrack_timestamp', '1');
    }
    const logInvalid = opts.nflogGroup === undefined ? '' : `ct state invalid log group ${opts.nflogGroup} prefix "ct-invalid"`;
    const ruleset = `
table inet ctpipe_lab {
  ct helper ftp-std { type "ftp" protocol tcp; }
  counter invalid_pkts { }
  counter new_flows { }
  chain lab_pre {
    type filter hook prerouting priority filter; policy accept;
    ${logInvalid}
    tcp dport 21 ct helper set "ftp-std"
  }
  chain lab_forward {
    type filter hook forward priority filter; policy accept;
    ct state invalid counter name invalid_pkts drop
    ct state established,related counter accept
    ct state new counter name new_flows accept
  }
}`;
    await run('nft', ['-f', '-'], { ns: fw, input: ruleset });
    writeFileSync(path.join(this.ftpDir, 'data.bin'), randomBytes(64 * 1024));
  }

  async sysctl(which: keyof Lab['ns'], key: string, value: string): Promise<void> {
    await run('sysctl', ['-q', '-w', `${key}=${value}`], { ns: this.ns[which] });
  }

  exec(which: keyof Lab['ns'], cmd: string, args: string[], opts: { timeoutMs?: number; allowFail?: boolean } = {}): Promise<RunResult> {
    return run(cmd, args, { ...opts, ns: this.ns[which] });
  }

  /** Starts a long-running process in a namespace; destroy() kills it. */
  spawn(which: keyof Lab['ns'], cmd: string, args: string[]): ChildProcess {
    const p = start(cmd, args, this.ns[which]);
    // Nobody reads a server's log: drained, or a full pipe blocks the server (pyftpdlib logs every
    // session, and stopped answering after a few hundred in the soak).
    p.stderr?.resume();
    this.procs.add(p);
    p.on('exit', () => this.procs.delete(p));
    return p;
  }

  // ------------------------------------------------------------------ traffic

  async tcpServer(port: number): Promise<void> {
    await firstJsonLine(this.spawn('server', process.execPath, [TRAFFIC, 'tcp-server', String(port)]));
  }

  /** A TCP connection that completes: handshake, `bytes` sent, a reply, FIN both ways. */
  async tcpConnect(dst: string, port: number, bytes: number): Promise<{ local: number; reply: string }> {
    const r = await this.exec('client', process.execPath, [TRAFFIC, 'tcp-client', dst, String(port), String(bytes)]);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { local?: number; reply?: string });
    return { local: lines[0]!.local!, reply: lines[lines.length - 1]!.reply ?? '' };
  }

  /** A TCP connection that stays open, sending `chunk` bytes every `everyMs` ms until its process is killed (destroy() does). */
  async tcpStream(dst: string, port: number, chunk: number, everyMs: number): Promise<{ local: number; proc: ChildProcess }> {
    const proc = this.spawn('client', process.execPath, [TRAFFIC, 'tcp-stream', dst, String(port), String(chunk), String(everyMs)]);
    const first = await firstJsonLine(proc);
    if (typeof first.local !== 'number') throw new Error(`the TCP stream did not connect: ${JSON.stringify(first)}`);
    return { local: first.local, proc };
  }

  /** A TCP connection to a closed port: SYN answered by RST. */
  async tcpRefused(dst: string, port: number): Promise<void> {
    await this.exec('client', process.execPath, [TRAFFIC, 'tcp-refused', dst, String(port)]);
  }

  async udpServer(port: number, host = '0.0.0.0'): Promise<void> {
    await firstJsonLine(this.spawn('server', process.execPath, [TRAFFIC, 'udp-server', String(port), host]));
  }

  /**
   * `local`: the client's port. A port whose flow the firewall still tracks joins that flow (no
   * NEW), and the kernel's random pick can be one: by default each exchange takes the next of
   * 20,000 ports below the kernel's ephemeral range.
   */
  async udpExchange(dst: string, port: number, count: number, size: number, local = 10_000 + (this.udpPorts++ % 20_000)): Promise<{ local: number; echoed: number }> {
    const r = await this.exec('client', process.execPath, [TRAFFIC, 'udp-client', dst, String(port), String(count), String(size), String(local)]);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { local: number; echoed: number };
  }

  async ping(dst: string, count = 3): Promise<void> {
    await this.exec('client', 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', dst]);
  }

  async ftpServer(): Promise<void> {
    const p = this.spawn('server', SYSTEM_PYTHON, ['-m', 'pyftpdlib', '-p', '21', '-i', ADDR.server4, '-d', this.ftpDir]);
    for (let i = 0; i < 50; i++) {
      const r = await this.exec('server', 'ss', ['-Hltn', 'sport = :21'], { allowFail: true });
      if (r.stdout.includes(':21')) return;
      if (p.exitCode !== null) throw new Error('pyftpdlib exited: is python3-pyftpdlib installed?');
      await sleep(100);
    }
    throw new Error('the FTP server did not start listening on port 21');
  }

  /** An FTP control connection that logs in and stays open (the kernel's ftp helper on it); resolves to its local port. */
  async ftpHold(seconds: number): Promise<{ port: number; proc: ChildProcess }> {
    const proc = this.spawn('client', SYSTEM_PYTHON, ['-c', [
      'import ftplib, sys, time', 'f = ftplib.FTP()', `f.connect('${ADDR.server4}', 21, timeout=10)`, 'f.login()',
      'print(f.sock.getsockname()[1], flush=True)', `time.sleep(${seconds})`,
    ].join('\n')]);
    const port = await new Promise<number>((resolve, reject) => {
      proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      proc.once('exit', (code) => reject(new Error(`the FTP control connection ended early (${String(code)})`)));
    });
    return { port, proc };
  }

  /**
   * `conntrack -I expect`: an expectation on a live master connection (client:port -> server:21)
   * for a connection from the client to `dst`. (conntrack-tools 1.4.7 drops the expected tuple's
   * ports here, so only the addresses are meant.)
   */
  async insertExpectation(masterPort: number, dst: string): Promise<void> {
    await this.exec('fw', 'conntrack', ['-I', 'expect', '-p', 'tcp', '--orig-src', ADDR.client4, '--orig-dst', ADDR.server4,
      '--orig-port-src', String(masterPort), '--orig-port-dst', '21', '--tuple-src', ADDR.client4, '--tuple-dst', dst,
      '--tuple-port-src', '0', '--tuple-port-dst', '50000', '--mask-src', '255.255.255.255', '--mask-dst', '255.255.255.255',
      '--mask-port-src', '0', '--mask-port-dst', '65535', '--timeout', '60']);
  }

  async ftpGet(mode: 'passive' | 'active'): Promise<{ bytes: number; control_port: number }> {
    const r = await this.exec('client', SYSTEM_PYTHON, [FTP_CLIENT, ADDR.server4, mode, 'data.bin']);
    return JSON.parse(r.stdout.trim()) as { bytes: number; control_port: number };
  }

  /** Packets conntrack finds INVALID: SYN+FIN+RST together (hping3). */
  async hpingInvalid(dst: string, count: number, port = 80, extra: string[] = []): Promise<void> {
    await this.exec('client', 'hping3', ['-q', '-c', String(count), '-i', 'u1000', '-S', '-F', '-R', '-p', String(port), ...extra, dst], {
      allowFail: true, // hping3 exits 1 when nothing answers, which is the point
      timeoutMs: 60_000,
    });
  }

  /** A SYN to each of `count` consecutive ports from `firstPort` (hping3 -p ++N), `gapMs` apart. */
  async synScan(dst: string, firstPort: number, count: number, gapMs = 10): Promise<void> {
    await this.exec('client', 'hping3', ['-q', '-S', '-c', String(count), '-i', `u${gapMs * 1000}`, '-p', `++${firstPort}`, dst], {
      allowFail: true, timeoutMs: 60_000,
    });
  }

  /**
   * Fills the firewall's conntrack table with at least `count` UDP entries from random sources
   * (hping3 --flood --rand-source, one new flow per packet, stopped once there are enough), kept an hour (UDP timeout 3600 s in the firewall),
   * towards a server port that drops them silently. The global nf_conntrack_max must allow it
   * (raiseConntrackMax). Resolves to the entries the firewall holds.
   */
  async fillUdp(count: number, port = 5000, o: FillOptions = {}): Promise<number> {
    const timeout = String(o.timeoutS ?? 3600);
    await this.sysctl('fw', 'net.netfilter.nf_conntrack_udp_timeout', timeout);
    await this.sysctl('fw', 'net.netfilter.nf_conntrack_udp_timeout_stream', timeout);
    await run('nft', ['-f', '-'], { ns: this.ns.server, input: `table inet lab_sink {\n chain input {\n  type filter hook input priority 0; policy accept;\n  udp dport ${port} drop\n }\n}\n` });
    const want = (await this.conntrackCount()) + count;
    const flood = this.spawn('client', 'hping3', ['-q', '-2', '--rand-source', '-p', String(port), '--flood', ADDR.server4]);
    let paused = false;
    try {
      for (let t = 0; t < 600_000 && (await this.conntrackCount()) < want; t += 50) {
        const hold = (await o.hold?.()) ?? false;
        if (hold !== paused) flood.kill(hold ? 'SIGSTOP' : 'SIGCONT');
        paused = hold;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      flood.kill('SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 200)); // packets in flight land
    return (await this.conntrackCount()) - (want - count);
  }

  /** Entries in the firewall's conntrack table. */
  async conntrackCount(): Promise<number> {
    return Number((await this.conntrack(['-C'])).stdout.trim());
  }

  /** The firewall's `ct state invalid` counter (packets). */
  async invalidCounter(): Promise<number> {
    const r = await this.exec('fw', 'nft', ['-j', 'list', 'counter', 'inet', 'ctpipe_lab', 'invalid_pkts']);
    const m = /"packets":\s*(\d+)/.exec(r.stdout);
    return m ? Number(m[1]) : 0;
  }

  /** Packets the firewall forwarded in state NEW: one per connection it created. */
  async newFlowsCounter(): Promise<number> {
    const r = await this.exec('fw', 'nft', ['-j', 'list', 'counter', 'inet', 'ctpipe_lab', 'new_flows']);
    const m = /"packets":\s*(\d+)/.exec(r.stdout);
    return m ? Number(m[1]) : 0;
  }

  conntrack(args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
    return this.exec('fw', 'conntrack', args, opts);
  }

  /**
   * `conntrack -F` in the firewall; resolves to its CPU seconds, nearly all the kernel's: deleting
   * each entry and building its DESTROY event for every listener happen in the flushing task.
   * Read from bash's `times` (its children's user and system time, the last line; the locale's
   * decimal point): no extra package needed. The lab's one shell string, a constant.
   */
  async flushTable(): Promise<number> {
    const r = await this.exec('fw', 'bash', ['-c', 'conntrack -F || exit 1; times'], { timeoutMs: 300_000 });
    const times = [...(r.stdout.trim().split('\n').pop() ?? '').matchAll(/(\d+)m(\d+)[.,](\d+)s/g)];
    if (times.length !== 2) throw new Error(`bash's times printed ${JSON.stringify(r.stdout)}`);
    return times.reduce((s, m) => s + Number(m[1]) * 60 + Number(`${m[2]}.${m[3]}`), 0);
  }

  // ------------------------------------------------------------------ teardown

  async destroy(): Promise<void> {
    this.destroySync();
  }

  destroySync(): void {
    for (const p of this.procs) p.kill('SIGKILL');
    this.procs.clear();
    for (const n of Object.values(this.ns)) {
      const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('ip', ['netns', 'del', n]);
    }
    rmSync(this.ftpDir, { recursive: true, force: true });
    live.delete(this);
  }
}
