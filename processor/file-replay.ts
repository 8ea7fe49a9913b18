/**
 * A recording replayed straight into a store (`ctpipe replay FILE --to store`), effectively once
 * as the Kafka consumer is: the file is one input, named by its SHA-256, positions are record
 * indexes in it. The cursor (cursor.ts) cuts chunks by the records alone (at most `maxRecords`, or
 * where the recorded time moves a second past the chunk's first record), so any replay of the
 * file, at any speed, cuts the same chunks and inserts them under the same tokens. A checkpoint
 * (state + last index) is stored every `checkpointMs` and at the end: a second replay of the file
 * skips everything it covers and adds nothing; a replay that was stopped resumes where its
 * checkpoint was.
 */
import type { CtpipeRecord } from '../contract/records.js';
import { restoreState, saveState } from './checkpoint.js';
import { PartitionCursor, type Chunk } from './cursor.js';
import type { Pipeline } from './pipeline.js';
import type { InputKey, Store } from './store.js';

export const REPLAY_GROUP = 'ctpipe-replay';

export interface FileReplayOptions {
  store: Store;
  pipeline: Pipeline;
  /** SHA-256 of the file, hex. */
  digest: string;
  maxRecords?: number;
  checkpointMs?: number;
}

interface Indexed {
  r: CtpipeRecord;
  index: number;
}

const nsOf = (r: CtpipeRecord) => r.sec * 1e9 + r.nsec;

export class FileReplay {
  private readonly key: InputKey;
  private readonly cursor: PartitionCursor<Indexed>;
  skipped = 0;
  written = 0;

  constructor(private readonly o: FileReplayOptions) {
    this.key = { group: REPLAY_GROUP, topic: `file:${o.digest}`, partition: 0 };
    this.cursor = new PartitionCursor<Indexed>({
      input: `replay:${o.digest}`, position: (x) => x.index, checkpointMs: o.checkpointMs ?? 10_000,
      maxRecords: o.maxRecords ?? 5000, boundary: (a, b) => nsOf(b.r) - nsOf(a.r) >= 1e9,
    }, Date.now());
  }

  /** Index of the last record whose rows are stored (-1: none). */
  get applied(): number {
    return this.cursor.applied;
  }

  /** Restores the file's checkpoint; returns the index replay resumes after (-1: from the start). */
  async resume(): Promise<number> {
    const cp = await this.o.store.loadCheckpoint(this.key);
    if (cp) {
      await restoreState(this.o.pipeline, cp.chunks);
      this.cursor.restore(cp.offset, [], Date.now());
    }
    return this.cursor.applied;
  }

  /** Record `index` of the file (indexes arrive in order). */
  async push(r: CtpipeRecord, index: number): Promise<void> {
    if (index <= this.cursor.applied) {
      this.skipped++;
      return;
    }
    this.cursor.add([{ r, index }]);
    for (const ch of this.cursor.take(false)) await this.apply(ch);
  }

  private async apply(ch: Chunk<Indexed>): Promise<void> {
    this.o.pipeline.process(ch.records.map((x) => x.r));
    await this.o.pipeline.write(ch.token, { origin: { input: this.key.topic, partition: 0, offset: ch.first } });
    this.written += ch.records.length;
    this.cursor.done(ch);
    if (this.cursor.due(Date.now())) await this.checkpoint();
  }

  private async checkpoint(): Promise<void> {
    const at = this.cursor.applied;
    const t0 = Date.now();
    await this.o.store.saveCheckpoint(this.key, at, await saveState(this.o.pipeline), at + 1);
    this.cursor.checkpointed(at, Date.now(), Date.now() - t0);
  }

  /** The last chunk, the checkpoint, then rows for the flows still open at the file's end. */
  async finish(): Promise<void> {
    for (const ch of this.cursor.take(true)) await this.apply(ch);
    if (this.cursor.due(Infinity)) await this.checkpoint();
    this.o.pipeline.flushOpen();
    await this.o.pipeline.write(`replay:${this.o.digest}:open-after-${this.cursor.applied}`);
  }
}
