/**
 * The collector against the real kernel: lab traffic of every kind through the firewall
 * namespace, decoded by ctpipe and compared with what the kernel did, using conntrack-tools'
 * own event listener, `conntrack -L`, `conntrack -S` and the nft counters as oracles.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from '../../collector/collector.js';
import { collectorMetrics } from '../../collector/metrics.js';
import { MemorySink } from '../../contract/sink.js';
import { Stamper } from '../../contract/stamper.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { IPS_ASSURED, IPS_EXPECTED, IPS_SEEN_REPLY, TCP_STATE_NAMES } from '../../contract/kernel.js';
import { silentLogger } from '../../common/log.js';
import type { CtRecord, ExpRecord, InvalidPacketRecord, StatsRecord } from '../../contract/records.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { parseConntrackEvent, type OracleEvent } from '../../lab/oracle.js';

let lab: Lab;
let sink: MemorySink;
let collector: Collector;
let oracle: ChildProcess;
let oracleText = '';
const NFLOG_GROUP = 7;
const NFLOG_RATE = 10; // samples per second: the 25 INVALID packets arrive within one burst
const traffic: Record<string, unknown> = {};
let statsBefore: StatsRecord;
let statsAfter: StatsRecord;
let kernelInvalid = 0;
let nftInvalid = 0;
let listed = '';
let suppressedAfterLastSample = 0;

const ct = () => sink.records.filter((r): r is CtRecord => ['new', 'update', 'destroy', 'snapshot'].includes(r.type));
const live = () => ct().filter((r) => r.type !== 'snapshot');
const byId = (id: number) => live().filter((r) => r.id === id);
const exps = () => sink.records.filter((r): r is ExpRecord => r.type === 'exp_new' || r.type === 'exp_destroy');
const flowsTo = (dport: number, family = 'ipv4') =>
  [...new Set(live().filter((r) => r.orig.dport === dport && r.family === family).map((r) => r.id))];

beforeAll(async () => {
  lab = await Lab.create({ nflogGroup: NFLOG_GROUP });
  // A flow that exists before the collector starts: it must come out of the start-up dump.
  await lab.conntrack(['-I', '-p', 'udp', '-s', '192.0.2.10', '-d', '192.0.2.20', '--sport', '1111', '--dport', '2222', '-t', '300']);
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();

  oracle = lab.spawn('fw', 'conntrack', ['-E', '-o', 'extended,id']);
  oracle.stdout!.on('data', (d: Buffer) => (oracleText += d.toString()));
  sink = new MemorySink();
  collector = new Collector({
    stamper: new Stamper('lab-fw'), events: ['new', 'update', 'destroy', 'exp_new', 'exp_destroy'], rcvbuf: 16 << 20, rcvbufMax: 64 << 20,
    netns: lab.netnsPath('fw'), dump: true, statsIntervalMs: 60_000, resyncMinIntervalMs: 1000,
    nflog: { group: NFLOG_GROUP, rate: NFLOG_RATE, copyRange: 128 },
    sink, sockets: openNetfilterSocket, metrics: collectorMetrics(), log: silentLogger,
  });
  await collector.start();
  statsBefore = sink.records.find((r): r is StatsRecord => r.type === 'stats')!;
  await sleep(300);

  traffic.tcp = await lab.tcpConnect(ADDR.server4, 8080, 1000);
  await lab.tcpRefused(ADDR.server4, 9);
  traffic.udp = await lab.udpExchange(ADDR.server4, 5353, 4, 100);
  await lab.ping(ADDR.server4, 3);
  traffic.tcp6 = await lab.tcpConnect(ADDR.server6, 8080, 2000);
  traffic.ftpPassive = await lab.ftpGet('passive');
  traffic.ftpActive = await lab.ftpGet('active');
  await lab.conntrack(['-I', '-p', 'tcp', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '1000', '--dport', '2000', '--state', 'ESTABLISHED', '-t', '100', '--mark', '7', '--zone', '4']);
  // Protocols without lab traffic of their own: inserted through ctnetlink, echoed by the kernel.
  await lab.conntrack(['-I', '-p', 'sctp', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '1', '--dport', '2', '--state', 'ESTABLISHED', '--orig-vtag', '1234', '--reply-vtag', '5678', '-t', '50']);
  await lab.conntrack(['-I', '-p', 'dccp', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '3', '--dport', '4', '--state', 'OPEN', '--role', 'client', '-t', '50']);
  await lab.conntrack(['-I', '-p', 'gre', '-s', '192.0.2.1', '-d', '192.0.2.2', '--srckey', '7', '--dstkey', '8', '-t', '50']);
  await lab.conntrack(['-I', '-p', 'udplite', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '5', '--dport', '6', '-t', '50']);
  await lab.hpingInvalid(ADDR.server4, 25);
  await sleep(500);
  listed = (await lab.conntrack(['-L', '-o', 'extended,id'], { allowFail: true })).stdout;
  await lab.conntrack(['-F']);
  await sleep(1500);
  statsAfter = await collector.pollStats();
  suppressedAfterLastSample = collector.pendingInvalidWeight;
  const s = await lab.conntrack(['-S']);
  kernelInvalid = [...s.stdout.matchAll(/ invalid=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  nftInvalid = await lab.invalidCounter();
  await collector.stop();
  oracle.kill('SIGTERM');
  await sleep(200);
}, 180_000);

afterAll(async () => {
  await collector?.stop();
  await lab?.destroy();
});

describe('collector on real kernel traffic', () => {
  it('stamps every record with host, run and a gap-free sequence', () => {
    const seqs = sink.records.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(sink.records.every((r) => r.host === 'lab-fw' && r.run === collector.run)).toBe(true);
  });

  it('decodes every event exactly as conntrack-tools sees it', () => {
    const oracleEvents = oracleText.split('\n').map(parseConntrackEvent).filter((e): e is OracleEvent => e !== undefined);
    expect(oracleEvents.length).toBeGreaterThan(40);
    const ours = live();
    expect(ours.length).toBe(oracleEvents.length);
    const ids = new Set(oracleEvents.map((e) => e.id));
    for (const id of ids) {
      const theirs = oracleEvents.filter((e) => e.id === id);
      const mine = byId(id);
      expect(mine.map((r) => r.type), `event types of ${id}`).toEqual(theirs.map((e) => e.type));
      theirs.forEach((e, i) => {
        const r = mine[i]!;
        expect(r.family).toBe(e.family);
        expect(r.proto).toBe(e.proto);
        expect(r.orig.src).toBe(e.orig.src);
        expect(r.orig.dst).toBe(e.orig.dst);
        expect(r.reply.src).toBe(e.reply.src);
        expect(r.reply.dst).toBe(e.reply.dst);
        // conntrack-tools prints 0 for ports the kernel did not send; ctpipe leaves them absent.
        if (e.orig.sport !== undefined) expect([r.orig.sport ?? 0, r.orig.dport ?? 0, r.reply.sport ?? 0, r.reply.dport ?? 0]).toEqual([e.orig.sport, e.orig.dport, e.reply.sport, e.reply.dport]);
        if (e.orig.type !== undefined) expect([r.orig.icmp_type, r.orig.icmp_code, r.orig.icmp_id]).toEqual([e.orig.type, e.orig.code, e.orig.id]);
        if (r.tcp_state !== undefined && e.state) expect(TCP_STATE_NAMES[r.tcp_state]).toBe(e.state);
        expect((r.status & IPS_SEEN_REPLY) === 0).toBe(e.flags.includes('UNREPLIED'));
        expect((r.status & IPS_ASSURED) !== 0).toBe(e.flags.includes('ASSURED'));
        expect(r.mark ?? 0).toBe(e.mark ?? 0);
        expect(r.zone).toBe(e.zone);
        if (e.type === 'destroy' && e.orig.packets !== undefined) {
          expect(r.counters?.orig).toEqual({ packets: e.orig.packets, bytes: e.orig.bytes });
          expect(r.counters?.reply).toEqual({ packets: e.reply.packets, bytes: e.reply.bytes });
        }
      });
    }
  });

  it('follows a complete TCP connection from SYN to TIME_WAIT and counts it on DESTROY', () => {
    const local = (traffic.tcp as { local: number }).local;
    const evs = live().filter((r) => r.orig.sport === local && r.orig.dport === 8080);
    expect(evs[0]!.type).toBe('new');
    expect(evs.at(-1)!.type).toBe('destroy');
    const path = evs.filter((r) => r.tcp_state !== undefined).map((r) => TCP_STATE_NAMES[r.tcp_state!]);
    expect(path.slice(0, 3)).toEqual(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED']);
    expect(path).toContain('TIME_WAIT');
    const d = evs.at(-1)!;
    expect(Number(d.counters!.orig!.bytes)).toBeGreaterThan(1000);
    expect(Number(d.counters!.reply!.packets)).toBeGreaterThan(2);
    expect(d.start).toBeDefined();
    expect(d.stop).toBeDefined();
    expect(Number(d.stop) >= Number(d.start)).toBe(true);
  });

  it('sees a refused connection: SYN answered by RST, never assured', () => {
    const [id] = flowsTo(9);
    const evs = byId(id!);
    console.log(evs.map((r) => `${r.type} ${r.tcp_state} ${r.status}`));
    const states = evs.map((r) => r.tcp_state).filter((s) => s !== undefined).map((s) => TCP_STATE_NAMES[s!]);
    expect(states[0]).toBe('SYN_SENT');
    expect(states).toContain('CLOSE');
    expect(states).not.toContain('ESTABLISHED');
    expect(evs.some((r) => r.status & IPS_ASSURED)).toBe(false);
  });

  it('counts UDP and ICMP flows exactly', () => {
    const udp = (traffic.udp as { local: number }).local;
    const u = live().filter((r) => r.proto === 17 && r.orig.sport === udp && r.type === 'destroy')[0]!;
    expect(u.counters!.orig).toEqual({ packets: 4, bytes: 4 * (100 + 28) });
    expect(u.counters!.reply).toEqual({ packets: 4, bytes: 4 * (100 + 28) });
    const icmp = live().filter((r) => r.proto === 1 && r.orig.dst === ADDR.server4 && r.type === 'destroy')[0]!;
    expect([icmp.orig.icmp_type, icmp.orig.icmp_code, icmp.reply.icmp_type]).toEqual([8, 0, 0]);
    expect(icmp.counters!.orig!.packets).toBe(3);
    expect(icmp.counters!.reply!.packets).toBe(3);
  });

  it('decodes IPv6 TCP', () => {
    const local = (traffic.tcp6 as { local: number }).local;
    const evs = live().filter((r) => r.family === 'ipv6' && r.orig.sport === local);
    expect(evs[0]!.orig.src).toBe(ADDR.client6);
    expect(evs[0]!.orig.dst).toBe(ADDR.server6);
    expect(evs.some((r) => r.tcp_state === 3)).toBe(true);
    expect(evs.at(-1)!.type).toBe('destroy');
  });

  it('links FTP data flows to their control connection through the helper and expectations', () => {
    const controls = [...new Set(live().filter((r) => r.orig.dport === 21 && r.helper === 'ftp').map((r) => r.id))];
    expect(controls.length).toBe(2);
    const related = live().filter((r) => r.type === 'new' && (r.status & IPS_EXPECTED) !== 0);
    expect(related.length).toBe(2);
    for (const d of related) {
      expect(d.master).toBeDefined();
      expect(d.master!.dport).toBe(21);
      const control = byId(controls.find((c) => byId(c)[0]!.orig.sport === d.master!.sport)!)[0]!;
      expect(d.master).toEqual({ ...control.orig, zone: undefined });
    }
    // Passive: the client connects to the server; active: the server connects back to the client.
    expect(related.map((d) => d.orig.src).sort()).toEqual([ADDR.client4, ADDR.server4].sort());
    const news = exps().filter((e) => e.type === 'exp_new' && !e.snapshot);
    expect(news.length).toBe(2);
    for (const e of news) {
      expect(e.helper).toBe('ftp');
      expect(e.master!.dport).toBe(21);
      const child = related.find((d) => d.orig.dport === e.expected!.dport && d.orig.dst === e.expected!.dst)!;
      expect(child).toBeDefined();
      expect(child.master!.sport).toBe(e.master!.sport);
      expect(e.mask!.dport).toBe(65535);
    }
  });

  it('decodes marks and zones of conntrack -I entries as the kernel lists them', () => {
    const r = live().find((x) => x.type === 'new' && x.orig.src === '192.0.2.1' && x.orig.dport === 2000)!;
    expect(r.mark).toBe(7);
    expect(r.zone).toBe(4);
    expect(listed).toMatch(/src=192\.0\.2\.1 dst=192\.0\.2\.2 sport=1000 dport=2000 .*mark=7 zone=4/);
  });

  it('decodes SCTP, DCCP, GRE and UDP-Lite entries', () => {
    const first = (proto: number) => live().find((r) => r.type === 'new' && r.proto === proto)!;
    const sctp = first(132);
    expect([sctp.orig.sport, sctp.orig.dport, sctp.sctp_state]).toEqual([1, 2, 4]);
    // conntrack-tools converts --orig-vtag to network order twice, so the kernel holds the value
    // byte-swapped (and `conntrack -L` swaps it back): ctpipe reports what the kernel holds.
    const swap = (v: number) => Buffer.from(Uint32Array.of(v).buffer).readUInt32BE(0);
    expect([sctp.sctp_vtag_orig, sctp.sctp_vtag_reply]).toEqual([swap(1234), swap(5678)]);
    // This kernel tracks DCCP with the generic tracker (no ports, no protoinfo); DCCP protoinfo
    // decoding is covered by test/unit/decode.test.ts.
    expect(first(33).orig.src).toBe('192.0.2.1');
    const gre = first(47);
    expect([gre.orig.sport, gre.orig.dport, gre.reply.sport, gre.reply.dport]).toEqual([7, 8, 8, 7]);
    expect([first(136).orig.sport, first(136).orig.dport]).toEqual([5, 6]);
  });

  it('emits flows that existed before it started as snapshot rows', () => {
    const snap = ct().filter((r) => r.type === 'snapshot' && r.orig.src === '192.0.2.10');
    expect(snap.length).toBe(1);
    expect(snap[0]!.orig.dport).toBe(2222);
  });

  it('reports INVALID counts from the per-CPU statistics, agreeing with the kernel', () => {
    expect(statsAfter.cpus.length).toBeGreaterThan(0);
    expect(statsAfter.totals.invalid - statsBefore.totals.invalid).toBeGreaterThanOrEqual(25);
    expect(statsAfter.totals.invalid).toBe(kernelInvalid);
    expect(nftInvalid).toBeGreaterThanOrEqual(25);
    expect(statsAfter.max_entries).toBeGreaterThan(0);
    expect(statsAfter.collector.events).toBe(sink.records.filter((r) => r.type !== 'stats' && r.type !== 'loss' && r.type !== 'dump_end').length);
  });

  it('samples INVALID packets from NFLOG with their source and TCP flags, rate-limited with weights', () => {
    const inv = sink.records.filter((r): r is InvalidPacketRecord => r.type === 'invalid_packet');
    // the token bucket holds NFLOG_RATE samples; the rest ride on the next sample's weight
    expect(inv.length).toBeGreaterThanOrEqual(2);
    expect(inv.length).toBeLessThanOrEqual(NFLOG_RATE + 2);
    const weights = inv.reduce((n, r) => n + r.weight, 0);
    expect(weights).toBeLessThanOrEqual(25);
    expect(weights + Number(suppressedAfterLastSample)).toBe(25);
    const p = inv[0]!;
    expect(p.src).toBe(ADDR.client4);
    expect(p.dst).toBe(ADDR.server4);
    expect(p.dport).toBe(80);
    expect(p.tcp_flags).toBe('FSR');
    expect(p.prefix).toBe('ct-invalid');
  });
});
