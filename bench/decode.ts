/**
 * Decode rate: captured kernel datagrams (test/fixtures/netlink) framed as the native reader hands
 * them over, decoded into records on one core (the event loop thread). A correctness guard counts
 * what was decoded: a faster wrong answer is worthless.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeDatagram, type MessageHandler } from '../collector/conntrack/decode.js';
import { forEachFrame, frameDatagrams } from '../collector/netlink/frames.js';
import { packageRoot } from '../common/paths.js';

export interface DecodeResult {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  bytesPerEvent: number;
}

export function runDecode(total = 2_000_000, rounds = 5): DecodeResult {
  const fixture = JSON.parse(readFileSync(path.join(packageRoot(), 'test/fixtures/netlink/lab-6.18.44.json'), 'utf8')) as {
    datagrams: { source: string; hex: string }[];
  };
  const events = fixture.datagrams.filter((d) => d.source === 'events').map((d) => Buffer.from(d.hex, 'hex'));
  // Chunks of 1 MiB-ish, as the reader thread delivers them.
  const perChunk = 4000;
  const list: Buffer[] = [];
  for (let i = 0; i < perChunk; i++) list.push(events[i % events.length]!);
  const chunk = frameDatagrams(list, 1_795_000_000, 0);
  const bytes = list.reduce((n, b) => n + b.length, 0);
  let decoded = 0;
  let rejected = 0;
  const h: MessageHandler = {
    ct: () => void decoded++, exp: () => void decoded++, cpuStats: () => {}, globalStats: () => {}, expStats: () => {},
    done: () => {}, kernelError: () => {}, reject: () => void rejected++,
  };
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const pass = () => forEachFrame(chunk, (off, len, sec, nsec) => decodeDatagram(chunk, dv, off, off + len, sec, nsec, h));
  for (let i = 0; i < 50; i++) pass(); // warm-up
  let best = Infinity;
  const chunks = Math.ceil(total / perChunk);
  for (let r = 0; r < rounds; r++) {
    decoded = 0;
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < chunks; c++) pass();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (decoded !== chunks * perChunk || rejected !== 0) throw new Error(`decode guard: ${decoded} decoded, ${rejected} rejected`);
    best = Math.min(best, s);
  }
  const n = chunks * perChunk;
  return { events: n, seconds: best, eventsPerSecond: n / best, bytesPerEvent: bytes / perChunk };
}
