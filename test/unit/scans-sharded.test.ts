/**
 * The scan detector keeps a window's sources in shards (processor/anomaly/scans.ts): it must judge
 * exactly as the one-map detector before it (kept as test/unit/reference/scans-one-map.ts) did,
 * the same anomaly rows for the same rows, and save the same checkpoints, through floods past
 * its bound of followed sources (thinned at every cut), scanners, late rows and restores.
 */
import { describe, expect, it } from 'vitest';
import { MAX_SOURCES, ScanDetector, type ScanState } from '../../processor/anomaly/scans.js';
import type { AnomalyRow } from '../../processor/anomaly/row.js';
import type { FlowRow } from '../../processor/lifecycle/flow-row.js';
import { mulberry32 } from '../helpers/random.js';
import { ReferenceScanDetector } from './reference/scans-one-map.js';

const O = { windowS: 60, s0: 20, rej: 20, ports: 15, hosts: 10, closeAfter: 2, lateS: 30 };
const M0 = 1_795_000_020;
/** As written when returned (a row shares its open anomaly's flow list, which grows after). */
const now = (rows: AnomalyRow[]) => JSON.parse(JSON.stringify(rows)) as AnomalyRow[];
const followed = (st: ScanState) => Math.max(0, ...st.flatMap(([, h]) => h.windows.map(([, m]) => m.length)));

/**
 * Rows of a window in phases: a pool of sources seen a few times each (so thinning has to raise its
 * cut past 1 and 2), a flood of new sources (IPv4 and IPv6) past the bound, scanners throughout,
 * some rows late, two hosts in runs.
 */
function* rows(seed: number, windows: number): Generator<FlowRow> {
  const rnd = mulberry32(seed);
  let id = 0;
  const state = ['S0', 'REJ', 'SF'];
  for (let w = 0; w < windows; w++) {
    const pool = 4000 + Math.floor(rnd() * 10_000);
    const passes = 1 + Math.floor(rnd() * 4);
    const flood = Math.floor(rnd() * 30_000);
    const n = pool * passes + flood;
    let host = 'h1';
    for (let i = 0; i < n; i++) {
      if (rnd() < 0.001) host = host === 'h1' ? 'h2' : 'h1';
      const k = i < pool * passes ? i % pool : -1;
      const x = rnd();
      const src = x < 0.02 ? `192.0.2.${Math.floor(rnd() * 4)}`
        : k >= 0 ? `10.${w}.${k >> 8}.${k & 255}`
          : rnd() < 0.3 ? `2001:db8::${(id + i).toString(16)}` : `${100 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}.${w}`;
      const late = rnd() < 0.01 ? 60 + Math.floor(rnd() * 60) : 0;
      const sec = M0 + w * 60 + Math.floor((i / n) * 60) - late;
      yield {
        host, flow_id: `f${id++}`, orig_src: src, orig_dst: `10.1.0.${Math.floor(rnd() * (x < 0.02 ? 40 : 3))}`,
        orig_dport: 1 + Math.floor(rnd() * (x < 0.02 ? 60 : 4)), conn_state: state[Math.floor(rnd() * 3)]!, end_reason: rnd() < 0.01 ? 'open' : 'destroy',
        first_seen: { sec: sec - 30, nsec: 0 }, ended_at: { sec, nsec: 0 },
      } as unknown as FlowRow;
    }
  }
}

describe('scan detector with sharded sources', () => {
  for (const seed of [1, 2, 3]) {
    it(`judges as the one-map detector did, row for row, through floods past its bound and restores (seed ${seed})`, () => {
      let d = new ScanDetector(O);
      let ref = new ReferenceScanDetector(O);
      const got: AnomalyRow[] = [];
      const want: AnomalyRow[] = [];
      let i = 0;
      let most = 0;
      let last: FlowRow | undefined;
      for (const r of rows(seed, 5)) {
        got.push(...now(d.onFlow(r)));
        want.push(...now(ref.onFlow(r)));
        if (++i % 20_000 === 0) {
          const st = d.exportState();
          expect(st).toEqual(ref.exportState());
          most = Math.max(most, followed(st));
          // a checkpoint round trip of each, from its own saved state
          d = new ScanDetector(O);
          d.importState(JSON.parse(JSON.stringify(st)) as ScanState);
          const rst = ref.exportState();
          ref = new ReferenceScanDetector(O);
          ref.importState(JSON.parse(JSON.stringify(rst)) as typeof rst);
        }
        last = r;
      }
      for (const host of ['h1', 'h2']) {
        got.push(...now(d.advance(host, { sec: last!.ended_at!.sec + 600, nsec: 0 })));
        want.push(...now(ref.advance(host, { sec: last!.ended_at!.sec + 600, nsec: 0 })));
      }
      expect(new Set(got.map((a) => a.kind))).toEqual(new Set(['handshake_failures', 'rej_storm', 'port_scan', 'host_scan']));
      expect(got).toEqual(want);
      expect(d.exportState()).toEqual(ref.exportState());
      expect(most).toBeGreaterThan(MAX_SOURCES / 2); // the bound was reached and thinned
      expect(most).toBeLessThanOrEqual(MAX_SOURCES);
    });
  }

  it('thins by raising its cut until half the bound is free, as the one-map detector did, and stays within the bound', () => {
    // 15,000 sources of three rows, then 15,000 of one: at the bound (20,000) cuts 1 and 2 keep the
    // 15,000 three-row sources, more than half the bound, so the cut goes to 4 and keeps none
    const d = new ScanDetector(O);
    const ref = new ReferenceScanDetector(O);
    const row = (src: string, k: number) => ({
      host: 'h', flow_id: `f${k}`, orig_src: src, orig_dst: '10.1.0.1', orig_dport: 53, conn_state: 'S0', end_reason: 'destroy',
      first_seen: { sec: M0 + 60, nsec: 0 }, ended_at: { sec: M0 + 61, nsec: 0 },
    }) as unknown as FlowRow;
    let k = 0;
    const sizes: number[] = [];
    for (let pass = 0; pass < 3; pass++) for (let s = 0; s < 15_000; s++) { d.onFlow(row(`10.0.${s >> 8}.${s & 255}`, k)); ref.onFlow(row(`10.0.${s >> 8}.${s & 255}`, k++)); }
    for (let s = 0; s < 15_000; s++) {
      d.onFlow(row(`172.16.${s >> 8}.${s & 255}`, k));
      ref.onFlow(row(`172.16.${s >> 8}.${s & 255}`, k++));
      if (s % 1000 === 0) sizes.push(followed(d.exportState()));
    }
    expect(d.exportState()).toEqual(ref.exportState());
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_SOURCES);
    // all went at the cut of 4; the 10,000 one-row sources after it are followed
    expect(followed(d.exportState())).toBe(10_000);
  });
});
