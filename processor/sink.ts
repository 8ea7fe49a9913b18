/**
 * The in-memory link of `ctpipe run`: the collector writes records here instead of to Kafka, and
 * they go through the processor pipeline in batches, at least every `flushMs`. A batch's rows are
 * inserted under a token naming its (host, run, seq range), in input order, while the next batch
 * goes through the engine.
 */
import type { RecordSink } from '../collector/sinks/sink.js';
import type { CtpipeRecord } from '../contract/records.js';
import type { Pipeline } from './pipeline.js';

export class PipelineSink implements RecordSink {
  private pending: CtpipeRecord[] = [];
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private inflight: Promise<void> = Promise.resolve();
  private older: Promise<void> = Promise.resolve();
  private stopping = false;
  processed = 0;

  constructor(private readonly pipeline: Pipeline, private readonly flushMs: number, private readonly maxBatch = 100_000) {}

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

  // Two stages on two cores: while ClickHouse (chDB's thread, or a server) inserts one batch's rows,
  // this thread runs the next batch through the engine. One insert in flight, in input order.
  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.pipeline.process(batch);
      const rows = this.pipeline.takeRows();
      const first = batch[0]!;
      const last = batch[batch.length - 1]!;
      const prev = this.inflight;
      await this.older;
      this.older = prev;
      this.inflight = this.pipeline.writeRows(rows, `${first.host}:${first.run}:${first.seq}-${last.seq}`, () => this.stopping)
        .then(() => void (this.processed += batch.length));
    }
  }

  async flush(): Promise<void> {
    this.kick();
    await this.running;
    await this.older;
    await this.inflight;
  }

  /** Final flush, with rows for the flows still open so they are visible after a stop. */
  async close(): Promise<void> {
    await this.flush();
    this.pipeline.flushOpen();
    await this.pipeline.write(`final:${Date.now()}`);
    this.stopping = true;
  }
}
