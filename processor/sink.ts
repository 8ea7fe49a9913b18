/**
 * The in-memory link of `ctpipe run`: the collector writes records here instead of to Kafka, and
 * they go through the processor pipeline in batches, at least every `flushMs`. A batch's rows are
 * inserted under a token naming its (host, run, seq range); the next batch goes through the engine
 * meanwhile (rows carry versions and tokens, so the order in which inserts finish does not matter).
 */
import type { RecordSink } from '../collector/sinks/sink.js';
import type { CtpipeRecord } from '../contract/records.js';
import type { Pipeline } from './pipeline.js';

export class PipelineSink implements RecordSink {
  private pending: CtpipeRecord[] = [];
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private inflight: Promise<void>[] = [];
  private stopping = false;
  processed = 0;

  constructor(private readonly pipeline: Pipeline, private readonly flushMs: number, private readonly processor = 'run', private readonly maxBatch = 200_000, private readonly inserts = 2) {}

  write(r: CtpipeRecord): void {
    this.pending.push(r);
    if (this.pending.length >= this.maxBatch) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.flushMs);
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
      this.pipeline.noteActivity(this.processor, -1, this.pending.length);
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
    this.pipeline.flushOpen();
    await this.pipeline.write(`final:${Date.now()}`);
    this.stopping = true;
  }
}
