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

/** Where a restore's time went (ms): opening the snapshot (its JSON sections inflated), then applying it on the event loop. */
export interface RestoreTimes {
  openMs: number;
  applyMs: number;
}

/** Restores `chunks` into a fresh pipeline. */
export async function restoreState(p: Pipeline, chunks: readonly Buffer[]): Promise<RestoreTimes> {
  const t0 = performance.now();
  if (!isSnapshot(chunks)) {
    p.importLegacy(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as LegacyState);
    return { openMs: 0, applyMs: Math.round(performance.now() - t0) };
  }
  const r = await SnapshotReader.open(chunks);
  const t1 = performance.now();
  p.restore(r);
  return { openMs: Math.round(t1 - t0), applyMs: Math.round(performance.now() - t1) };
}
