/**
 * Processor checkpoints in `processor_checkpoints`: a pipeline's state (gzip, base64) with the
 * position of the last input it reflects, per (group, topic, partition). The consumer keys them
 * by its Kafka group and partition; `ctpipe replay --to store` by `ctpipe-replay` and the file's digest.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Pipeline } from '../pipeline.js';
import type { Store } from './store.js';

export interface CheckpointKey {
  db: string;
  group: string;
  topic: string;
  partition: number;
}

type State = ReturnType<Pipeline['exportState']>;

/** The stored position and state, or undefined when there is none. */
export async function loadCheckpoint(store: Store, k: CheckpointKey): Promise<{ offset: number; state: State } | undefined> {
  const rows = await (await store.query({
    query: `SELECT offset, state FROM ${k.db}.processor_checkpoints FINAL WHERE group_id = {g:String} AND topic = {t:String} AND partition = {p:UInt32}`,
    query_params: { g: k.group, t: k.topic, p: k.partition }, format: 'JSONEachRow',
  })).json<{ offset: string; state: string }>();
  const cp = rows[0];
  return cp && { offset: Number(cp.offset), state: JSON.parse(gunzipSync(Buffer.from(cp.state, 'base64')).toString()) as State };
}

export async function saveCheckpoint(store: Store, k: CheckpointKey, offset: number, state: State): Promise<void> {
  await store.insert({
    table: `${k.db}.processor_checkpoints`,
    values: [{ group_id: k.group, topic: k.topic, partition: k.partition, offset, state: gzipSync(JSON.stringify(state)).toString('base64'), version: offset + 1 }],
    format: 'JSONEachRow',
  });
}
