/**
 * A recording replayed straight into a store (`ctpipe replay FILE --to store`), effectively once
 * as the Kafka consumer is: the file is one input, named by its SHA-256, positions are record
 * indexes in it. Batches are cut by the records alone (at most `maxRecords`, or where the recorded
 * time moves a second past the batch's first record), so any replay of the file, at any speed,
 * cuts the same batches and inserts them under the same tokens. A checkpoint (state + last index)
 * is stored every `checkpointMs` and at the end: a second replay of the file skips everything it
 * covers and adds nothing; a replay that was stopped resumes where its checkpoint was.
 */
import type { CtpipeRecord } from '../contract/records.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointKey } from './clickhouse/checkpoints.js';
import type { Pipeline } from './pipeline.js';
import type { Store } from './clickhouse/store.js';

export const REPLAY_GROUP = 'ctpipe-replay';

export interface FileReplayOptions {
  store: Store;
  db: string;
  pipeline: Pipeline;
  /** SHA-256 of the file, hex. */
  digest: string;
  maxRecords?: number;
  checkpointMs?: number;
}

const nsOf = (r: CtpipeRecord) => r.sec * 1e9 + r.nsec;

export class FileReplay {
  private readonly key: CheckpointKey;
  private batch: CtpipeRecord[] = [];
  private first = 0;
  /** Index of the last record whose rows are stored (-1: none). */
  applied = -1;
  private checkpointed = -1;
  private checkpointedAt = Date.now();
  skipped = 0;
  written = 0;

  constructor(private readonly o: FileReplayOptions) {
    this.key = { db: o.db, group: REPLAY_GROUP, topic: `file:${o.digest}`, partition: 0 };
  }

  /** Restores the file's checkpoint; returns the index replay resumes after (-1: from the start). */
  async resume(): Promise<number> {
    const cp = await loadCheckpoint(this.o.store, this.key);
    if (cp) {
      this.o.pipeline.importState(cp.state);
      this.applied = this.checkpointed = cp.offset;
    }
    return this.applied;
  }

  /** Record `index` of the file (indexes arrive in order). */
  async push(r: CtpipeRecord, index: number): Promise<void> {
    if (index <= this.applied) {
      this.skipped++;
      return;
    }
    const head = this.batch[0];
    if (head && (this.batch.length >= (this.o.maxRecords ?? 5000) || nsOf(r) - nsOf(head) >= 1e9)) await this.cut();
    if (!this.batch.length) this.first = index;
    this.batch.push(r);
  }

  private async cut(): Promise<void> {
    if (!this.batch.length) return;
    const last = this.first + this.batch.length - 1;
    this.o.pipeline.process(this.batch);
    await this.o.pipeline.write(`replay:${this.o.digest}:${this.first}-${last}`);
    this.written += this.batch.length;
    this.batch = [];
    this.applied = last;
    if (Date.now() - this.checkpointedAt >= (this.o.checkpointMs ?? 10_000)) await this.checkpoint();
  }

  private async checkpoint(): Promise<void> {
    if (this.applied > this.checkpointed) await saveCheckpoint(this.o.store, this.key, this.applied, this.o.pipeline.exportState());
    this.checkpointed = this.applied;
    this.checkpointedAt = Date.now();
  }

  /** The last batch, the checkpoint, then rows for the flows still open at the file's end. */
  async finish(): Promise<void> {
    await this.cut();
    await this.checkpoint();
    this.o.pipeline.flushOpen();
    await this.o.pipeline.write(`replay:${this.o.digest}:open-after-${this.applied}`);
  }
}
