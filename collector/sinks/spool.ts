/**
 * The disk spool: where sealed batches (Kafka records and their metadata) wait while Kafka is
 * unreachable and the memory buffer is full. Segments are append-only files read back oldest
 * first, so the order of a host's records is kept across outages and collector restarts.
 *
 *   segment file: spool-<16-digit counter>.seg, a sequence of frames (spool-frames.ts)
 *
 * A torn tail (crash mid-write) fails its length or CRC check and is discarded with a count.
 * Writes that fail (disk full, quota) are reported to the caller, which counts the records lost.
 */
import { closeSync, constants, existsSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { privateDir } from '../../common/files.js';
import type { SealedBatch } from './sealed.js';
import { decodeFrames, encodeFrames } from './spool-frames.js';

interface Segment {
  file: string;
  bytes: number;
}

export class Spool {
  private segments: Segment[] = [];
  private writeFd: number | undefined;
  private writeSeg: Segment | undefined;
  private counter = 0;
  /** Frames discarded as torn or corrupt when reading back. */
  corrupt = 0;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly segmentBytes = 16 << 20,
  ) {
    try {
      privateDir(dir); // 0700: the spool holds the host's records
      for (const f of readdirSync(dir).filter((n) => /^spool-\d{16}\.seg$/.test(n)).sort()) {
        const file = path.join(dir, f);
        this.segments.push({ file, bytes: statSync(file).size });
        this.counter = Math.max(this.counter, Number(f.slice(6, 22)));
      }
    } catch (e) {
      throw new CtpipeError('SPOOL_IO', `spool directory ${dir}: ${errorMessage(e)}`, { cause: e });
    }
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.bytes;
    return n;
  }

  get empty(): boolean {
    return this.segments.length === 0;
  }

  /** Appends batches; throws SPOOL_IO when the bound is reached or the disk refuses. */
  append(batches: readonly SealedBatch[]): void {
    const frames = encodeFrames(batches);
    if (this.bytes + frames.length > this.maxBytes) throw new CtpipeError('SPOOL_IO', `spool full (${this.maxBytes} bytes)`);
    if (!this.writeSeg || this.writeSeg.bytes >= this.segmentBytes) this.rotate();
    const before = this.writeSeg!.bytes;
    try {
      let written = 0;
      while (written < frames.length) written += writeSync(this.writeFd!, frames, written);
      fsyncSync(this.writeFd!);
    } catch (e) {
      // A disk that fills mid-write leaves part of a frame: cut the segment back to its last whole
      // frame, so frames appended once there is room again are read back too.
      try {
        ftruncateSync(this.writeFd!, before);
      } catch {
        // the reader still drops a torn tail by its CRC
      }
      throw new CtpipeError('SPOOL_IO', `writing the spool failed: ${errorMessage(e)}`, { cause: e });
    } finally {
      this.writeSeg!.bytes = statSafe(this.writeSeg!.file);
    }
  }

  private rotate(): void {
    this.closeWriter();
    const file = path.join(this.dir, `spool-${String(++this.counter).padStart(16, '0')}.seg`);
    try {
      this.writeFd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new CtpipeError('SPOOL_IO', `creating ${file}: ${errorMessage(e)}`, { cause: e });
    }
    this.writeSeg = { file, bytes: 0 };
    this.segments.push(this.writeSeg);
  }

  private closeWriter(): void {
    if (this.writeFd !== undefined) closeSync(this.writeFd);
    this.writeFd = undefined;
    this.writeSeg = undefined;
  }

  /** The oldest segment's batches, or undefined when the spool is empty. */
  peek(): { batches: SealedBatch[]; segment: string } | undefined {
    const seg = this.segments[0];
    if (!seg) return undefined;
    if (seg === this.writeSeg) this.closeWriter();
    const data = existsSync(seg.file) ? readFileSync(seg.file) : Buffer.alloc(0);
    const { batches, whole } = decodeFrames(data);
    // Whatever follows the last good frame is a torn or corrupt tail: discarded, counted.
    if (!whole) this.corrupt++;
    return { batches, segment: seg.file };
  }

  /** Removes the oldest segment once all its records are delivered. */
  commit(segment: string): void {
    const i = this.segments.findIndex((s) => s.file === segment);
    if (i < 0) return;
    if (this.segments[i] === this.writeSeg) this.closeWriter();
    this.segments.splice(i, 1);
    try {
      unlinkSync(segment);
    } catch {
      // already gone
    }
  }

  close(): void {
    this.closeWriter();
  }
}

function statSafe(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
