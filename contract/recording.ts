/**
 * Recording files (`ctpipe record`, read by `ctpipe replay`): the collector's stream as it left the
 * collector, host, run and sequence numbers kept. Two forms, told apart by the first bytes:
 *
 *   binary  := MAGIC frame*
 *   MAGIC   := "CTPREC01"                       (8 bytes)
 *   frame   := length:u32be batch               (batch: `length` bytes of one ctpipe.v1.Batch,
 *                                                records of one host and run, as on Kafka)
 *   jsonl   := (json-object "\n")*              (contract/json.ts, one record per line)
 *
 * The binary form (uncompressed protobuf) is about a seventh of the JSON lines form. A frame cut
 * short (a recorder killed mid-write) or a batch that does not decode is reported with its byte
 * offset and skipped; the records around it are kept.
 */
import { decodeBatch, encodeBatch, type DecodedBatch } from './proto/batch.js';
import { parseJsonLine, toJsonLine } from './json.js';
import { DEFAULT_BATCH_LIMITS, type BatchLimits, type RecordLimits } from './validate.js';
import type { CtpipeRecord } from './records.js';
import { CtpipeError, errorMessage } from '../common/errors.js';

export const MAGIC = Buffer.from('CTPREC01');
export type RecordingFormat = 'binary' | 'jsonl';
/** Frames larger than this are not ctpipe's (the recorder writes at most 1,000 records per frame). */
const MAX_FRAME = 64 << 20;

export function formatForPath(file: string): RecordingFormat {
  return /\.(jsonl|json|ndjson)$/i.test(file) ? 'jsonl' : 'binary';
}

/** One frame: records of one host and run with consecutive sequence numbers. */
export function encodeFrame(records: readonly CtpipeRecord[]): Buffer {
  const batch = encodeBatch(records);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(batch.length);
  return Buffer.concat([head, batch]);
}

export function encodeJsonLines(records: readonly CtpipeRecord[]): Buffer {
  return Buffer.from(`${records.map(toJsonLine).join('\n')}\n`);
}

export type RecordingItem =
  | { records: CtpipeRecord[]; bytes: number }
  | { bad: string; where: string; bytes: number };

/** Bytes arrived and not yet taken, as the chunks they came in: nothing is copied until taken. */
class Pending {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** The first `n` bytes (n <= length), removed. */
  take(n: number): Buffer {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) {
        parts.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        parts.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.length -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** The first `n` bytes (n <= length), left in place. */
  peek(n: number): Buffer {
    if (this.chunks[0] && this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks, this.length).subarray(0, n);
  }

  clear(): void {
    this.chunks = [];
    this.length = 0;
  }
}

export interface ReadOptions {
  /** Bounds on a frame's batch and on a line's record (validate.ts). */
  limits?: BatchLimits;
}

/**
 * Reads a recording from byte chunks: yields the records of each frame (binary) or line (JSON
 * lines), or what was wrong and where. `bytes` is how far into the input the item ends. Every
 * record is checked against the contract (validate.ts); one that breaks it is reported, its
 * neighbours kept. A line longer than `limits.maxBytes` is reported and skipped unread, so a file
 * without newlines costs bounded memory and linear time.
 */
export async function* readRecording(chunks: AsyncIterable<Buffer>, o: ReadOptions = {}): AsyncGenerator<RecordingItem> {
  const limits = o.limits ?? DEFAULT_BATCH_LIMITS;
  const buf = new Pending();
  let consumed = 0; // bytes of the input before the pending ones
  let format: RecordingFormat | undefined;
  let line = 0;
  /** Skipping the rest of a line too long to read (its first byte's offset), or -1. */
  let skipping = -1;
  const take = (n: number) => {
    consumed += n;
    return buf.take(n);
  };
  for await (const chunk of chunks) {
    if (format === undefined) {
      buf.push(chunk);
      const head = buf.peek(Math.min(buf.length, MAGIC.length));
      if (head.length < MAGIC.length && MAGIC.subarray(0, head.length).equals(head)) continue;
      format = head.equals(MAGIC) ? 'binary' : 'jsonl';
      if (format === 'binary') take(MAGIC.length);
      if (format === 'jsonl') {
        // the chunks so far go through the line splitter below
        const all = take(buf.length);
        consumed -= all.length;
        yield* lines(all);
        continue;
      }
    } else if (format === 'binary') buf.push(chunk);
    if (format === 'binary') {
      while (buf.length >= 4) {
        const len = buf.peek(4).readUInt32BE(0);
        if (len === 0 || len > MAX_FRAME) {
          yield { bad: `frame length ${len} is not a ctpipe frame; the rest of the file is unreadable`, where: `byte ${consumed}`, bytes: consumed };
          return;
        }
        if (buf.length < 4 + len) break;
        const at = consumed;
        take(4);
        const frame = take(len);
        yield* frameItems(frame, at, consumed, limits);
      }
    } else {
      yield* lines(chunk);
    }
  }
  if (format === 'binary' && buf.length) yield { bad: `a frame cut short (${buf.length} bytes at the end)`, where: `byte ${consumed}`, bytes: consumed + buf.length };
  if (format === 'jsonl' && skipping >= 0) yield tooLong(line + 1, consumed);
  else if (format === 'jsonl' && buf.length) yield* jsonLine(take(buf.length).toString('utf8'), line + 1, consumed, limits);

  function tooLong(n: number, bytes: number): RecordingItem {
    return { bad: `a line longer than ${limits.maxBytes} bytes (process.max_batch_bytes); skipped unread`, where: `line ${n}`, bytes };
  }

  // A chunk of JSON lines: only the new bytes are searched for a newline, so a long line costs linear time.
  function* lines(chunk: Buffer): Generator<RecordingItem> {
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      line++;
      if (skipping >= 0) {
        consumed += nl + 1 - from;
        skipping = -1;
        yield tooLong(line, consumed);
      } else {
        buf.push(chunk.subarray(from, nl + 1));
        yield* jsonLine(take(buf.length).toString('utf8'), line, consumed, limits);
      }
      from = nl + 1;
    }
    const rest = chunk.subarray(from);
    if (skipping >= 0) consumed += rest.length;
    else {
      buf.push(rest);
      if (buf.length > limits.maxBytes) {
        skipping = consumed;
        consumed += buf.length;
        buf.clear();
      }
    }
  }
}

function* frameItems(frame: Buffer, at: number, end: number, limits: BatchLimits): Generator<RecordingItem> {
  let b: DecodedBatch;
  try {
    b = decodeBatch(frame, limits);
  } catch (e) {
    yield { bad: errorMessage(e), where: `byte ${at}`, bytes: end };
    return;
  }
  for (const r of b.rejected) yield { bad: `record seq ${r.seq}: ${r.reason}`, where: `byte ${at}, record ${r.index} of the frame`, bytes: end };
  yield { records: b.records, bytes: end };
}

function* jsonLine(text: string, line: number, bytes: number, limits: RecordLimits): Generator<RecordingItem> {
  if (text.trim() === '') return;
  try {
    yield { records: [parseJsonLine(text.trim(), limits)], bytes };
  } catch (e) {
    if (!(e instanceof CtpipeError)) throw e;
    yield { bad: e.message, where: `line ${line}`, bytes };
  }
}
