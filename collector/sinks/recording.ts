/**
 * `ctpipe record FILE`: the collector's records to a recording file (contract/recording.ts),
 * binary frames of up to 1,000 records or JSON lines, written as they come (what the recorder had
 * written survives a kill: at most the frame in hand is cut short, and the reader says so).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { encodeFrame, encodeJsonLines, MAGIC, type RecordingFormat } from '../../contract/recording.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { CtpipeError } from '../../common/errors.js';
import { createPrivateFile } from '../../common/files.js';
import type { RecordSink } from '../../contract/sink.js';

const FRAME_RECORDS = 1000;

export class RecordingSink implements RecordSink {
  private readonly out: WriteStream;
  private pending: CtpipeRecord[] = [];
  private scheduled = false;
  private waiting: Promise<void> = Promise.resolve();
  private failed?: Error;
  records = 0;
  bytes = 0;

  /** Creates `file` (a new file, 0600); one that cannot be created throws CONFIG_FILE. */
  constructor(readonly file: string, private readonly format: RecordingFormat) {
    // a new file, 0600: never an existing one, never through a symbolic link (common/files.ts)
    this.out = createWriteStream('', { fd: createPrivateFile(file, 'CONFIG_FILE', 'the recording') });
    this.out.on('error', (e) => (this.failed = e));
    if (format === 'binary') this.put(MAGIC);
  }

  write(r: CtpipeRecord): void {
    this.pending.push(r);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private put(b: Buffer): void {
    this.bytes += b.length;
    if (!this.out.write(b)) this.waiting = new Promise((resolve) => this.out.once('drain', resolve));
  }

  private drain(): void {
    this.scheduled = false;
    const rs = this.pending;
    this.pending = [];
    this.records += rs.length;
    if (this.format === 'jsonl') {
      if (rs.length) this.put(encodeJsonLines(rs));
      return;
    }
    // A frame holds records of one host and run with consecutive sequence numbers.
    for (let i = 0; i < rs.length;) {
      let j = i + 1;
      while (j < rs.length && j - i < FRAME_RECORDS && rs[j]!.run === rs[i]!.run && rs[j]!.host === rs[i]!.host && rs[j]!.seq === rs[j - 1]!.seq + 1) j++;
      this.put(encodeFrame(rs.slice(i, j)));
      i = j;
    }
  }

  async flush(): Promise<void> {
    this.drain();
    await this.waiting;
    if (this.failed) throw new CtpipeError('CONFIG_FILE', `writing the recording ${this.file} failed: ${this.failed.message}`);
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve) => this.out.end(resolve));
  }
}
