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
import { decodeBatch, encodeBatch } from './proto/batch.js';
import { fromJsonLine, toJsonLine } from './json.js';
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

/**
 * Reads a recording from byte chunks: yields the records of each frame (binary) or line (JSON
 * lines), or what was wrong and where. `bytes` is how far into the input the item ends.
 */
export async function* readRecording(chunks: AsyncIterable<Buffer>): AsyncGenerator<RecordingItem> {
  let buf: Buffer = Buffer.alloc(0);
  let consumed = 0; // bytes of the input before buf[0]
  let format: RecordingFormat | undefined;
  let line = 0;
  const take = (n: number) => {
    const head = buf.subarray(0, n);
    buf = buf.subarray(n);
    consumed += n;
    return head;
  };
  for await (const chunk of chunks) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (format === undefined) {
      if (buf.length < MAGIC.length && MAGIC.subarray(0, buf.length).equals(buf)) continue;
      format = buf.subarray(0, MAGIC.length).equals(MAGIC) ? 'binary' : 'jsonl';
      if (format === 'binary') take(MAGIC.length);
    }
    if (format === 'binary') {
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len === 0 || len > MAX_FRAME) {
          yield { bad: `frame length ${len} is not a ctpipe frame; the rest of the file is unreadable`, where: `byte ${consumed}`, bytes: consumed };
          return;
        }
        if (buf.length < 4 + len) break;
        const at = consumed;
        take(4);
        const frame = take(len);
        try {
          yield { records: decodeBatch(frame).records, bytes: consumed };
        } catch (e) {
          yield { bad: errorMessage(e), where: `byte ${at}`, bytes: consumed };
        }
      }
    } else {
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
        line++;
        yield* jsonLine(take(nl + 1).toString('utf8'), line, consumed);
      }
    }
  }
  if (format === 'binary' && buf.length) yield { bad: `a frame cut short (${buf.length} bytes at the end)`, where: `byte ${consumed}`, bytes: consumed + buf.length };
  if (format === 'jsonl' && buf.length) yield* jsonLine(buf.toString('utf8'), line + 1, consumed + buf.length);
}

function* jsonLine(text: string, line: number, bytes: number): Generator<RecordingItem> {
  if (text.trim() === '') return;
  try {
    yield { records: [fromJsonLine(text.trim())], bytes };
  } catch (e) {
    if (!(e instanceof CtpipeError)) throw e;
    yield { bad: e.message, where: `line ${line}`, bytes };
  }
}
