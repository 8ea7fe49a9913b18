/**
 * What the NFLOG samples of INVALID packets say about a spike: the top sources, destinations,
 * destination ports and TCP flag combinations (each sample counts its `weight`, the packets it
 * stands for), and the likely cause where the flags allow a reading (lifecycle-anomaly.md §3.3):
 * - `backscatter`: unsolicited SYN-ACK, RST or FIN: replies to spoofed traffic, or a scan's echo;
 * - `out_of_window`: ACK or PSH-ACK segments conntrack cannot place (a window or sequence problem,
 *   often asymmetric routing: one direction of the connection bypasses this host);
 * - `invalid_flags`: flag combinations no TCP stack sends (SYN with FIN or RST, none at all);
 * - `non_tcp`: UDP, ICMP or other protocols; `unknown` when no sample came.
 */
import type { InvalidPacketRecord } from '../../contract/records.js';

export type Counts = Record<string, number>;

export interface Evidence {
  samples: number;
  packets: number;
  sources: Counts;
  destinations: Counts;
  dports: Counts;
  tcp_flags: Counts;
  non_tcp: number;
}

export const emptyEvidence = (): Evidence => ({ samples: 0, packets: 0, sources: {}, destinations: {}, dports: {}, tcp_flags: {}, non_tcp: 0 });

const add = (c: Counts, k: string, w: number) => void (c[k] = (c[k] ?? 0) + w);

export function addSample(e: Evidence, r: InvalidPacketRecord): void {
  const w = r.weight;
  e.samples++;
  e.packets += w;
  add(e.sources, r.src, w);
  add(e.destinations, r.dst, w);
  if (r.dport !== undefined) add(e.dports, String(r.dport), w);
  if (r.proto === 6) add(e.tcp_flags, r.tcp_flags || 'none', w);
  else e.non_tcp += w;
}

export function merge(into: Evidence, e: Evidence): void {
  into.samples += e.samples;
  into.packets += e.packets;
  into.non_tcp += e.non_tcp;
  for (const k of ['sources', 'destinations', 'dports', 'tcp_flags'] as const) for (const [v, n] of Object.entries(e[k])) add(into[k], v, n);
}

const top = (c: Counts, n = 5) => Object.entries(c).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n).map(([value, packets]) => ({ value, packets }));

/** What one TCP flag combination (letters in FSRPAUEC order) suggests. */
function flagCause(f: string): string | undefined {
  if (f === 'none' || (f.includes('S') && (f.includes('F') || f.includes('R')))) return 'invalid_flags';
  if (f === 'SA' || f === 'R' || f === 'RA' || f === 'F' || f === 'FA') return 'backscatter';
  if (f === 'A' || f === 'PA') return 'out_of_window';
  return undefined;
}

function cause(e: Evidence): string {
  if (e.packets === 0) return 'unknown';
  const tcp = e.packets - e.non_tcp;
  if (e.non_tcp > tcp) return 'non_tcp';
  const by: Counts = {};
  for (const [f, w] of Object.entries(e.tcp_flags)) {
    const c = flagCause(f);
    if (c) add(by, c, w);
  }
  const [best] = Object.entries(by).sort((a, b) => b[1] - a[1]);
  return best && best[1] >= tcp / 2 ? best[0] : 'unknown';
}

/** The evidence as an anomaly row's details carry it. */
export function summary(e: Evidence): Record<string, unknown> {
  return {
    samples: e.samples, sampled_packets: e.packets, likely_cause: cause(e),
    top_sources: top(e.sources), top_destinations: top(e.destinations), top_dports: top(e.dports), top_tcp_flags: top(e.tcp_flags),
  };
}
