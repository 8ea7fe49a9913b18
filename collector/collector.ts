/**
 * The collector: subscribes to conntrack events, dumps the table, polls statistics, optionally
 * samples INVALID packets from NFLOG (nflog/sampler.ts), stamps every record with host, run and
 * sequence number (the run's Stamper), and hands them to a sink. It owns no socket code itself
 * (SocketFactory is injected).
 *
 * Start-up order (conntrack-netlink.md §6.2): the event socket subscribes first, then the table is
 * dumped on a second socket, so a flow that changes during the dump is seen at least once; the
 * processor merges snapshot rows with events by (id, original tuple, zone).
 *
 * Loss: an ENOBUFS on the event socket means the kernel dropped events. The collector reads the
 * exact count from the socket (sk_drops), emits a `loss` record, doubles the receive buffer (up to
 * a cap, as conntrackd does) and re-dumps the table so the processor can resync.
 */
import { CtpipeError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { sumCpus } from '../contract/records.js';
import type { CpuStats, CtpipeRecord, ExpRecord, LossRecord, StatsRecord } from '../contract/records.js';
import type { RecordSink } from '../contract/sink.js';
import type { Stamper } from '../contract/stamper.js';
import { favorReaders } from './priority.js';
import { ChunkGate } from './gate.js';
import { decodeDatagram, type MessageHandler } from './conntrack/decode.js';
import type { ExpStats, GlobalStats } from './conntrack/stats.js';
import { DropCounter } from './drops.js';
import { netnsLabel } from './conntrack-metrics.js';
import type { CollectorMetrics } from './metrics.js';
import type { NetnsMetrics } from './netns-metrics.js';
import * as N from './netlink/constants.js';
import { forEachFrame } from './netlink/frames.js';
import * as R from './netlink/requests.js';
import { NflogSampler } from './nflog/sampler.js';
import { QueryClient } from './query.js';
import { CounterDumper, type CounterDumpOptions, type CounterDumpResult } from './counter-dumps.js';
import type { NetlinkSocket, SocketFactory } from './socket.js';

export type EventKind = 'new' | 'update' | 'destroy' | 'exp_new' | 'exp_destroy';

const GROUPS: Record<EventKind, number> = {
  new: N.NFNLGRP_CONNTRACK_NEW,
  update: N.NFNLGRP_CONNTRACK_UPDATE,
  destroy: N.NFNLGRP_CONNTRACK_DESTROY,
  exp_new: N.NFNLGRP_CONNTRACK_EXP_NEW,
  exp_destroy: N.NFNLGRP_CONNTRACK_EXP_DESTROY,
};

/** Raw event bytes kept at most while the sink has no room (a 1M-entry flush is about 300 MB). */
const HOLD_MAX_BYTES = 512 << 20;

export interface CollectorOptions {
  /** Host, run and sequence: shared with the sink, which stamps its own loss records with it. */
  stamper: Stamper;
  events: EventKind[];
  rcvbuf: number;
  rcvbufMax: number;
  /** Nice value of every thread but the netlink readers (priority.ts); 0 leaves them alone. */
  processingNice?: number;
  netns?: string;
  /**
   * The namespace's name on every record (`netns`), when one process follows several
   * (netns-follower.ts); with it, the namespace's own loss counters (`netnsMetrics`).
   */
  netnsName?: string;
  netnsMetrics?: NetnsMetrics;
  dump: boolean;
  statsIntervalMs: number;
  resyncMinIntervalMs: number;
  /**
   * Warn when no conntrack event has come for this long after events came before (0: never):
   * conntrack stops producing events when the last rule that made it track the namespace goes.
   */
  quietWarnMs?: number;
  nflog?: { group: number; rate: number; copyRange: number };
  /** Table dumps that bring open flows' byte and packet counters (counter-dumps.ts); none when absent. */
  counterDumps?: CounterDumpOptions;
  sink: RecordSink;
  sockets: SocketFactory;
  metrics: CollectorMetrics;
  log: Logger;
  /** Sees every raw datagram of the event socket (fixture capture: `ctpipe collect --capture`). */
  capture?: (datagram: Buffer, sec: number, nsec: number) => void;
}

export class Collector {
  private events?: NetlinkSocket;
  private query?: QueryClient;
  private nflog?: NflogSampler;
  private counterDumper?: CounterDumper;
  private statsTimer?: NodeJS.Timeout;
  private polling: Promise<void> | undefined;
  private resyncTimer?: NodeJS.Timeout;
  private lastResyncAt = 0;
  private eventDrops?: DropCounter;
  private rcvbuf = 0;
  private counted = { events: 0, drops: 0, enobufs: 0, rejected: 0 };
  /** What the per-namespace counters already hold of `counted`. */
  private reported = { events: 0, drops: 0, enobufs: 0 };
  private rejectLogs = 0;
  private readonly eventHandler: MessageHandler;
  private stopped = false;
  /** stop() was called (its counter dump may still run; `stopped` is set once reading stops). */
  private stopping = false;
  /** When the last event came from the event socket (0: none yet), and whether the quiet is reported. */
  private lastEventAt = 0;
  /** An event came in the chunk being decoded: lastEventAt is set once a chunk, not once an event. */
  private sawEvent = false;
  private quietReported = false;
  /** The `netns` label of this collector's conntrack metrics. */
  private readonly netnsLabel: string;
  /** Whether the last stats poll and event socket look healthy (for /healthz). */
  healthy = true;
  lastError: string | undefined;

  constructor(private readonly o: CollectorOptions) {
    this.gate = new ChunkGate(o.sink, (h) => this.takeChunk(h.chunk, h.enobufs, h.errno), (h) => h.chunk?.length ?? 0, HOLD_MAX_BYTES, (b) => o.metrics.held.set(b));
    this.netnsLabel = o.netnsName ?? netnsLabel(o.netns); // one label per namespace, as the follower names it
    // Counted in plain numbers, one increment an event, published at each scrape (metric-tally.ts).
    const counts = o.metrics.conntrack.eventCounts(this.netnsLabel);
    this.eventHandler = {
      ct: (r) => {
        this.sawEvent = true;
        if (r.type !== 'snapshot') counts[r.type].n++;
        this.emit(r);
      },
      exp: (r) => {
        this.sawEvent = true;
        counts[r.type].n++;
        this.emit(r);
      },
      cpuStats: () => {},
      globalStats: () => {},
      expStats: () => {},
      done: () => {},
      kernelError: () => {},
      reject: (e, bytes) => this.onReject(e, bytes, 'events'),
      unknownAttrs: (a) => o.metrics.unknownAttrs.inc(a.length),
    };
  }

  get run(): string {
    return this.o.stamper.run;
  }

  get lastSeq(): number {
    return this.o.stamper.lastSeq;
  }

  /** Events decoded and kernel losses since start. */
  get totals(): { events: number; drops: number; enobufs: number; rejected: number } {
    return { ...this.counted };
  }

  /** INVALID packets suppressed since the last sample (they will ride on the next one). */
  get pendingInvalidWeight(): number {
    return this.nflog?.pendingWeight ?? 0;
  }

  /** Stamps and emits a record the collector made. */
  private emit(r: CtpipeRecord): void {
    this.deliver(this.o.stamper.stamp(r));
  }

  /** Counts a stamped record and writes it to the sink: the only way records leave the collector. */
  private deliver(r: CtpipeRecord): void {
    if (this.o.netnsName !== undefined) r.netns = this.o.netnsName;
    if (r.type !== 'stats' && r.type !== 'loss' && r.type !== 'dump_end') this.counted.events++;
    if (r.type === 'snapshot' || (r.type === 'exp_new' && (r as ExpRecord).snapshot)) this.o.metrics.snapshotRows.inc();
    this.o.metrics.recordsByType[r.type].n++;
    this.o.sink.write(r);
  }

  private onReject(e: CtpipeError, bytes: Buffer, socket: string): void {
    this.counted.rejected++;
    this.o.metrics.rejected.inc({ code: e.code });
    // The first rejections are logged in full, then one in a thousand: a malformed stream must not
    // turn into a log storm.
    if (this.rejectLogs++ < 10 || this.rejectLogs % 1000 === 0) {
      this.o.log.warn({ code: e.code, socket, bytes: bytes.subarray(0, 256).toString('hex'), rejected: this.counted.rejected }, `rejected a netlink message: ${e.message}`);
    }
  }

  async start(): Promise<void> {
    const o = this.o;
    const groups = [...new Set(o.events.map((k) => GROUPS[k]))];
    this.events = o.sockets({ groups, rcvbuf: o.rcvbuf, netns: o.netns });
    this.eventDrops = new DropCounter(this.events);
    this.rcvbuf = this.events.rcvbuf;
    o.metrics.rcvbuf.set(this.rcvbuf);
    if (!this.events.forced) {
      o.log.warn({ rcvbuf: this.rcvbuf }, 'SO_RCVBUFFORCE refused (no CAP_NET_ADMIN?): the receive buffer is capped by net.core.rmem_max and storms will overflow it');
    }
    this.events.start((chunk, enobufs, errno) => this.onEventChunk(chunk, enobufs, errno));
    o.log.info({ groups: o.events, rcvbuf: this.rcvbuf, netns: o.netns, run: this.run }, 'subscribed to conntrack events');

    const querySocket = o.sockets({ rcvbuf: 4 << 20, netns: o.netns });
    this.query = new QueryClient(querySocket, (e, b) => this.onReject(e, b, 'query'), (a) => o.metrics.unknownAttrs.inc(a.length), o.sink);
    if (o.nflog) {
      this.nflog = new NflogSampler({
        ...o.nflog, netns: o.netns, sockets: o.sockets, stamper: o.stamper, metrics: o.metrics, log: o.log,
        deliver: (r) => this.deliver(r), reject: (e, b) => this.onReject(e, b, 'nflog'),
      });
      await this.nflog.start();
    }
    await favorReaders([this.events, querySocket, ...(this.nflog?.socket ? [this.nflog.socket] : [])], o.processingNice ?? 0, o.log);
    if (o.dump) await this.dump('start');
    if (o.counterDumps) {
      this.counterDumper = new CounterDumper(o.counterDumps, this.query, (r) => this.emit(r), o.log);
      this.counterDumper.start((e) => this.fail('counter dump failed', e));
    }
    await this.pollStats();
    this.statsTimer = setInterval(() => {
      if (this.polling) return; // the last one is still waiting (behind a dump): no pile-up
      this.polling = this.pollStats().then(() => undefined, (e: unknown) => this.fail('stats poll failed', e)).finally(() => { this.polling = undefined; });
    }, o.statsIntervalMs);
  }

  private fail(msg: string, e: unknown): void {
    if (this.stopped) return; // a request cut short by stop(): not a failure
    this.healthy = false;
    this.lastError = `${msg}: ${errorMessage(e)}`;
    this.o.log.error({ err: e }, msg);
  }

  /** Raw event chunks kept while the sink has no room (gate.ts). */
  private readonly gate: ChunkGate<{ chunk: Buffer | null; enobufs: number; errno: number }>;

  /** Raw event bytes held for the sink. */
  get heldEvents(): number {
    return this.gate.bytes;
  }

  /**
   * Raw event bytes on their way to the sink: in the kernel's receive queue, the reader thread's
   * queue and the gate. A flush's first events fill the first two before the gate holds any.
   */
  get waitingBytes(): number {
    const st = this.stopped ? undefined : this.events?.stats(); // a closed socket has no queue to ask
    return this.gate.bytes + (st ? st.rmem + st.queued : 0);
  }

  private onEventChunk(chunk: Buffer | null, enobufs: number, errno: number): void {
    this.gate.push({ chunk, enobufs, errno });
  }

  private takeChunk(chunk: Buffer | null, enobufs: number, errno: number): void {
    if (chunk) {
      const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      forEachFrame(chunk, (off, len, sec, nsec, truncated) => {
        this.o.capture?.(chunk.subarray(off, off + len), sec, nsec);
        if (truncated) this.onReject(new CtpipeError('NL_TRUNCATED', 'datagram larger than the read buffer'), chunk.subarray(off, off + 64), 'events');
        else decodeDatagram(chunk, dv, off, off + len, sec, nsec, this.eventHandler);
      });
      if (this.sawEvent) {
        this.sawEvent = false;
        this.lastEventAt = Date.now();
      }
    }
    if (enobufs > 0) this.onOverrun(enobufs);
    if (errno) this.fail('event socket receive failed', new Error(`errno ${errno}`));
  }

  /** Kernel dropped events: count them exactly, say so in the stream, grow the buffer, resync. */
  private onOverrun(enobufs: number): void {
    const o = this.o;
    this.counted.enobufs += enobufs;
    o.metrics.enobufs.inc({ socket: 'events' }, enobufs);
    const lost = this.takeDrops();
    this.emitLoss('enobufs', lost, 'events', true);
    this.reportNetns();
    o.log.warn({ enobufs, lost, rcvbuf: this.rcvbuf }, 'the kernel dropped conntrack events (receive buffer overrun); a resync dump follows');
    if (this.rcvbuf < o.rcvbufMax && this.events) {
      this.rcvbuf = this.events.setRcvbuf(Math.min(this.rcvbuf * 2, o.rcvbufMax));
      o.metrics.rcvbuf.set(this.rcvbuf);
    }
    this.scheduleResync();
  }

  private takeDrops(): number {
    if (!this.eventDrops) return 0;
    const delta = this.eventDrops.take();
    if (delta > 0) {
      this.counted.drops += delta;
      this.o.metrics.kernelDrops.inc({ socket: 'events' }, delta);
    }
    return delta;
  }

  /** This namespace's events and losses into its own counters (one namespace's loss never hides in another's). */
  private reportNetns(): void {
    const m = this.o.netnsMetrics;
    const netns = this.o.netnsName;
    if (!m || netns === undefined) return;
    const c = this.counted;
    const r = this.reported;
    if (c.events > r.events) m.events.inc({ netns }, c.events - r.events);
    if (c.drops > r.drops) m.lost.inc({ netns }, c.drops - r.drops);
    if (c.enobufs > r.enobufs) m.enobufs.inc({ netns }, c.enobufs - r.enobufs);
    this.reported = { events: c.events, drops: c.drops, enobufs: c.enobufs };
  }

  private emitLoss(reason: LossRecord['reason'], count: number, source: string, resync: boolean): void {
    this.deliver(this.o.stamper.loss({ reason, count, source }, resync));
  }

  private scheduleResync(): void {
    if (this.resyncTimer || this.stopped) return;
    const wait = Math.max(0, this.lastResyncAt + this.o.resyncMinIntervalMs - Date.now());
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.o.metrics.resyncs.inc();
      this.dump('resync').catch((e: unknown) => this.fail('resync dump failed', e));
    }, wait);
  }

  /** Dumps conntrack entries, then expectations, emitting them as snapshot rows. */
  async dump(why: 'start' | 'resync'): Promise<{ flows: number; expectations: number }> {
    if (!this.query) throw new Error('collector not started');
    this.lastResyncAt = Date.now();
    const startSeq = this.lastSeq + 1;
    let flows = 0;
    let expectations = 0;
    await this.query.request(R.ctDump, { ct: (r) => { flows++; this.emit(r); } });
    await this.query.request(R.expDump, { exp: (r) => { expectations++; this.emit(r); } });
    // The processor closes what a resync dump no longer holds: it needs to know where the dump ends.
    this.emit({ ...this.o.stamper.header(), type: 'dump_end', why, start_seq: startSeq, flows, expectations });
    this.o.log.info({ why, flows, expectations }, 'dumped the conntrack table');
    return { flows, expectations };
  }

  /** Per-CPU and global statistics, emitted as one `stats` record. */
  async pollStats(): Promise<StatsRecord> {
    if (!this.query) throw new Error('collector not started');
    const cpus: CpuStats[] = [];
    let global: GlobalStats = {};
    const exp: ExpStats = { exp_new: 0, exp_create: 0, exp_delete: 0 };
    await this.query.request(R.ctStatsCpu, { cpuStats: (s) => cpus.push(s) });
    await this.query.request(R.ctStatsGlobal, { globalStats: (g) => { global = g; } });
    await this.query.request(R.expStatsCpu, {
      expStats: (s) => {
        exp.exp_new += s.exp_new;
        exp.exp_create += s.exp_create;
        exp.exp_delete += s.exp_delete;
      },
    });
    // Drops without an ENOBUFS (should not happen, but the count is what matters).
    const silent = this.takeDrops();
    if (silent > 0) this.emitLoss('socket_drops', silent, 'events', false);
    this.reportNetns();
    if (this.events) {
      const st = this.events.stats();
      this.o.metrics.backlog.set(st.rmem);
      this.o.metrics.readerQueue.set(st.queued);
    }
    const rec: StatsRecord = {
      ...this.o.stamper.header(), type: 'stats', cpus, totals: sumCpus(cpus), ...global, ...exp, collector: { ...this.counted },
    };
    this.emit(rec);
    this.o.metrics.conntrack.observe(this.netnsLabel, rec);
    this.o.metrics.seq.set(this.lastSeq);
    this.healthy = true;
    this.watchQuiet();
    return rec;
  }

  /**
   * Events stopped coming: on a host with traffic, most likely the rule that made conntrack track
   * the namespace is gone (another program's table deleted, a firewall reloaded). Said once per
   * quiet spell, with a gauge for alerting; an idle host shows the same, hence a long default.
   */
  private watchQuiet(): void {
    const o = this.o;
    if (this.lastEventAt === 0) return;
    const age = Date.now() - this.lastEventAt;
    o.metrics.eventAge.set(age / 1000);
    const quiet = !!o.quietWarnMs && age >= o.quietWarnMs;
    o.metrics.quiet.set(quiet ? 1 : 0);
    if (quiet && !this.quietReported) {
      o.log.warn({ code: 'CONNTRACK_QUIET', quiet_s: Math.round(age / 1000) },
        `no conntrack event for ${Math.round(age / 1000)} s after events came before: conntrack may have stopped tracking this network namespace ` +
        '(the rule that used conntrack was removed, e.g. by a firewall reload or another program) or the host is idle. ' +
        'Check that a rule using conntrack is in place (nft list ruleset), or run with --enable-conntrack.');
    } else if (!quiet && this.quietReported) {
      o.log.info({ quiet_s: Math.round(age / 1000) }, 'conntrack events come again');
    }
    this.quietReported = quiet;
  }

  // ------------------------------------------------------------------ shutdown

  /** Counter dumps done and skipped, and the records they emitted. */
  get counterDumps(): CounterDumper['counted'] | undefined {
    return this.counterDumper?.counted;
  }

  /**
   * Stops reading; the sink's owner then closes it (a Kafka sink bounds that by its flush timeout).
   * With `counterDumps.stopTimeoutMs` (and `counterDump`), the table is dumped first (bounded), so
   * the rows written for the flows still open carry the kernel's counters.
   */
  async stop(counterDump = true): Promise<CounterDumpResult | undefined> {
    if (this.stopped || this.stopping) return undefined;
    this.stopping = true;
    let last: CounterDumpResult | undefined;
    this.counterDumper?.stopTimer();
    // no poll from now on, and the one under way ends before the sockets close: its record reaches
    // the sink before the sink's last flush (else it would be stamped and never stored)
    clearInterval(this.statsTimer);
    await this.polling;
    const stopMs = this.o.counterDumps?.stopTimeoutMs ?? 0;
    if (this.counterDumper && stopMs > 0 && counterDump) last = await this.counterDumper.dump('stop', stopMs);
    this.stopped = true;
    clearTimeout(this.resyncTimer);
    this.events?.close();
    this.nflog?.close();
    this.query?.close();
    // what was received, and what was held, goes to the sink before the sink is closed
    await Promise.all([this.events?.settled?.(), this.query?.settled()]);
    await this.gate.drained();
    this.reportNetns();
    return last;
  }
}
