/** Synthetic records for tests and benchmarks (shaped like real lab events). */
import type { CtRecord } from '../../contract/records.js';

export function flowRecord(host: string, run: string, seq: number, i = seq): CtRecord {
  return {
    type: i % 3 === 0 ? 'destroy' : i % 3 === 1 ? 'new' : 'update',
    host, run, seq, sec: 1_795_000_000 + Math.floor(i / 1000), nsec: (i * 7919) % 1_000_000_000,
    id: (i * 2654435761) >>> 0, family: 'ipv4', proto: 6,
    orig: { src: `198.51.100.${i % 250}`, dst: '203.0.113.2', proto: 6, sport: 30000 + (i % 30000), dport: 443 },
    reply: { src: '203.0.113.2', dst: `198.51.100.${i % 250}`, proto: 6, sport: 443, dport: 30000 + (i % 30000) },
    status: 0x0e, tcp_state: 3, timeout: 432000,
    ...(i % 3 === 0 ? { counters: { orig: { packets: 10, bytes: 1200 + i }, reply: { packets: 8, bytes: 9000 } } } : {}),
  };
}

export function makeRecords(host: string, run: string, n: number, firstSeq = 1): CtRecord[] {
  const out: CtRecord[] = [];
  for (let i = 0; i < n; i++) out.push(flowRecord(host, run, firstSeq + i));
  return out;
}
