/**
 * The labelled scenario set: one lab, one `ctpipe run` on chDB, normal background traffic (TCP,
 * UDP, ICMP, FTP through the kernel helper) throughout, and in turn normal periods and traffic
 * that should open each anomaly kind. Each scenario's window and expected kinds are the ground
 * truth; `runScenarioSet` writes it next to the anomalies found and the score (score.ts):
 *   <out>/ground-truth.json, <out>/anomalies.json, <out>/report.md
 * `npm run scenarios` runs it for docs/DETECTION.md; test/integration/scenarios.test.ts asserts on it.
 *
 * The lab firewall's timeouts are shortened (SYN_SENT 5 s, unreplied UDP 10 s) so flows that end
 * by timeout show within a scenario, and the detectors' windows with them (see FLAGS). The kernel
 * destroys an expired entry (and sends its DESTROY) when its garbage collector next passes, which
 * on a table this small is 20 to 60 s later (its interval follows the entries' average timeout,
 * biased toward 60 s); a table dump evicts expired entries at once, so the run dumps the table
 * every 5 s (`reaper`): a collector a few seconds behind, not a minute.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../common/paths.js';
import { ANOMALY_KINDS } from '../processor/anomaly/row.js';
import { openStore } from '../processor/clickhouse/store.js';
import { firstJsonLine, run } from './exec.js';
import { ADDR, Lab } from './lab.js';
import { score, scoreTable, type Detected, type Label, type Score } from './score.js';

const TRICKS = path.join(packageRoot(), 'lab', 'helper-tricks.py');
const PY = '/usr/bin/python3';
const NFLOG_GROUP = 7;
export const HOST = 'lab-fw';
export const THIRD_HOST = '192.0.2.99';
/** The table maximum while the table scenario runs (global: restored right after). */
const TABLE_MAX = 3000;
/** Scan windows are dated from their start: a scan's anomaly may start this long before its traffic. */
const SLACK_MS = 5000;

export const FLAGS = [
  '--stats-interval', '1s', '--process-flush', '300ms', '--nflog-group', String(NFLOG_GROUP), '--no-metrics-enabled',
  '--detect-scan-window', '5s', '--detect-cooldown', '30s', '--detect-related-quiet', '15s',
];

/** What the scenarios learn as they go (for the test's evidence checks). */
export interface Facts {
  invalidPackets: number;
  thirdHostMaster: string;
  privilegedPortMaster: string;
  orphanDataPort: number;
  sipSourcePort: number;
  /** Background exchanges that failed (while the table was full). */
  backgroundFailures: number;
}

interface Scenario {
  name: string;
  kinds: string[];
  description: string;
  /** Seconds after the traffic for flows to end and windows to close. */
  settleS: number;
  run(lab: Lab, facts: Facts): Promise<void>;
}

const normal = (name: string, seconds: number): Scenario => ({
  name, kinds: [], description: `background traffic only for ${seconds} s`, settleS: 0, run: async () => { await sleep(seconds * 1000); },
});

const tricks = async (lab: Lab, ...args: string[]) => JSON.parse((await lab.exec('client', PY, [TRICKS, ...args])).stdout.trim()) as Record<string, unknown>;

export const SCENARIOS: Scenario[] = [
  normal('normal-warmup', 45),
  {
    name: 'invalid-burst', kinds: ['invalid_spike'], settleS: 15,
    description: 'hping3: 6,000 SYN+FIN+RST packets to the server at 1,000/s (conntrack finds each INVALID)',
    async run(lab, facts) {
      const before = await lab.invalidCounter();
      await lab.hpingInvalid(ADDR.server4, 6000, 80);
      facts.invalidPackets = (await lab.invalidCounter()) - before;
    },
  },
  {
    name: 'syn-scan', kinds: ['port_scan', 'rej_storm'], settleS: 25,
    description: 'hping3: a SYN to each of 300 closed server ports, 10 ms apart (each answered by RST)',
    run: (lab) => lab.synScan(ADDR.server4, 2000, 300),
  },
  {
    name: 'unanswered-syns', kinds: ['handshake_failures'], settleS: 15,
    description: 'hping3: 300 SYNs to one server port whose packets the server drops (SYN_SENT times out)',
    async run(lab) {
      await lab.exec('client', 'hping3', ['-q', '-S', '-c', '300', '-i', 'u5000', '-p', '9', ADDR.server4], { allowFail: true, timeoutMs: 30_000 });
    },
  },
  {
    name: 'host-sweep', kinds: ['host_scan'], settleS: 20,
    description: 'one UDP datagram to port 53 of each of 60 addresses in the server network (none exists)',
    async run(lab) {
      await lab.exec('client', PY, ['-c', 'import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(60): s.sendto(b"x",("203.0.113.%d" % (100+i),53))']);
    },
  },
  normal('normal-middle', 30),
  {
    name: 'table-fill', kinds: ['table_pressure', 'table_drops', 'handshake_failures'], settleS: 20,
    description: `nf_conntrack_max lowered to ${TABLE_MAX}; hping3: 8,000 unanswered UDP flows at 1,000/s (the table fills, the kernel early-drops); one source's burst of unanswered flows`,
    async run(lab) {
      const saved = (await run('sysctl', ['-n', 'net.netfilter.nf_conntrack_max'])).stdout.trim();
      // the maximum is global: put it back even if this process dies meanwhile
      const restore = () => spawnSync('sysctl', ['-q', '-w', `net.netfilter.nf_conntrack_max=${saved}`]);
      process.once('exit', restore);
      await run('sysctl', ['-q', '-w', `net.netfilter.nf_conntrack_max=${TABLE_MAX}`]);
      try {
        await lab.exec('client', 'hping3', ['-q', '--udp', '-c', '8000', '-i', 'u1000', '-p', '9999', ADDR.server4], { allowFail: true, timeoutMs: 60_000 });
      } finally {
        restore();
        process.off('exit', restore);
      }
    },
  },
  {
    name: 'expect-third-host', kinds: ['related_third_host'], settleS: 8,
    description: `conntrack -I expect on a live FTP control connection toward ${THIRD_HOST}, a third host`,
    async run(lab, facts) {
      const ftp = await lab.ftpHold(10);
      facts.thirdHostMaster = `${ADDR.client4}:${ftp.port} -> ${ADDR.server4}:21/6`;
      await lab.insertExpectation(ftp.port, THIRD_HOST);
      await sleep(1000);
      ftp.proc.kill();
    },
  },
  {
    name: 'ftp-port-privileged', kinds: ['related_privileged_port'], settleS: 8,
    description: 'FTP PORT toward the client\'s port 1000: the kernel helper expects a data connection to a privileged port (the server refuses it)',
    async run(lab, facts) {
      const r = await tricks(lab, 'port', ADDR.server4, '1000');
      facts.privilegedPortMaster = `${ADDR.client4}:${String(r.control_port)} -> ${ADDR.server4}:21/6`;
    },
  },
  {
    name: 'master-cut', kinds: ['related_orphan'], settleS: 8,
    description: 'a passive FTP transfer held open; its control connection deleted (conntrack -D), then the data connection',
    async run(lab, facts) {
      const p = lab.spawn('client', PY, [TRICKS, 'slow-get', ADDR.server4, 'data.bin']);
      const got = (await firstJsonLine(p)) as { control_port: number; data_port: number };
      facts.orphanDataPort = got.data_port;
      await sleep(1000);
      await lab.conntrack(['-D', '-p', 'tcp', '--orig-port-src', String(got.control_port), '--orig-port-dst', '21']);
      await sleep(1000);
      await lab.conntrack(['-D', '-p', 'tcp', '--orig-port-dst', String(got.data_port)]);
      p.kill('SIGKILL');
    },
  },
  {
    name: 'pasv-flood', kinds: ['expectation_flood'], settleS: 8,
    description: '700 PASV commands on one FTP control connection in a few seconds (700 expectations, each replacing the last)',
    async run(lab) {
      await tricks(lab, 'pasv-flood', ADDR.server4, '700');
    },
  },
  {
    name: 'expectations-unused', kinds: ['expectation_unused_burst'], settleS: 10,
    description: 'an nft `ct expectation` (3 s timeout) on each of 45 connections from 45 client addresses; none is used',
    async run(lab) {
      await lab.exec('client', PY, ['-c', [
        'import socket',
        'for i in range(45):',
        `  s=socket.create_connection(("${ADDR.server4}",7000),timeout=5,source_address=("198.51.100.%d" % (10+i),0))`,
        '  s.sendall(b"x"); s.shutdown(socket.SHUT_WR); s.recv(64); s.close()',
      ].join('\n')]);
      await sleep(4000);
    },
  },
  {
    name: 'helper-odd-port', kinds: ['helper_unexpected_port'], settleS: 8,
    description: 'the ftp helper attached to TCP port 2121 (a misconfiguration), and one connection there',
    async run(lab) {
      await run('nft', ['add', 'rule', 'inet', 'ctpipe_scenarios', 'scen_pre', 'tcp', 'dport', '2121', 'ct', 'helper', 'set', '"ftp-odd"'], { ns: lab.ns.fw });
      await lab.tcpConnect(ADDR.server4, 2121, 100);
    },
  },
  {
    name: 'nat-slipstreaming', kinds: ['nat_slipstreaming'], settleS: 8,
    description: 'a SIP REGISTER over TCP to port 5060 whose Contact is the client itself on port 3306: the sip helper opens a way in',
    async run(lab, facts) {
      facts.sipSourcePort = Number((await tricks(lab, 'sip-register', ADDR.server4, '3306')).source_port);
    },
  },
  normal('normal-end', 30),
];

/** Helpers, expectations and drops the scenarios need, in a table of their own next to the lab's. */
async function prepare(lab: Lab): Promise<void> {
  await lab.sysctl('fw', 'net.netfilter.nf_conntrack_tcp_timeout_syn_sent', '5');
  await lab.sysctl('fw', 'net.netfilter.nf_conntrack_udp_timeout', '10');
  await run('nft', ['-f', '-'], { ns: lab.ns.fw, input: `
table inet ctpipe_scenarios {
  ct helper sip-tcp { type "sip" protocol tcp; }
  ct helper ftp-odd { type "ftp" protocol tcp; }
  # "3ms" is 3 s: nft sends milliseconds, the kernel (6.18, nft_ct.c) reads seconds (measured)
  ct expectation callback { protocol tcp; dport 7100; timeout 3ms; size 1; l3proto ip; }
  chain scen_pre {
    type filter hook prerouting priority filter + 1; policy accept;
    tcp dport 5060 ct helper set "sip-tcp"
  }
  chain scen_forward {
    type filter hook forward priority filter - 1; policy accept;
    tcp dport 7000 ct state new ct expectation set "callback"
  }
}` });
  await run('nft', ['-f', '-'], { ns: lab.ns.server, input: `
table inet ctpipe_scenarios {
  chain scen_in { type filter hook input priority filter; policy accept; tcp dport 9 drop; }
}` });
  for (let i = 0; i < 45; i++) await lab.exec('client', 'ip', ['addr', 'add', `198.51.100.${10 + i}/24`, 'dev', `v${lab.id}c0`]);
  for (const port of [8080, 2121, 5060, 7000]) await lab.tcpServer(port);
  await lab.udpServer(5353);
  await lab.ftpServer();
}

/**
 * Normal traffic until `stop.now`: TCP, UDP and ICMP each round, FTP (passive, active) every
 * fifth. Some of it fails while the table is full (the kernel drops it); that is counted.
 */
async function background(lab: Lab, stop: { now: boolean; failed: number }): Promise<void> {
  const attempt = (p: Promise<unknown>) => p.catch(() => stop.failed++);
  for (let round = 0; !stop.now; round++) {
    await attempt(lab.tcpConnect(ADDR.server4, 8080, 2000));
    await attempt(lab.udpExchange(ADDR.server4, 5353, 2, 100));
    await attempt(lab.ping(ADDR.server4, 1));
    if (round % 5 === 0) await attempt(lab.ftpGet(round % 10 === 0 ? 'passive' : 'active'));
    await sleep(200);
  }
}

/** A table dump every 5 s until `stop.now`: the kernel evicts expired entries as it walks them. */
async function reaper(lab: Lab, stop: { now: boolean }): Promise<void> {
  while (!stop.now) {
    await lab.conntrack(['-L'], { allowFail: true });
    await sleep(5000);
  }
}

export interface ScenarioRun {
  labels: Label[];
  anomalies: (Detected & { host: string; observed: number; details: Record<string, unknown>; flow_ids: string[] })[];
  facts: Facts;
  score: Score;
}

export async function runScenarioSet(out: string, progress: (line: string) => void = () => {}): Promise<ScenarioRun> {
  mkdirSync(out, { recursive: true });
  const dir = path.join(out, 'chdb');
  const lab = await Lab.create({ nflogGroup: NFLOG_GROUP });
  const labels: Label[] = [];
  const facts: Facts = { invalidPackets: 0, thirdHostMaster: '', privilegedPortMaster: '', orphanDataPort: 0, sipSourcePort: 0, backgroundFailures: 0 };
  let ctpipe: ChildProcess | undefined;
  try {
    await prepare(lab);
    ctpipe = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'ctpipe.js'), 'run', '--netns', lab.netnsPath('fw'),
      '--clickhouse-url', `chdb:${dir}`, '--host', HOST, ...FLAGS], { stdio: ['ignore', 'ignore', 'pipe'] });
    const child = ctpipe;
    process.once('exit', () => child.kill('SIGKILL')); // the script stopped by a signal
    let log = '';
    ctpipe.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    for (let t = 0; !log.includes('running: collector and processor'); t += 100) {
      if (t > 60_000 || ctpipe.exitCode !== null) throw new Error(`ctpipe run did not start:\n${log}`);
      await sleep(100);
    }
    const stop = { now: false, failed: 0 };
    const bg = Promise.all([background(lab, stop), reaper(lab, stop)]);
    for (const s of SCENARIOS) {
      progress(`${new Date().toISOString()} ${s.name}: ${s.description}`);
      const start = Date.now();
      await s.run(lab, facts);
      const end = Date.now();
      await sleep(s.settleS * 1000);
      labels.push({ name: s.name, kinds: s.kinds, description: s.description, start, end, until: Date.now() });
    }
    stop.now = true;
    await bg;
    facts.backgroundFailures = stop.failed;
    ctpipe.kill('SIGTERM');
    const p = ctpipe;
    const code = await new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.on('exit', r)));
    if (code !== 0) throw new Error(`ctpipe run exited ${String(code)}:\n${log}`);
  } finally {
    if (ctpipe?.exitCode === null) ctpipe.kill('SIGKILL');
    await lab.destroy();
  }
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    const rows = await store.query<{ host: string; kind: string; severity: string; started_at: string; ended_at: string | null; observed: number; details: string; flow_ids: string[] }>(`SELECT host, kind, severity, toUnixTimestamp64Milli(started_at) AS started_at, toUnixTimestamp64Milli(ended_at) AS ended_at,
                observed, details, flow_ids FROM ctpipe.anomalies FINAL ORDER BY started_at`);
    const anomalies = rows.map((r) => ({
      ...r, started_at: Number(r.started_at), ended_at: r.ended_at === null ? null : Number(r.ended_at), details: JSON.parse(r.details) as Record<string, unknown>,
    }));
    const result: ScenarioRun = { labels, anomalies, facts, score: score(labels, anomalies, ANOMALY_KINDS, SLACK_MS) };
    write(out, result);
    return result;
  } finally {
    await store.close();
  }
}

function write(out: string, r: ScenarioRun): void {
  const iso = (ms: number) => new Date(ms).toISOString();
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}`;
  writeFileSync(path.join(out, 'ground-truth.json'), JSON.stringify({
    host: HOST, machine, flags: FLAGS, slack_ms: SLACK_MS, addresses: ADDR,
    scenarios: r.labels.map((l) => ({ ...l, start: iso(l.start), end: iso(l.end), until: iso(l.until) })),
  }, null, 2));
  writeFileSync(path.join(out, 'anomalies.json'), JSON.stringify(r.anomalies.map((a) => ({
    ...a, started_at: iso(a.started_at), ended_at: a.ended_at === null ? null : iso(a.ended_at),
  })), null, 2));
  const fp = [...r.score.normalFalsePositives, ...r.score.unattributed];
  writeFileSync(path.join(out, 'report.md'), [
    `Scenario run of ${iso(r.labels[0]?.start ?? 0)} on ${machine}: ${r.labels.length} scenarios, ${r.anomalies.length} anomalies.`, '',
    scoreTable(r.score), '',
    fp.length ? `False positives outside anomaly windows: ${fp.map((a) => `${a.kind} at ${iso(a.started_at)}`).join(', ')}` : 'No anomaly in a normal period or outside every scenario window.',
    '',
  ].join('\n'));
}
