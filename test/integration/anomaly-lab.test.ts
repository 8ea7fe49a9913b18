/**
 * Anomaly detection on real kernel traffic, through `ctpipe run`: normal background traffic
 * through the lab firewall (TCP, UDP, ICMP) opens nothing; an hping3 burst of SYN+FIN+RST packets
 * on top of it opens exactly one `invalid_spike` for the host, with the burst's source, port and
 * flags in its evidence (NFLOG samples), and the anomaly closes after the burst; then a SYN scan of
 * 300 closed ports opens `port_scan` and `rej_storm` naming the scanner (5 s windows here); and an
 * expectation inserted on a live FTP control connection toward a third host opens
 * `related_third_host` with the master connection as evidence.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../processor/clickhouse/store.js';
import { exited, Procs } from '../helpers/procs.js';
import { ADDR, Lab } from '../lab/lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const procs = new Procs(() => ({}));
const NFLOG_GROUP = 7;

interface Anomaly { kind: string; severity: string; started_at: string; ended_at: string | null; observed: number; baseline: number; details: string }
let lab: Lab;
let dir: string;
let store: Store;
let beforeBurst: Anomaly[] = [];
let anomalies: Anomaly[] = [];
let burstPackets = 0;
let ftpControlPort = 0;
const THIRD_HOST = '192.0.2.99';

/** Background traffic until `stop` is set: a TCP connection, a UDP exchange and a ping each round. */
async function background(stop: { now: boolean }): Promise<void> {
  while (!stop.now) {
    await lab.tcpConnect(ADDR.server4, 8080, 2000);
    await lab.udpExchange(ADDR.server4, 5353, 2, 100);
    await lab.ping(ADDR.server4, 1);
    await sleep(200);
  }
}

beforeAll(async () => {
  lab = await Lab.create({ nflogGroup: NFLOG_GROUP });
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-anomaly-'));
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  const [p, log] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', `chdb:${dir}`, '--host', 'lab-fw',
    '--process-flush', '300ms', '--stats-interval', '1s', '--nflog-group', String(NFLOG_GROUP), '--no-metrics-enabled',
    '--detect-scan-window', '5s', '--detect-ports-per-source', '100', '--detect-rej-per-source', '100']);
  await procs.waitLog(log, 'running: collector and processor');

  const stop = { now: false };
  const bg = background(stop);
  await sleep(40_000); // the host's baseline: 40 one-second intervals of normal traffic
  const burstAt = Date.now();
  const before = await lab.invalidCounter();
  await lab.hpingInvalid(ADDR.server4, 6000, 80); // 6 s at 1,000 packets/s
  burstPackets = (await lab.invalidCounter()) - before;
  await sleep(12_000); // clear intervals, so the anomaly closes
  await lab.synScan(ADDR.server4, 2000, 300); // closed ports: each SYN answered by RST (REJ)
  await sleep(40_000); // the refused flows end (CLOSE timeout, 10 s), their window closes, then clear ones
  const ftp = await lab.ftpHold(30);
  ftpControlPort = ftp.port;
  await lab.insertExpectation(ftp.port, THIRD_HOST);
  await sleep(2000);
  ftp.proc.kill();
  stop.now = true;
  await bg;
  p.kill('SIGTERM');
  expect(await exited(p)).toBe(0);
  store = await openStore({ url: `chdb:${dir}` });
  anomalies = (await (await store.query({ query: 'SELECT * FROM ctpipe.anomalies FINAL ORDER BY started_at', format: 'JSONEachRow' })).json()) as Anomaly[];
  const ms = (t: string) => Date.parse(`${t.slice(0, 23).replace(' ', 'T')}Z`);
  beforeBurst = anomalies.filter((a) => ms(a.started_at) < burstAt);
}, 180_000);

afterAll(async () => {
  await store?.close();
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('anomalies on real traffic (ctpipe run)', () => {
  it('normal traffic alone opened nothing', () => {
    expect(beforeBurst).toEqual([]);
  });

  it('the burst opened exactly one invalid_spike, which closed after it, with the burst in its evidence', () => {
    expect(burstPackets).toBeGreaterThan(3000);
    const spikes = anomalies.filter((a) => a.kind === 'invalid_spike');
    expect(spikes.length).toBe(1);
    const s = spikes[0]!;
    expect(s.ended_at).not.toBeNull();
    expect(s.observed).toBeGreaterThan(300); // INVALID/s at the peak
    const d = JSON.parse(s.details) as { top_sources: { value: string }[]; top_dports: { value: string }[]; top_tcp_flags: { value: string }[]; likely_cause: string };
    expect(d.top_sources[0]!.value).toBe(ADDR.client4);
    expect(d.top_dports[0]!.value).toBe('80');
    expect(d.top_tcp_flags[0]!.value).toBe('FSR');
    expect(d.likely_cause).toBe('invalid_flags');
    expect(anomalies.filter((a) => !['invalid_spike', 'port_scan', 'rej_storm', 'related_third_host'].includes(a.kind))).toEqual([]);
  });

  it('the SYN scan opened port_scan and rej_storm naming the scanner, and both closed', () => {
    for (const kind of ['port_scan', 'rej_storm']) {
      const found = anomalies.filter((a) => a.kind === kind);
      expect(found.length, kind).toBe(1);
      expect(found[0]!.ended_at, kind).not.toBeNull();
      expect(found[0]!.observed, kind).toBeGreaterThanOrEqual(100);
      const d = JSON.parse(found[0]!.details) as { sources: { src: string }[] };
      expect(d.sources.map((x) => x.src), kind).toEqual([ADDR.client4]);
    }
  });

  it('an expectation toward a third host on a live FTP control connection opened related_third_host', () => {
    const found = anomalies.filter((a) => a.kind === 'related_third_host');
    expect(found.length).toBe(1);
    const d = JSON.parse(found[0]!.details) as { evidence: { master: string; expected: string; helper: string }[] };
    expect(d.evidence[0]!.master).toBe(`${ADDR.client4}:${ftpControlPort} -> ${ADDR.server4}:21/6`);
    expect(d.evidence[0]!.expected).toContain(`-> ${THIRD_HOST}:`);
    expect(d.evidence[0]!.helper).toBe('ftp');
  });
});
