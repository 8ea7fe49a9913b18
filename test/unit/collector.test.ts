/**
 * Collector logic with fake sockets: stamping, loss accounting on ENOBUFS (exact count from the
 * socket's drop counter, a loss record, a larger buffer, a resync dump), statistics assembly.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Collector, type CollectorOptions } from '../../collector/collector.js';
import { collectorMetrics } from '../../collector/metrics.js';
import { NlWriter } from '../../collector/netlink/writer.js';
import { MemorySink } from '../../contract/sink.js';
import { Stamper } from '../../contract/stamper.js';
import { hasNetAdmin, requireNetAdmin, checkSysctls } from '../../collector/system.js';
import { silentLogger } from '../../common/log.js';
import type { InvalidPacketRecord, LossRecord, StatsRecord } from '../../contract/records.js';
import { FakeSocket } from '../helpers/fake-socket.js';
import { fixtureBuffers } from '../helpers/decode.js';
import { parseMetrics } from '../helpers/prom.js';

const events = fixtureBuffers('events');
const MULTI = 0x2;

function done(seq: number): Buffer {
  return new NlWriter().raw(3, MULTI, seq, Buffer.alloc(4)).bytes();
}

/** Answers requests as the kernel does (message shapes from conntrack-netlink.md §4.1, §6.2). */
function kernel(req: Buffer, sock: FakeSocket): void {
  const type = req.readUInt16LE(4);
  const seq = req.readUInt32LE(8);
  const reply: Buffer[] = [];
  if (type === 0x0101) {
    const row = Buffer.from(events[0]!); // a NEW event's body, as a dump row
    row.writeUInt16LE(MULTI, 6);
    row.writeUInt32LE(seq, 8);
    reply.push(row, done(seq));
  } else if (type === 0x0104) {
    for (const cpu of [0, 1]) {
      const w = new NlWriter().begin(0x0104, MULTI, seq, 0, cpu);
      for (let a = 2; a <= 15; a++) w.be32(a, a === 4 ? 100 + cpu : 1);
      reply.push(w.end().bytes());
    }
    reply.push(done(seq));
  } else if (type === 0x0105) {
    reply.push(new NlWriter().begin(0x0105, 0, seq, 0).be32(1, 12).be32(2, 262144).end().bytes());
    reply.push(new NlWriter().raw(2, 0, seq, Buffer.alloc(4)).bytes());
  } else if (type === 0x0203) {
    reply.push(new NlWriter().begin(0x0103, MULTI, seq, 0).be32(1, 3).be32(2, 4).be32(3, 5).end().bytes(), done(seq));
  } else {
    reply.push(done(seq));
  }
  queueMicrotask(() => sock.deliver(reply));
}

/** An NFULNL_MSG_PACKET for `group`: a UDP packet 192.0.2.1:sport -> 192.0.2.2:53 that came in on ifindex 1. */
function nflogPacket(group: number, sport: number): Buffer {
  const ip = Buffer.alloc(28);
  ip[0] = 0x45;
  ip.writeUInt16BE(28, 2);
  ip[9] = 17;
  Buffer.from([192, 0, 2, 1, 192, 0, 2, 2]).copy(ip, 12);
  ip.writeUInt16BE(sport, 20);
  ip.writeUInt16BE(53, 22);
  return new NlWriter().begin(0x0400, 0, 0, 2, group)
    .attr(1, Buffer.from([0x08, 0x00, 1, 0])) // NFULA_PACKET_HDR: IPv4, hook, pad
    .be32(4, 1) // NFULA_IFINDEX_INDEV
    .attr(9, ip) // NFULA_PAYLOAD
    .str(10, 'ct-invalid') // NFULA_PREFIX
    .end().bytes();
}

function setup(nflog?: CollectorOptions['nflog'], sink: MemorySink = new MemorySink(), more: Partial<CollectorOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const c = new Collector({
    stamper: new Stamper('h1', 'r1'), events: ['new', 'update', 'destroy'], rcvbuf: 1 << 20, rcvbufMax: 4 << 20, dump: true, nflog,
    statsIntervalMs: 3_600_000, resyncMinIntervalMs: 0, sink, metrics: collectorMetrics(), log: silentLogger, ...more,
    sockets: (o) => {
      const s = new FakeSocket(o, o.groups?.length ? undefined : kernel);
      sockets.push(s);
      return s;
    },
  });
  return { c, sink, sockets };
}

/** A sink with room for `room` records at a time (ctpipe run's flow control), freed by take(). */
class SlowSink extends MemorySink {
  private waiters: (() => void)[] = [];
  taken = 0;
  constructor(private readonly room: number) {
    super();
  }
  hasRoom(): boolean {
    return this.records.length - this.taken < this.room;
  }
  whenRoom(): Promise<void> {
    return this.hasRoom() ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
  take(n: number): void {
    this.taken += n;
    for (const w of this.waiters.splice(0)) w();
  }
}

describe('collector', () => {
  it('keeps raw events while the sink has no room, then hands them over in order; nothing is lost at stop', async () => {
    const sink = new SlowSink(5);
    const { c, sockets } = setup(undefined, sink);
    await c.start();
    const before = sink.records.length; // the dump and the first statistics got in regardless
    sink.take(before);
    for (let i = 0; i < 6; i++) sockets[0]!.deliver(events.slice(i * 3, i * 3 + 3));
    // two chunks went in (the sink had room before each), the other four wait as raw bytes
    expect(sink.records.length - before).toBe(6);
    // what waits on its way to the sink: the gate's bytes and the sockets' queues
    expect(c.heldEvents).toBeGreaterThan(0);
    sockets[0]!.rmem = 3000;
    sockets[0]!.queued = 500;
    expect(c.waitingBytes).toBe(c.heldEvents + 3500);
    sink.take(6);
    await sleep(0);
    expect(sink.records.length - before).toBe(12); // two more, then no room again
    const stopped = c.stop(); // the rest goes to the sink before stop resolves
    for (let i = 0; i < 10; i++) {
      sink.take(3);
      await sleep(0);
    }
    await stopped;
    expect(c.waitingBytes).toBe(0); // the sockets are closed: nothing on its way, and nothing to ask
    const got = sink.records.slice(before);
    expect(got).toHaveLength(18);
    expect(got.map((r) => r.seq)).toEqual(got.map((_, i) => got[0]!.seq + i));
  });

  it('subscribes to the chosen groups, dumps, polls stats, and stamps a gap-free sequence', async () => {
    const { c, sink, sockets } = setup();
    await c.start();
    expect(sockets[0]!.opts.groups).toEqual([1, 2, 3]);
    sockets[0]!.deliver(events.slice(0, 10));
    const types = sink.records.map((r) => r.type);
    expect(types[0]).toBe('snapshot');
    const stats = sink.records.find((r): r is StatsRecord => r.type === 'stats')!;
    expect(stats.cpus.map((x) => x.invalid)).toEqual([100, 101]);
    expect(stats.totals.invalid).toBe(201);
    expect([stats.entries, stats.max_entries, stats.exp_new, stats.exp_create, stats.exp_delete]).toEqual([12, 262144, 3, 4, 5]);
    expect(sink.records.map((r) => r.seq)).toEqual(sink.records.map((_, i) => i + 1));
    expect(sink.records.every((r) => r.host === 'h1' && r.run === 'r1')).toBe(true);
    await c.stop();
    expect(sockets.every((s) => s.closed)).toBe(true);
  });

  it('turns an overrun into an exact loss record, a bigger buffer and a resync dump', async () => {
    const { c, sink, sockets } = setup();
    await c.start();
    const ev = sockets[0]!;
    const dumpsBefore = sockets[1]!.sent.filter((m) => m.readUInt16LE(4) === 0x0101).length;
    ev.drops = 1234; // the kernel counted 1234 messages it could not queue
    ev.deliver(events.slice(0, 3), 1);
    const loss = sink.records.find((r): r is LossRecord => r.type === 'loss')!;
    expect(loss).toMatchObject({ reason: 'enobufs', count: 1234, source: 'events', resync: true });
    expect(ev.rcvbuf).toBe(2 << 20); // doubled
    await sleep(20);
    expect(sockets[1]!.sent.filter((m) => m.readUInt16LE(4) === 0x0101).length).toBe(dumpsBefore + 1);
    const after = sink.records.slice(sink.records.indexOf(loss));
    expect(after.some((r) => r.type === 'snapshot')).toBe(true);
    // drops seen later without an ENOBUFS are still reported, by the next stats poll
    ev.drops = 1300;
    const s = await c.pollStats();
    expect(s.collector.drops).toBe(1300);
    expect(sink.records.filter((r): r is LossRecord => r.type === 'loss').at(-1)).toMatchObject({ reason: 'socket_drops', count: 66 });
    // further overruns double the buffer up to rcvbuf_max and no further
    ev.deliver([], 1);
    ev.deliver([], 1);
    expect(ev.rcvbuf).toBe(4 << 20);
    await c.stop();
  });

  it('reports each NFLOG overrun with the drops since the last one, not the socket\'s running total', async () => {
    const { c, sink, sockets } = setup({ group: 7, rate: 10, copyRange: 128 });
    await c.start();
    const nflog = sockets.find((s) => s.sent.some((m) => m.readUInt16LE(4) === 0x0401))!; // NFULNL_MSG_CONFIG
    nflog.drops = 5;
    nflog.deliver([], 1);
    nflog.drops = 12;
    nflog.deliver([], 1);
    const losses = sink.records.filter((r): r is LossRecord => r.type === 'loss' && r.source === 'nflog');
    expect(losses.map((l) => [l.reason, l.count, l.resync])).toEqual([['enobufs', 5, false], ['enobufs', 7, false]]);
    await c.stop();
  });

  it('samples INVALID packets from NFLOG at the configured rate, the suppressed riding on the next sample', async () => {
    const { c, sink, sockets } = setup({ group: 7, rate: 2, copyRange: 128 });
    await c.start();
    const nflog = sockets.find((s) => s.sent.some((m) => m.readUInt16LE(4) === 0x0401))!;
    expect(nflog.sent.map((m) => m.readUInt16LE(4))).toEqual([0x0401, 0x0401, 0x0401]); // bind, mode, timeout
    nflog.deliver([1, 2, 3, 4, 5].map((i) => nflogPacket(7, 40000 + i)));
    const samples = sink.records.filter((r): r is InvalidPacketRecord => r.type === 'invalid_packet');
    // a burst of 5 with a bucket of 2: two samples, the other three counted for the next one
    expect(samples.map((r) => [r.sport, r.weight])).toEqual([[40001, 1], [40002, 1]]);
    expect(c.pendingInvalidWeight).toBe(3);
    expect(samples[0]).toMatchObject({ host: 'h1', run: 'r1', family: 'ipv4', proto: 17, src: '192.0.2.1', dst: '192.0.2.2', dport: 53, prefix: 'ct-invalid' });
    expect(samples[0]!.indev).toMatch(/^(lo|if1)$/); // a name from /sys/class/net, or if<N> without one
    await new Promise((r) => setTimeout(r, 600)); // a token back
    nflog.deliver([nflogPacket(7, 40006)]);
    expect(sink.records.filter((r): r is InvalidPacketRecord => r.type === 'invalid_packet').at(-1)).toMatchObject({ sport: 40006, weight: 4 });
    expect(sink.records.map((r) => r.seq)).toEqual(sink.records.map((_, i) => i + 1));
    await c.stop();
  });

  it('counts malformed datagrams and keeps going', async () => {
    const { c, sink, sockets } = setup();
    await c.start();
    const good = events[0]!;
    const bad = Buffer.from(good);
    bad.writeUInt32LE(bad.length + 100, 0);
    sockets[0]!.deliver([bad, good]);
    const s: StatsRecord = await c.pollStats();
    expect(s.collector.rejected).toBe(1);
    expect(sink.records.filter((r) => r.type === 'new').length).toBe(1);
    await c.stop();
  });
});

describe('collector metrics', () => {
  /** Every sample of `name` as "label=value,...": value, from one scrape. */
  async function scrape(reg: Registry, name: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const s of parseMetrics(await reg.metrics())) {
      if (s.name === name) out[Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',')] = s.value;
    }
    return out;
  }
  const tally = (types: string[], prefix = '') => {
    const out: Record<string, number> = {};
    for (const t of types) out[`${prefix}type=${t}`] = (out[`${prefix}type=${t}`] ?? 0) + 1;
    return out;
  };

  it('counts records by type, and events by namespace and type, exactly as scraped, each series its own', async () => {
    // Two collectors of two namespaces share one registry, as `--netns all` does.
    const registry = new Registry();
    const metrics = collectorMetrics(registry);
    const a = setup(undefined, new MemorySink(), { metrics, netnsName: 'a' });
    const b = setup(undefined, new MemorySink(), { metrics, netnsName: 'b' });
    await a.c.start();
    await b.c.start();
    a.sockets[0]!.deliver(events.slice(0, 12));
    b.sockets[0]!.deliver(events.slice(12, 15));
    const records = [...a.sink.records, ...b.sink.records].map((r) => r.type);
    const evA = a.sink.records.filter((r) => r.type !== 'snapshot' && r.type !== 'stats' && r.type !== 'dump_end').map((r) => r.type);
    const evB = b.sink.records.filter((r) => r.type !== 'snapshot' && r.type !== 'stats' && r.type !== 'dump_end').map((r) => r.type);
    expect(evA.length).toBe(12);
    expect(new Set(evA).size).toBeGreaterThan(1); // several types, so a mix-up would show
    expect(await scrape(registry, 'ctpipe_collector_records_total')).toEqual(tally(records));
    expect(await scrape(registry, 'ctpipe_conntrack_events_total')).toEqual({ ...tally(evA, 'netns=a,'), ...tally(evB, 'netns=b,') });
    // a second scrape adds nothing; later events add exactly themselves
    expect(await scrape(registry, 'ctpipe_conntrack_events_total')).toEqual({ ...tally(evA, 'netns=a,'), ...tally(evB, 'netns=b,') });
    a.sockets[0]!.deliver(events.slice(0, 12));
    expect(await scrape(registry, 'ctpipe_conntrack_events_total')).toEqual({ ...tally([...evA, ...evA], 'netns=a,'), ...tally(evB, 'netns=b,') });
    expect((await scrape(registry, 'ctpipe_collector_records_total'))['type=new']).toBe(records.filter((t) => t === 'new').length + evA.filter((t) => t === 'new').length);
    // a namespace let go takes its series along; the other's stay
    await b.c.stop();
    metrics.conntrack.forget('b');
    expect(Object.keys(await scrape(registry, 'ctpipe_conntrack_events_total')).every((k) => k.startsWith('netns=a,'))).toBe(true);
    await a.c.stop();
  });
});

describe('system checks', () => {
  it('reads CAP_NET_ADMIN from the effective capability set', () => {
    expect(hasNetAdmin('CapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t000001ffffffefff\n')).toBe(false);
    expect(() => requireNetAdmin('CapEff:\t0000000000000000\n')).toThrow(/needs CAP_NET_ADMIN[\s\S]*AmbientCapabilities=CAP_NET_ADMIN/);
  });

  it('reports the conntrack sysctls and turns them on when asked', () => {
    const values: Record<string, string> = {
      '/proc/sys/net/netfilter/nf_conntrack_events': '2\n',
      '/proc/sys/net/netfilter/nf_conntrack_acct': '0\n',
      '/proc/sys/net/netfilter/nf_conntrack_timestamp': '1\n',
    };
    const access = (f: string, v?: string) => {
      const old = values[f]!;
      if (v !== undefined) values[f] = v;
      return old;
    };
    const seen = checkSysctls(access, false);
    expect(seen.map((s) => [s.key.split('.').pop(), s.value, s.ok])).toEqual([
      ['nf_conntrack_events', '2', false], ['nf_conntrack_acct', '0', false], ['nf_conntrack_timestamp', '1', true],
    ]);
    expect(seen[0]!.lost).toMatch(/never send UPDATE or DESTROY/);
    const set = checkSysctls(access, true);
    expect(set.every((s) => s.ok)).toBe(true);
    expect(set.filter((s) => s.changed).length).toBe(2);
  });
});
