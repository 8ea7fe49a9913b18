/**
 * A sealed batch: the encoded ctpipe.v1.Batch that goes to Kafka as one record, with what the
 * publisher needs to know of it without decoding it again: how many records it holds (sent and
 * dropped counts), its seq range (the loss record for a dropped batch) and the news of the loss
 * records inside it (reported again when the batch is dropped). The metadata travels with the
 * value through the memory queue and the disk spool.
 */
import { encodeBatch } from '../../contract/proto/batch.js';
import type { ProtoWriter } from '../../contract/proto/writer.js';
import type { CtpipeRecord } from '../../contract/records.js';
import type { LossNews } from '../../contract/stamper.js';

export interface BatchMeta {
  events: number;
  firstSeq: number;
  lastSeq: number;
  losses: LossNews[];
}

export interface SealedBatch extends BatchMeta {
  value: Buffer;
}

/** The metadata of a batch of records (at least one). */
export function batchMeta(records: readonly CtpipeRecord[]): BatchMeta {
  const losses: LossNews[] = [];
  for (const r of records) {
    if (r.type === 'loss') losses.push({ reason: r.reason, count: r.count, source: r.source, first_seq: r.first_seq, last_seq: r.last_seq });
  }
  return { events: records.length, firstSeq: records[0]!.seq, lastSeq: records[records.length - 1]!.seq, losses };
}

export function sealBatch(records: readonly CtpipeRecord[], w: ProtoWriter): SealedBatch {
  return { value: encodeBatch(records, w), ...batchMeta(records) };
}
