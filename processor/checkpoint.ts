/**
 * A pipeline's state as a checkpoint stores it: JSON, gzip, in one chunk. The store keeps the
 * chunks with the position of the last input they reflect (Store.saveCheckpoint).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { PipelineState } from './pipeline.js';

export function encodeState(s: PipelineState): Buffer[] {
  return [gzipSync(JSON.stringify(s))];
}

export function decodeState(chunks: readonly Buffer[]): PipelineState {
  return JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as PipelineState;
}
