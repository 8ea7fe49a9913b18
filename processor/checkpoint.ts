/**
 * A pipeline's state as a checkpoint stores it: JSON, gzip. The store keeps the bytes with the
 * position of the last input they reflect (Store.saveCheckpoint).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { PipelineState } from './pipeline.js';

export function encodeState(s: PipelineState): Buffer {
  return gzipSync(JSON.stringify(s));
}

export function decodeState(b: Buffer): PipelineState {
  return JSON.parse(gunzipSync(b).toString()) as PipelineState;
}
