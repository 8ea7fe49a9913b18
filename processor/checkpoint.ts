/**
 * A pipeline's state as a checkpoint stores it: a binary snapshot in chunks (snapshot.ts). A
 * checkpoint written before snapshots (one chunk of gzip JSON) still loads.
 */
import { gunzipSync } from 'node:zlib';
import type { LegacyState, Pipeline } from './pipeline.js';
import { isSnapshot, SnapshotReader, SnapshotWriter } from './snapshot.js';

export async function saveState(p: Pipeline): Promise<Buffer[]> {
  const w = new SnapshotWriter();
  await p.save(w);
  return w.finish();
}

/** Restores `chunks` into a fresh pipeline. */
export async function restoreState(p: Pipeline, chunks: readonly Buffer[]): Promise<void> {
  if (isSnapshot(chunks)) p.restore(await SnapshotReader.open(chunks));
  else p.importLegacy(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as LegacyState);
}
