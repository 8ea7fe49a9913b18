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

/** Whole connections: NEW, UPDATE (ESTABLISHED), DESTROY with counters, for `conns` connections of one host. */
export function lifecycleRecords(host: string, run: string, conns: number, octet = 1): CtRecord[] {
  const out: CtRecord[] = [];
  for (let c = 0; c < conns; c++) {
    const orig = { src: `198.51.100.${octet}`, dst: '203.0.113.2', proto: 6, sport: 10000 + c, dport: 443 };
    const reply = { src: orig.dst, dst: orig.src, proto: 6, sport: 443, dport: orig.sport };
    for (const [type, status, tcp_state] of [['new', 0x08, 1], ['update', 0x0e, 3], ['destroy', 0x0e, 7]] as const) {
      const seq = out.length + 1;
      out.push({
        type, host, run, seq, sec: 1_795_000_000 + Math.floor(seq / 100), nsec: (seq % 100) * 10_000_000, id: 5000 + c,
        family: 'ipv4', proto: 6, orig, reply, status, tcp_state, timeout: 120,
        ...(type === 'destroy' ? { counters: { orig: { packets: 4, bytes: 400 + c }, reply: { packets: 3, bytes: 3000 } } } : {}),
      });
    }
  }
  return out;
}
