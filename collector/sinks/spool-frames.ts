/**
 * The spool's frames: sealed batches, each with its metadata, so that nothing read back from the
 * spool has to be decoded again.
 *
 *   frame v2 := magic u32 LE 0x43545032 ("CTP2"), length u32 LE, crc32 u32 LE, body[length]
 *   body     := meta length u32 LE, meta (JSON: events, firstSeq, lastSeq, losses), value
 *   frame v1 := magic u32 LE 0x43545031 ("CTP1"), length u32 LE, crc32 u32 LE, value[length]
 *
 * v1 frames, written by collectors before the metadata existed, are still read (a spool is kept
 * across upgrades) and never written. Their metadata is derived once by decoding the batch, as the
 * publisher then did for every batch it sent or dropped: a one-time cost while an old spool drains.
 */
import { crc32 } from 'node:zlib';
import { decodeBatch } from '../../contract/proto/batch.js';
import type { LossNews } from '../../contract/stamper.js';
import { batchMeta, type BatchMeta, type SealedBatch } from './sealed.js';

const MAGIC_V1 = 0x43545031;
const MAGIC_V2 = 0x43545032;
const HEADER = 12;

/** Frames for the batches, ready to append to a segment. */
export function encodeFrames(batches: readonly SealedBatch[]): Buffer {
  const metas = batches.map((b) => Buffer.from(JSON.stringify({ events: b.events, firstSeq: b.firstSeq, lastSeq: b.lastSeq, losses: b.losses })));
  let size = 0;
  for (let i = 0; i < batches.length; i++) size += HEADER + 4 + metas[i]!.length + batches[i]!.value.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < batches.length; i++) {
    const meta = metas[i]!;
    const value = batches[i]!.value;
    const body = out.subarray(o + HEADER, o + HEADER + 4 + meta.length + value.length);
    body.writeUInt32LE(meta.length, 0);
    meta.copy(body, 4);
    value.copy(body, 4 + meta.length);
    out.writeUInt32LE(MAGIC_V2, o);
    out.writeUInt32LE(body.length, o + 4);
    out.writeUInt32LE(crc32(body), o + 8);
    o += HEADER + body.length;
  }
  return out;
}

/**
 * The batches of a segment's bytes, up to the first frame that is torn (a crash mid-write), fails
 * its CRC or does not parse; `whole` is false when anything follows the last good frame.
 */
export function decodeFrames(data: Buffer): { batches: SealedBatch[]; whole: boolean } {
  const batches: SealedBatch[] = [];
  let o = 0;
  while (o + HEADER <= data.length) {
    const magic = data.readUInt32LE(o);
    const len = data.readUInt32LE(o + 4);
    if ((magic !== MAGIC_V2 && magic !== MAGIC_V1) || o + HEADER + len > data.length) break;
    const body = data.subarray(o + HEADER, o + HEADER + len);
    if (crc32(body) !== data.readUInt32LE(o + 8)) break;
    const batch = magic === MAGIC_V2 ? readV2(body) : readV1(body);
    if (!batch) break;
    batches.push(batch);
    o += HEADER + len;
  }
  return { batches, whole: o === data.length };
}

function readV2(body: Buffer): SealedBatch | undefined {
  if (body.length < 4) return undefined;
  const metaLen = body.readUInt32LE(0);
  if (4 + metaLen > body.length) return undefined;
  const meta = parseMeta(body.subarray(4, 4 + metaLen));
  return meta && { value: Buffer.from(body.subarray(4 + metaLen)), ...meta };
}

function readV1(body: Buffer): SealedBatch | undefined {
  const value = Buffer.from(body);
  try {
    return { value, ...batchMeta(decodeBatch(value).records) };
  } catch {
    return undefined; // not a batch (nor one we can count): treated as a corrupt frame
  }
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isOptNumber = (v: unknown): v is number | undefined => v === undefined || isNumber(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The metadata of a v2 frame; undefined when it is not what encodeFrames writes. */
function parseMeta(bytes: Buffer): BatchMeta | undefined {
  let m: unknown;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(m) || !isNumber(m.events) || !isNumber(m.firstSeq) || !isNumber(m.lastSeq) || !Array.isArray(m.losses)) return undefined;
  const losses: LossNews[] = [];
  for (const l of m.losses as unknown[]) {
    if (!isObject(l) || typeof l.reason !== 'string' || typeof l.source !== 'string' || !isNumber(l.count)) return undefined;
    const { first_seq, last_seq } = l;
    if (!isOptNumber(first_seq) || !isOptNumber(last_seq)) return undefined;
    // the reason is taken as written, as the batch decoder takes a loss record's
    losses.push({ reason: l.reason as LossNews['reason'], count: l.count, source: l.source, first_seq, last_seq });
  }
  return { events: m.events, firstSeq: m.firstSeq, lastSeq: m.lastSeq, losses };
}

