/**
 * A checkpoint of a large state: `n` open flows (the shape of a lab flood: random IPv4 sources, UDP
 * to one port, as a start dump delivers them) saved as a binary snapshot and restored into a new
 * pipeline. Measures the save's time and its longest event-loop stall (the save yields between
 * pieces), the bytes stored per open flow and the restore's time. Part of `npm run bench -- scale`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { silentLogger } from '../common/log.js';
import type { CtRecord } from '../contract/records.js';
import { restoreState, saveState } from '../processor/checkpoint.js';
import { Pipeline } from '../processor/pipeline.js';
import type { Store } from '../processor/store.js';

export interface SnapshotResult {
  openFlows: number;
  saveMs: number;
  maxLoopDelayMs: number;
  chunks: number;
  bytesPerFlow: number;
  restoreMs: number;
}

// never called: the snapshot goes to memory, not to a store
const noStore = {} as Store;
const pipeline = () => new Pipeline({ store: noStore, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 4_000_000, refreshMs: 60_000, graceMs: 30_000 } });

export async function runSnapshot(n = 1_000_000): Promise<SnapshotResult> {
  const p = pipeline();
  let s = 7;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  let batch: CtRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const orig = { src: `${(r >>> 24) & 255}.${(r >>> 16) & 255}.${(r >>> 8) & 255}.${r & 255}`, dst: '203.0.113.2', proto: 17, sport: 1024 + (rnd() % 60000), dport: 5000 };
    batch.push({
      type: 'snapshot', host: 'lab-fw', run: 'r1', seq: i + 1, sec: 1_795_000_000 + Math.floor(i / 250_000), nsec: rnd() % 1e9, id: rnd(), family: 'ipv4', proto: 17, orig,
      reply: { src: orig.dst, dst: orig.src, proto: 17, sport: 5000, dport: orig.sport }, status: 8, timeout: 3600,
      counters: { orig: { packets: 1, bytes: 28 }, reply: { packets: 0, bytes: 0 } },
    });
    if (batch.length === 50_000 || i === n - 1) {
      p.process(batch);
      p.takeRows();
      batch = [];
    }
  }
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const t0 = performance.now();
  const chunks = await saveState(p);
  const saveMs = performance.now() - t0;
  delay.disable();
  const q = pipeline();
  const t1 = performance.now();
  await restoreState(q, chunks);
  const restoreMs = performance.now() - t1;
  if (q.engine.openCount !== p.engine.openCount) throw new Error(`restored ${q.engine.openCount} of ${p.engine.openCount} open flows`);
  return {
    openFlows: p.engine.openCount, saveMs, maxLoopDelayMs: delay.max / 1e6, chunks: chunks.length,
    bytesPerFlow: chunks.reduce((b, c) => b + c.length, 0) / p.engine.openCount, restoreMs,
  };
}
