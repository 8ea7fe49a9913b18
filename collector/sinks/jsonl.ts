/** `--output jsonl`: one JSON object per line (contract/json.ts), buffered, honouring back-pressure. */
import type { Writable } from 'node:stream';
import { toJsonLine } from '../../contract/json.js';
import type { CtpipeRecord } from '../../contract/records.js';
import type { RecordSink } from '../../contract/sink.js';

export class JsonlSink implements RecordSink {
  private pending: string[] = [];
  private scheduled = false;
  private waiting: Promise<void> = Promise.resolve();

  constructor(private readonly out: Writable) {}

  write(r: CtpipeRecord): void {
    this.pending.push(toJsonLine(r));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    if (!this.out.write(text)) {
      this.waiting = new Promise((resolve) => this.out.once('drain', resolve));
    }
  }

  async flush(): Promise<void> {
    this.drain();
    await this.waiting;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
