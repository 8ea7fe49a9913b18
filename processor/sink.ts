/**
 * The in-memory link of `ctpipe run`: the collector writes records here instead of to Kafka, and
 * they go through the processor pipeline in batches, at least every `flushMs`. A batch's rows are
 * inserted under a token naming its (host, run, seq range); the next batch goes through the engine
 * meanwhile (rows carry versions and tokens, so the order in which inserts finish does not matter).
 *
 * While ClickHouse refuses inserts, records wait here: at most `maxBacklog` of them (memory is the
 * only buffer of `ctpipe run`). Past it new records are dropped, and once there is room again the
 * dropped seq range goes into the stream as a `buffer_full` loss record, as the Kafka publisher
 * reports what it had to drop.
 */
import type { RecordSink } from '../contract/sink.js';
import type { Logger } from '../common/log.js';
import type { CtpipeRecord } from '../contract/records.js';
import type { Stamper } from '../contract/stamper.js';
import type { Pipeline } from './pipeline.js';

export interface PipelineSinkOptions {
  flushMs: number;
  /** Names this process in processor_stats. */
  processor?: string;
  maxBatch?: number;
  /** Inserts in flight at most. */
  inserts?: number;
  /** Records waiting at most (unbounded when absent). */
  maxBacklog?: number;
  /** Stamps the loss records this sink puts into the stream (the collector's Stamper). */
  stamper?: Stamper;
  log?: Logger;
}

export class PipelineSink implements RecordSink {
  private pending: CtpipeRecord[] = [];
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private inflight: Promise<void>[] = [];
  private stopping = false;
  /** Records dropped since the backlog filled, and their seq range. */
  private dropping = { count: 0, first: 0, last: 0 };
  processed = 0;
  dropped = 0;
  private readonly maxBatch: number;
  private readonly maxBacklog: number;
  private readonly inserts: number;

  constructor(private readonly pipeline: Pipeline, private readonly o: PipelineSinkOptions) {
    this.maxBatch = o.maxBatch ?? 200_000;
    this.maxBacklog = o.maxBacklog ?? Infinity;
    this.inserts = o.inserts ?? 2;
  }

  /** Records waiting to go through the pipeline. */
  get backlog(): number {
    return this.pending.length;
  }

  write(r: CtpipeRecord): void {
    // loss records always get in: they carry the news of what was dropped
    if (this.pending.length >= this.maxBacklog && r.type !== 'loss') {
      if (this.dropping.count++ === 0) {
        this.dropping.first = r.seq;
        this.o.log?.error({ backlog: this.pending.length }, 'ClickHouse is not taking rows and the backlog is full: dropping records');
      }
      this.dropping.last = r.seq;
      this.dropped++;
      return;
    }
    this.pending.push(r);
    this.reportDropped();
    if (this.pending.length >= this.maxBatch) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.o.flushMs);
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

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.running.then(() => this.drain());
  }

  // Engine and inserts overlap: while ClickHouse (chDB's threads, or a server) inserts earlier
  // batches' rows, this thread runs the next batch through the engine. Up to `inserts` in flight.
  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.pipeline.process(batch);
      this.pipeline.noteActivity(this.o.processor ?? 'run', -1, this.pending.length);
      const rows = this.pipeline.takeRows();
      const first = batch[0]!;
      const last = batch[batch.length - 1]!;
      if (this.inflight.length >= this.inserts) await this.inflight.shift();
      this.inflight.push(this.pipeline.writeRows(rows, `${first.host}:${first.run}:${first.seq}-${last.seq}`, () => this.stopping)
        .then(() => void (this.processed += batch.length)));
    }
  }

  async flush(): Promise<void> {
    this.kick();
    await this.running;
    await Promise.all(this.inflight);
    this.inflight = [];
  }

  /** Final flush, with rows for the flows still open so they are visible after a stop. */
  async close(): Promise<void> {
    await this.flush();
    // the collector has stopped: a loss still to report goes in behind everything
    if (this.reportDropped()) await this.flush();
    this.pipeline.flushOpen();
    await this.pipeline.write(`final:${Date.now()}`);
    this.stopping = true;
  }
}
