/**
 * The in-memory link of `ctpipe run`: the collector writes records here instead of to Kafka, and
 * they go through the processor pipeline in slices as they come (what one read of the collector
 * brings, cut by a cursor, cursor.ts), so a record dies young: held until a whole insert's worth
 * had come, 100,000 records outlived the young generation and were copied and promoted by the GC
 * (issue 19's profile). Their rows are inserted in batches of at most `maxRows` rows and
 * `maxBatch` records, at least every `flushMs`, each under a token naming its (host, run, seq
 * range). The next records go through the engine meanwhile (rows carry versions and tokens, so the
 * order in which inserts finish does not matter).
 *
 * With `checkpoint`, the pipeline's state is saved every `everyMs` and when the sink closes, once
 * every earlier chunk's rows are stored, so a stop needs no row for the flows still open (it writes
 * them only up to OPEN_ROWS_AT_STOP, for a short run's sake): the next
 * start restores them and its table dump continues them (lifecycle/engine.ts). A checkpoint costs
 * the whole state (1.4 to 2.1 s of CPU for a million open flows, docs/PERFORMANCE.md), so it waits
 * while input is waiting, here or a backlog still raw on its way (`upstream`), up to five intervals.
 *
 * While ClickHouse refuses inserts, records wait here: at most `maxBacklog` of them (memory is the
 * only buffer of `ctpipe run`). Past it new records are dropped, and once there is room again the
 * dropped seq range goes into the stream as a `buffer_full` loss record, as the Kafka publisher
 * reports what it had to drop.
 *
 * A stop waits for ClickHouse like the rest (nothing is given up while it may come back), until
 * `abort()` (a second signal): then every wait ends, the records and rows not stored are counted
 * in `unstored` for the caller to report as a loss, and no state is saved (the previous
 * checkpoint stays, so the next start closes what it held as lost, not silently).
 */
import { errorMessage, isCtpipeError } from '../common/errors.js';
import { INSERTS_IN_FLIGHT, TABLES } from './store.js';
import type { Logger } from '../common/log.js';
import type { CtpipeRecord } from '../contract/records.js';
import type { RecordSink } from '../contract/sink.js';
import type { Stamper } from '../contract/stamper.js';
import { saveState } from './checkpoint.js';
import { retrying } from './clickhouse/retry.js';
import { PartitionCursor, type Chunk } from './cursor.js';
import type { Pipeline } from './pipeline.js';
import type { InputKey, Store } from './store.js';

export interface PipelineSinkOptions {
  flushMs: number;
  /** Names this process in processor_stats. */
  processor?: string;
  /** Rows an insert takes at most (default 100,000, about what the store inserts in a second at its best). */
  maxRows?: number;
  /** Records an insert covers at most (default 1,000,000; their rows are bounded by maxRows). */
  maxBatch?: number;
  /** Records through the engine at a time (default 4,096). */
  slice?: number;
  /** Inserts in flight at most (default INSERTS_IN_FLIGHT). */
  inserts?: number;
  /** Records waiting at most (unbounded when absent). */
  maxBacklog?: number;
  /** Stamps the loss records this sink puts into the stream (the collector's Stamper). */
  stamper?: Stamper;
  log?: Logger;
  /** Saves the state under `key` every `everyMs` and at close. */
  checkpoint?: { store: Store; key: InputKey; everyMs: number };
}

/**
 * Upstream bytes that make a backlog: a due checkpoint waits for them (a gate chunk is up to 1 MiB;
 * events arriving at a steady rate keep a few kilobytes in flight).
 */
export const UPSTREAM_BACKLOG = 1 << 20;

/** Open flows that get a row when a run that keeps its state stops (about a second of inserts). */
export const OPEN_ROWS_AT_STOP = 100_000;

/** Records making under a row per hundred are cut this many at a time all the same (the old records bound). */
const ROWLESS_RECORDS = 100_000;

/** Records through the engine at a time: about one read of the collector's (a chunk of 4,096 events). */
const SLICE = 4096;

/**
 * Slices of records waiting at most before the collector keeps the rest raw (hasRoom). One: each
 * young-generation GC copies the records then alive, and a 1M-entry flush's scavenges copied 11.7
 * MB (67 ms) each with room for four slices, 4.9 MB (18 ms) with one (docs/PERFORMANCE.md).
 */
const ROOM_SLICES = 1;

/** Records through the engine whose rows are not yet handed to an insert: the next insert's range. */
interface Batch {
  first: number;
  last: number;
  count: number;
}

export class PipelineSink implements RecordSink {
  private cursor?: PartitionCursor<CtpipeRecord>;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  /** A drain is chained and has not started yet (one is enough: it takes whatever is waiting then). */
  private scheduled = false;
  /** The chained drain is to cut the batch at its end (the flush timer, flush()). */
  private flushWanted = false;
  private batch: Batch | undefined;
  /** Names the collector run in tokens (host:run), as the cursor does. */
  private input = '';
  private inflight: Promise<void>[] = [];
  /** The last write, so that chunks are marked done in order. */
  private written: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Records taken from the cursor and not yet through the engine. */
  private taken = 0;
  private roomWaiters: (() => void)[] = [];
  /** Raw event bytes on their way here, set by the caller once its input exists (run.ts: the collector's queues and gate). */
  upstream: () => number = () => 0;
  /** Records dropped since the backlog filled, and their seq range. */
  private dropping = { count: 0, first: 0, last: 0 };
  processed = 0;
  dropped = 0;
  /** Set when ClickHouse cannot run the inserts at all (a schema problem): writing stops. */
  failure: string | undefined;
  /** Set by abort(): stop waiting for ClickHouse. */
  aborted = false;
  /** What could not be stored by the end (abort, or a schema failure): records, rows, and their seq range. */
  readonly unstored = { records: 0, rows: 0, first_seq: 0, last_seq: 0 };
  private readonly maxRows: number;
  private readonly maxBatch: number;
  private readonly slice: number;
  private readonly maxBacklog: number;
  private readonly inserts: number;

  constructor(private readonly pipeline: Pipeline, private readonly o: PipelineSinkOptions) {
    this.maxRows = o.maxRows ?? 100_000;
    this.maxBatch = o.maxBatch ?? 1_000_000;
    this.maxBacklog = o.maxBacklog ?? Infinity;
    this.inserts = o.inserts ?? INSERTS_IN_FLIGHT;
    this.slice = Math.min(o.slice ?? SLICE, this.maxBatch);
  }

  /** Records waiting to go through the pipeline. */
  get backlog(): number {
    return (this.cursor?.waiting ?? 0) + this.taken;
  }

  /**
   * Whether the collector may hand over more records now (else it keeps raw events, a few hundred
   * bytes each, in its gate). A slice, not an insert's worth: records decoded far ahead of the
   * engine outlive V8's young generation and are copied and promoted, which made GC the largest
   * cost of a 1M-entry table's flush (issue 19).
   */
  hasRoom(): boolean {
    return this.aborted || this.backlog < Math.min(this.maxBatch, ROOM_SLICES * this.slice); // aborted: what comes is counted, never waited for
  }

  whenRoom(): Promise<void> {
    return this.hasRoom() ? Promise.resolve() : new Promise((r) => this.roomWaiters.push(r));
  }

  private roomMaybe(): void {
    if (!this.roomWaiters.length || !this.hasRoom()) return;
    for (const r of this.roomWaiters.splice(0)) r();
  }

  write(r: CtpipeRecord): void {
    if (this.aborted) return this.countUnstoredRecords([r]);
    // loss records always get in: they carry the news of what was dropped
    if (this.backlog >= this.maxBacklog && r.type !== 'loss') {
      if (this.dropping.count++ === 0) {
        this.dropping.first = r.seq;
        this.o.log?.error({ backlog: this.backlog }, 'ClickHouse is not taking rows and the backlog is full: dropping records');
      }
      this.dropping.last = r.seq;
      this.dropped++;
      return;
    }
    // one collector run: positions are its seq numbers, tokens name its host and run
    if (!this.cursor) this.input = `${r.host}:${r.run}`;
    this.cursor ??= new PartitionCursor({
      input: this.input, position: (x) => x.seq, maxRecords: this.slice, checkpointMs: this.o.checkpoint?.everyMs ?? Infinity,
    }, Date.now());
    this.cursor.add([r]);
    this.reportDropped();
    if (this.cursor.waiting >= this.slice) this.kick(false);
    this.timer ??= setTimeout(() => this.kick(true), this.o.flushMs);
  }

  /** Puts the dropped range into the stream as a loss; false when nothing was dropped. */
  private reportDropped(): boolean {
    const d = this.dropping;
    if (d.count === 0) return false;
    this.dropping = { count: 0, first: 0, last: 0 };
    this.o.log?.warn({ dropped: d.count, first_seq: d.first, last_seq: d.last }, 'the backlog has room again; reporting the dropped records as a loss');
    if (this.o.stamper) this.write(this.o.stamper.loss({ reason: 'buffer_full', count: d.count, source: 'publish', first_seq: d.first, last_seq: d.last }));
    return true;
  }

  /** Runs what waits through the engine; `flush`: and hands every row made to an insert. */
  private kick(flush: boolean): void {
    if (flush) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flushWanted = true;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    // a failure the drain could not handle stops writing: it must not reject every later kick
    // (an unhandled rejection ended the process before the stop could close the store and the nft table)
    this.running = this.running.then(() => {
      this.scheduled = false;
      const f = this.flushWanted;
      this.flushWanted = false;
      return this.drain(f);
    }).catch((e: unknown) => this.fail(e));
  }

  /** Writing stops for good: records wait (up to maxBacklog), the stop reports it. */
  private fail(e: unknown): void {
    if (this.failure) return;
    this.failure = errorMessage(e);
    this.o.log?.error({ err: this.failure }, isCtpipeError(e, 'STORE_SCHEMA')
      ? 'ClickHouse cannot run the inserts against this database (a missing table or column?); writing stops. ' +
        'Fix the database (ctpipe migrate) and restart: records wait in memory until max_backlog, then are dropped and reported as a loss'
      : 'writing to ClickHouse failed; writing stops');
  }

  // Engine and inserts overlap: while ClickHouse (chDB's threads, or a server) inserts earlier
  // batches' rows, this thread runs the next records through the engine. Up to `inserts` in flight.
  private async drain(flush: boolean): Promise<void> {
    const cursor = this.cursor;
    if (!cursor || this.failure || this.aborted) return;
    for (let chunks = cursor.take(true); chunks.length; chunks = this.aborted ? [] : cursor.take(true)) {
      this.taken += chunks.reduce((n, c) => n + c.records.length, 0);
      for (const ch of chunks) {
        if (this.batch && this.batch.count + ch.records.length > this.maxBatch) await this.cut(cursor); // at most maxBatch records an insert
        this.pipeline.process(ch.records, false);
        this.taken -= ch.records.length;
        const b = (this.batch ??= { first: ch.first, last: ch.last, count: 0 });
        b.last = ch.last;
        b.count += ch.records.length;
        this.roomMaybe();
        this.pipeline.noteActivity(this.o.processor ?? 'run', -1, cursor.waiting);
        // by rows, not records: lab-shaped flows make a row every 8 records, and inserts of 12,500
        // rows (100,000 records) spent more on parts and merges than on the rows (docs/PERFORMANCE.md).
        // Records that make almost no row (a burst of NEW, a table dump) are still cut every 100,000,
        // as before: the position a long burst's checkpoints save moves on as it did.
        const rows = this.pipeline.pendingRows;
        if (b.count >= this.maxBatch || rows >= this.maxRows || (b.count >= ROWLESS_RECORDS && rows * 100 < b.count)) await this.cut(cursor);
      }
      // not in the middle of a burst (records waiting here or upstream), unless it is long overdue: a
      // checkpoint waits for the inserts in flight, which would hold up the burst, and costs the whole state
      const now = Date.now();
      const quiet = () => cursor.waiting === 0 && this.upstream() < UPSTREAM_BACKLOG; // asked only when due: a socket call
      if (cursor.due(now) && (quiet() || cursor.due(now - 5 * (this.o.checkpoint?.everyMs ?? 0)))) await this.checkpoint(cursor);
    }
    if (flush) await this.cut(cursor);
  }

  /**
   * The batch's rows into an insert, once fewer than `inserts` are in flight: the engine's tick
   * first (flows timed out, refreshed), so its rows go with the records that moved event time.
   */
  private async cut(cursor: PartitionCursor<CtpipeRecord>): Promise<void> {
    const b = this.batch;
    if (!b) return;
    if (this.inflight.length >= this.inserts) await this.inflight.shift();
    this.batch = undefined;
    this.pipeline.tick();
    const rows = this.pipeline.takeRows();
    const ch: Chunk<CtpipeRecord> = { first: b.first, last: b.last, records: [], token: `${this.input}:${b.first}-${b.last}`, log: true, stored: false };
    const write = this.pipeline.writeRows(rows, ch.token, { origin: { input: 'run', partition: 0, offset: b.first }, shouldStop: () => this.stopping });
    this.inflight.push(this.settle(write.then((ok) => {
      if (!ok) this.countUnstored(b, TABLES.reduce((n, t) => n + rows[t].length, 0)); // the tables not written keep their rows
      return ok;
    }), ch, b.count, cursor));
  }

  /** Saves the state once every chunk it has applied is stored (no insert in flight). */
  private async checkpoint(cursor: PartitionCursor<CtpipeRecord>): Promise<void> {
    const cp = this.o.checkpoint;
    if (!cp) return;
    const tw = Date.now();
    await this.cut(cursor); // the state holds every record through the engine: their rows are stored first
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failure || this.aborted || this.unstored.records) return; // a state ahead of what is stored is never saved
    const at = cursor.applied;
    const t0 = Date.now();
    // the version orders checkpoints across runs, whose seq numbers start again at 1
    const chunks = await saveState(this.pipeline);
    const t1 = Date.now();
    try {
      await retrying(() => cp.store.saveCheckpoint(cp.key, at, chunks, t0), { shouldStop: () => this.stopping });
    } catch (e) {
      if (this.aborted && isCtpipeError(e, 'STORE_UNAVAILABLE')) return; // given up: the previous checkpoint stays
      if (!isCtpipeError(e, 'STORE_SCHEMA')) throw e;
      this.fail(e); // a checkpoint table gone: like an insert that cannot run
      return;
    }
    cursor.checkpointed(at, Date.now(), Date.now() - t0);
    this.o.log?.info({ seq: at, open: this.pipeline.engine.openCount, wait_ms: t0 - tw, snapshot_ms: t1 - t0, store_ms: Date.now() - t1, bytes: chunks.reduce((n, c) => n + c.length, 0) }, 'state checkpointed');
  }

  private settle(write: Promise<boolean>, ch: Chunk<CtpipeRecord>, count: number, cursor: PartitionCursor<CtpipeRecord>): Promise<void> {
    const before = this.written;
    this.written = write.then(
      async (ok) => {
        await before;
        this.processed += count;
        if (ok) cursor.done(ch);
      },
      (e: unknown) => {
        if (!isCtpipeError(e, 'STORE_SCHEMA')) throw e;
        this.fail(e);
      },
    );
    return this.written;
  }

  private countUnstored(b: Batch, rows: number): void {
    if (!b.count) return;
    const u = this.unstored;
    if (u.records === 0) u.first_seq = b.first;
    u.first_seq = Math.min(u.first_seq, b.first);
    u.last_seq = Math.max(u.last_seq, b.last);
    u.records += b.count;
    u.rows += rows;
  }

  private countUnstoredRecords(records: readonly CtpipeRecord[]): void {
    if (records.length) this.countUnstored({ first: records[0]!.seq, last: records[records.length - 1]!.seq, count: records.length }, 0);
  }

  /**
   * Stop waiting for ClickHouse (a second signal): inserts and checkpoint give up at their next
   * failure, records not yet processed are left; `close()` then counts them in `unstored`.
   */
  abort(): void {
    this.aborted = true;
    this.stopping = true;
    this.roomMaybe();
  }

  async flush(): Promise<void> {
    this.kick(true);
    await this.running;
    await Promise.all(this.inflight).catch((e: unknown) => this.fail(e));
    this.inflight = [];
  }

  /**
   * Final flush; then the state is saved (with `checkpoint`), or else the flows still open get a
   * row so they are visible after a stop.
   */
  async close(): Promise<void> {
    const t0 = Date.now();
    await this.flush();
    // the collector has stopped: a loss still to report goes in behind everything
    if (!this.aborted && this.reportDropped()) await this.flush();
    if (this.failure || this.aborted) {
      // records never processed (the abort, or writing stopped by a schema failure) are not stored either
      // through the engine and not handed to an insert: their rows are not stored either
      if (this.batch) {
        this.pipeline.tick();
        const rows = this.pipeline.takeRows();
        this.countUnstored(this.batch, TABLES.reduce((n, t) => n + rows[t].length, 0));
        this.batch = undefined;
      }
      this.countUnstoredRecords(this.cursor?.take(true).flatMap((c) => c.records) ?? []);
      const d = this.dropping; // dropped past the backlog bound, and not yet reported
      if (d.count) {
        const u = this.unstored;
        u.first_seq = u.records ? Math.min(u.first_seq, d.first) : d.first;
        u.last_seq = Math.max(u.last_seq, d.last);
        u.records += d.count;
      }
      this.stopping = true;
      return;
    }
    const flushed = Date.now();
    // Open flows get a row, so what a run saw can be queried after its stop (their later rows have
    // more events, so a higher version). A run that keeps its state needs none: past the bound its
    // stop stays quick, and long-lived flows show through refresh rows.
    if (!this.o.checkpoint || this.pipeline.engine.openCount <= OPEN_ROWS_AT_STOP) {
      this.pipeline.flushOpen();
      await this.pipeline.write(`final:${Date.now()}`).catch((e: unknown) => this.fail(e));
    }
    if (this.o.checkpoint) {
      if (this.cursor?.due(Infinity)) await this.checkpoint(this.cursor);
      this.o.log?.info({ flush_ms: flushed - t0, checkpoint_ms: Date.now() - flushed, open: this.pipeline.engine.openCount }, 'written what was left and saved the state');
    }
    this.stopping = true;
  }
}
