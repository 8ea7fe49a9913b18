/**
 * End to end on `ctpipe run`'s own path (issue 19): netlink bytes as the native reader hands them
 * over, through the real Collector (frames, decoder, Stamper, metrics, the chunk gate's flow
 * control) into the PipelineSink and Pipeline that `ctpipe run` builds from the default
 * configuration (detectors and state checkpoints included), rows into chDB.
 *
 * The input: one lab connection's 8 kernel events (test/fixtures/netlink, a TCP connection
 * captured in the lab: NEW, six UPDATEs, DESTROY with counters) re-stamped per connection in place
 * (conntrack id, source address and port), framed like collector/netlink/frames.ts in chunks of
 * 4,096 datagrams; 1,000 connections interleaved at a time, one event per millisecond of event
 * time. Making the chunks is the reader thread's work in a real run: it is measured alone and
 * reported apart (`feedUsPerEvent`), and the main thread's figure is given with it taken out.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { runStateKey } from '../cli/commands/run.js';
import { loadConfig } from '../cli/config.js';
import { Collector } from '../collector/collector.js';
import { decodeDatagram } from '../collector/conntrack/decode.js';
import { collectorMetrics } from '../collector/metrics.js';
import { FRAME_HEADER } from '../collector/netlink/frames.js';
import { NlWriter } from '../collector/netlink/writer.js';
import type { ChunkHandler, NetlinkSocket, SocketOptions, SocketStats } from '../collector/socket.js';
import { silentLogger } from '../common/log.js';
import { packageRoot } from '../common/paths.js';
import type { CtRecord } from '../contract/records.js';
import { Stamper } from '../contract/stamper.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import { pipelineOptions } from '../processor/options.js';
import { Pipeline } from '../processor/pipeline.js';
import { PipelineSink } from '../processor/sink.js';
import { threadUse, usPerBy } from './scale-proc.js';

export interface E2eNetlinkResult {
  conns: number;
  events: number;
  rowsStored: number;
  seconds: number;
  eventsPerSecond: number;
  /** Process CPU (user + system, every thread: JS, chDB's, libuv's) per event, feeding included. */
  cpuUsPerEvent: number;
  /** The main (event loop) thread's CPU per event, feeding taken out. */
  mainUsPerEvent: number;
  /** Making the netlink chunks (the reader thread's work in a real run), main thread, per event. */
  feedUsPerEvent: number;
  /** CPU per event by thread group (scale-proc.ts threadUse: main, ThreadPool for chDB's inserts, MergeMutate, node...). */
  byThread: Record<string, number>;
  /** 1-minute load average before and after the timed phase (the machine is shared). */
  loadavg: [number, number];
}

const PER_CHUNK = 4096;
const IN_FLIGHT = 1000;

/** One event datagram and where its per-connection fields sit. */
interface Slot {
  bytes: Buffer;
  id: number;
  origSrc: number;
  origSport: number;
  replyDst: number;
  replyDport: number;
  /** CTA_TIMESTAMP_EVENT (the record's time), and the DESTROY's CTA_TIMESTAMP start and stop (-1: none). */
  eventTime: number;
  start: number;
  stop: number;
}

/** Payload offset of the attribute at `path` (nested types) in the message at `msg`, or -1. */
function attrAt(b: Buffer, msg: number, path: number[]): number {
  let start = msg + 20; // nlmsghdr + nfgenmsg
  let end = msg + b.readUInt32LE(msg);
  for (let depth = 0; depth < path.length; depth++) {
    let o = start;
    let found = -1;
    while (o + 4 <= end) {
      const len = b.readUInt16LE(o);
      if (len < 4) break;
      if ((b.readUInt16LE(o + 2) & 0x3fff) === path[depth]) {
        found = o;
        break;
      }
      o += (len + 3) & ~3;
    }
    if (found < 0) return -1;
    start = found + 4;
    end = found + b.readUInt16LE(found);
  }
  return start;
}

/** The lab connection with 8 events (IPv4 TCP), and the offsets re-stamped per connection. */
export function labConnection(): Slot[] {
  const fixture = JSON.parse(readFileSync(path.join(packageRoot(), 'test/fixtures/netlink/lab-6.18.44.json'), 'utf8')) as {
    datagrams: { source: string; hex: string }[];
  };
  const byId = new Map<number, { bytes: Buffer; r: CtRecord }[]>();
  for (const d of fixture.datagrams) {
    if (d.source !== 'events') continue;
    const bytes = Buffer.from(d.hex, 'hex');
    const rs: CtRecord[] = [];
    decodeDatagram(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length, 0, 0, {
      ct: (r) => rs.push(r), exp: () => {}, cpuStats: () => {}, globalStats: () => {}, expStats: () => {}, done: () => {}, kernelError: () => {},
      reject: (e) => { throw e; },
    });
    for (const r of rs) byId.set(r.id, [...(byId.get(r.id) ?? []), { bytes, r }]);
  }
  const conn = [...byId.values()].find((es) => es.length === 8 && es[0]!.r.family === 'ipv4' && es[0]!.r.proto === 6 && es[0]!.r.type === 'new' && es[7]!.r.type === 'destroy');
  if (!conn) throw new Error('e2e: no 8-event IPv4 TCP connection in the fixture');
  // CTA_TUPLE_ORIG 1 / REPLY 2 > CTA_TUPLE_IP 1 > V4 SRC 1, DST 2; CTA_TUPLE_PROTO 2 > SRC_PORT 2, DST_PORT 3; CTA_ID 12;
  // CTA_TIMESTAMP_EVENT 27; CTA_TIMESTAMP 20 > START 1, STOP 2
  return conn.map(({ bytes }, step) => {
    const s = {
      bytes, id: attrAt(bytes, 0, [12]), origSrc: attrAt(bytes, 0, [1, 1, 1]), origSport: attrAt(bytes, 0, [1, 2, 2]), replyDst: attrAt(bytes, 0, [2, 1, 2]),
      replyDport: attrAt(bytes, 0, [2, 2, 3]), eventTime: attrAt(bytes, 0, [27]), start: attrAt(bytes, 0, [20, 1]), stop: attrAt(bytes, 0, [20, 2]),
    };
    const needed = [s.id, s.origSrc, s.origSport, s.replyDst, s.replyDport, s.eventTime, ...(step === 7 ? [s.start, s.stop] : [])];
    if (needed.some((v) => v === -1)) throw new Error('e2e: an attribute to re-stamp is missing');
    return s;
  });
}

/**
 * The chunks of `conns` connections (8 events each), made as they are consumed, each a fresh
 * buffer as the native reader's are. Event times start at `epoch` (seconds): after the wall clock
 * of the collector's first stats record, which moves the host's event-time watermark too.
 */
export function* netlinkChunks(slots: Slot[], conns: number, epoch: number): Generator<Buffer> {
  // event k's time: one event per millisecond from `epoch`
  const timeNs = (k: number): bigint => BigInt(epoch + Math.floor(k / 1000)) * 1_000_000_000n + BigInt((k % 1000) * 1e6);
  const frame = (s: Slot) => FRAME_HEADER + ((s.bytes.length + 7) & ~7);
  let chunk = Buffer.allocUnsafe(PER_CHUNK * Math.max(...slots.map(frame)));
  let o = 0;
  let n = 0;
  let k = 0;
  for (let base = 0; base < conns; base += IN_FLIGHT) {
    for (let step = 0; step < slots.length; step++) {
      const s = slots[step]!;
      const inFlight = Math.min(conns, base + IN_FLIGHT) - base;
      for (let c = base; c < base + inFlight; c++, k++) {
        chunk.writeUInt32LE(s.bytes.length, o);
        chunk.writeUInt32LE(0, o + 4);
        chunk.writeUInt32LE(epoch + Math.floor(k / 1000), o + 8);
        chunk.writeUInt32LE((k % 1000) * 1e6, o + 12);
        const d = o + FRAME_HEADER;
        s.bytes.copy(chunk, d);
        chunk.writeBigUInt64BE(timeNs(k), d + s.eventTime);
        if (s.start >= 0) chunk.writeBigUInt64BE(timeNs(k - step * inFlight), d + s.start);
        if (s.stop >= 0) chunk.writeBigUInt64BE(timeNs(k), d + s.stop);
        chunk.writeUInt32BE(c + 1, d + s.id);
        chunk.writeUInt16BE(c & 0xffff, d + s.origSrc + 2);
        chunk.writeUInt16BE(c & 0xffff, d + s.replyDst + 2);
        chunk.writeUInt16BE(10_000 + (c % 50_000), d + s.origSport);
        chunk.writeUInt16BE(10_000 + (c % 50_000), d + s.replyDport);
        o += frame(s);
        if (++n === PER_CHUNK) {
          yield chunk.subarray(0, o);
          chunk = Buffer.allocUnsafe(chunk.length);
          o = 0;
          n = 0;
        }
      }
    }
  }
  if (n) yield chunk.subarray(0, o);
}

/** The event socket hands over what the bench feeds; the query socket answers every request with NLMSG_DONE. */
class BenchSocket implements NetlinkSocket {
  portId = 1;
  rcvbuf = 1 << 20;
  forced = true;
  handler?: ChunkHandler;
  constructor(private readonly query: boolean) {}
  start(h: ChunkHandler): void {
    this.handler = h;
  }
  send(msg: Buffer): void {
    if (!this.query) return;
    const done = new NlWriter().raw(3, 2, msg.readUInt32LE(8), Buffer.alloc(4)).bytes();
    const framed = Buffer.alloc(FRAME_HEADER + ((done.length + 7) & ~7));
    framed.writeUInt32LE(done.length, 0);
    done.copy(framed, FRAME_HEADER);
    queueMicrotask(() => this.handler?.(framed, 0, 0));
  }
  setRcvbuf(bytes: number): number {
    return (this.rcvbuf = bytes);
  }
  stats(): SocketStats {
    return { drops: 0, rmem: 0, rcvbuf: this.rcvbuf, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: 0, readerTid: 0 };
  }
  unref(): void {}
  close(): void {}
}

/** CPU seconds of this process's main thread (Linux: /proc/self/task/<pid>/stat, clock ticks of 10 ms). */
export function mainThreadCpu(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14 and 15)
}

export async function runE2eNetlink(conns = 200_000): Promise<E2eNetlinkResult> {
  const slots = labConnection();
  const events = conns * slots.length;
  // the feed alone, on the main thread
  const f0 = mainThreadCpu();
  let fed = 0;
  for (const ch of netlinkChunks(slots, conns, Math.floor(Date.now() / 1000) + 1)) fed += ch.length;
  const feedS = mainThreadCpu() - f0;
  if (!fed) throw new Error('e2e: nothing fed');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-e2e-nl-'));
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    await migrate(store, { db: 'ctpipe', flowsTtlDays: 3650, eventsTtlDays: 3 });
    const cfg = loadConfig({});
    const stamper = new Stamper('bench', 'bench');
    const pipeline = new Pipeline(pipelineOptions(cfg, store, silentLogger, new Registry()));
    const sink = new PipelineSink(pipeline, {
      flushMs: cfg.process.flush, processor: 'run:bench', maxBacklog: cfg.process.max_backlog, log: silentLogger, stamper,
      checkpoint: { store, key: runStateKey('bench'), everyMs: cfg.process.checkpoint },
    });
    const sockets: BenchSocket[] = [];
    const collector = new Collector({
      stamper, events: ['new', 'update', 'destroy'], rcvbuf: 1 << 20, rcvbufMax: 1 << 20, dump: false, statsIntervalMs: 3_600_000, resyncMinIntervalMs: 1000,
      sink, metrics: collectorMetrics(new Registry()), log: silentLogger,
      sockets: (o: SocketOptions) => {
        const s = new BenchSocket(!o.groups?.length);
        sockets.push(s);
        return s;
      },
    });
    await collector.start();
    const push = sockets[0]!.handler!;
    const load0 = os.loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const m0 = mainThreadCpu();
    const threads0 = threadUse(process.pid);
    const t0 = process.hrtime.bigint();
    for (const ch of netlinkChunks(slots, conns, Math.floor(Date.now() / 1000) + 1)) {
      // the reader's next chunk comes once the decoder took the last one (the kernel's buffer holds the rest)
      if (collector.heldEvents > 0 || !sink.hasRoom()) await sink.whenRoom();
      push(ch, 0, 0);
      await yieldToIo();
    }
    while (collector.heldEvents > 0) await sink.whenRoom().then(() => yieldToIo());
    await sink.flush();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const main = mainThreadCpu() - m0;
    const byThread = usPerBy(threads0, threadUse(process.pid), events);
    const load1 = os.loadavg()[0]!;
    await collector.stop(false);
    await sink.close();
    const [r] = await store.query<{ n: string }>("SELECT count() n FROM ctpipe.flows FINAL WHERE host = 'bench' AND end_reason = 'destroy'");
    const rowsStored = Number(r!.n);
    if (rowsStored !== conns || collector.totals.events !== events) {
      const by = await store.query("SELECT end_reason, lost_by, count() n FROM ctpipe.flows FINAL GROUP BY ALL");
      throw new Error(`e2e guard: ${rowsStored} of ${conns} flows stored as destroyed (${JSON.stringify(by)}), ${collector.totals.events} of ${events} events decoded; engine ${JSON.stringify(pipeline.engine.counters)}`);
    }
    return {
      conns, events, rowsStored, seconds: s, eventsPerSecond: events / s, cpuUsPerEvent: (cpu.user + cpu.system) / events,
      mainUsPerEvent: ((main - feedS) * 1e6) / events, feedUsPerEvent: (feedS * 1e6) / events, byThread, loadavg: [load0, load1],
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('e2e-netlink.js')) {
  const n = Number(process.argv[2] ?? 200_000);
  console.log(JSON.stringify(await runE2eNetlink(n)));
}
