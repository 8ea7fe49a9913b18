/**
 * INVALID spikes per host and network namespace (each namespace has its own counters; keyed as the
 * lifecycle engine keys flows, lifecycle/scope.ts, so a checkpoint from before namespaces keeps its
 * hosts; the other namespaces count in the fleet reference as other hosts do), from the statistics
 * deltas (summed over CPUs, wraps and resets already handled in stats/deltas.ts). The series is log1p(invalid/s) per polling interval. Baseline: an
 * EWMA while the host has little history, then the median and MAD of the last `history` intervals
 * (robust z, Iglewicz & Hoaglin: 0.6745 (x - median) / MAD), with a floor on the spread so quiet
 * hosts are not scored on noise, and a minimum absolute rate. The baseline is frozen while an
 * anomaly is open so it does not learn the attack (lifecycle-anomaly.md §3.3). Two more references:
 * the host's own hour of the day or week (seasonal.ts), which can only raise the bar, so a burst
 * that recurs at that hour stops alerting; and the fleet (the median of the other hosts' latest
 * intervals, from 3 hosts on): a spike must also be above the fleet's median, and a host with
 * little history of its own is scored against the fleet, so a new host that starts far above every
 * other one is told rather than learnt. NFLOG samples of
 * the INVALID packets, when the collector sends them, become the anomaly's evidence (evidence.ts):
 * those of the intervals that opened it and of every interval while it is open.
 */
import type { InvalidPacketRecord } from '../../contract/records.js';
import type { HostStatsRow } from '../stats/deltas.js';
import { scopeOf } from '../lifecycle/scope.js';
import { addSample, emptyEvidence, merge, summary, type Evidence } from './evidence.js';
import { Episode, type EpisodeOptions, type EpisodeState } from './episode.js';
import { SeasonalProfile, type SeasonalState } from './seasonal.js';
import { versionOf, type AnomalyRow } from './row.js';

export interface InvalidSpikeOptions extends EpisodeOptions {
  /** INVALID packets per second below which nothing opens. */
  minRate: number;
  /** Robust z to open, and below which an interval counts as clear. */
  z: number;
  clearZ: number;
  /** Intervals of history for the median/MAD baseline; the EWMA serves until `warmup` of them. */
  history: number;
  warmup: number;
  alpha: number;
  /** Floor on the spread, in log1p(rate) units. */
  minSpread: number;
}

interface HostState {
  hist: number[];
  m: number;
  v: number;
  n: number;
  ep: Episode;
  peak: { z: number; rate: number };
  /** Samples per interval, the current one last (the opening window's worth). */
  recent: Evidence[];
  /** Samples of the open anomaly. */
  evidence: Evidence;
  season: SeasonalProfile;
  /** The latest interval: when, and log1p(rate) (the fleet reference of the other hosts). */
  last: [number, number];
  /**
   * The episode's window of intervals, oldest first: log1p(rate) of one that was above threshold
   * (held back from the baseline: it counts toward opening), null for one already learnt. A held
   * interval is learnt once it leaves the window without an anomaly opening (a level shift is
   * learnt, `window` intervals late) and dropped when one opens (the attack is never learnt).
   */
  held: (number | null)[];
}

export type InvalidSpikeState = [string, Omit<HostState, 'ep' | 'season' | 'last' | 'held'> & { ep: EpisodeState; season?: SeasonalState; last?: [number, number]; held?: (number | null)[] }][];

/** Hosts whose latest interval is older than this are left out of the fleet reference. */
const FLEET_FRESH_S = 300;
const FLEET_MIN_HOSTS = 3;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

export class InvalidSpikeDetector {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly o: InvalidSpikeOptions) {}

  exportState(): InvalidSpikeState {
    return [...this.hosts].map(([k, h]) => [k, { ...h, ep: h.ep.state(), season: h.season.state() }]);
  }

  importState(s: InvalidSpikeState): void {
    for (const [k, h] of s) {
      const season = new SeasonalProfile();
      if (h.season) season.restore(h.season);
      this.hosts.set(k, { ...h, ep: new Episode(this.o).restore(h.ep), season, last: h.last ?? [0, 0], held: h.held ?? [] });
    }
  }

  apply(row: HostStatsRow): AnomalyRow | undefined {
    if (!(row.interval_s > 0)) return undefined;
    const key = scopeOf(row.host, row.netns);
    let h = this.hosts.get(key);
    if (!h) this.hosts.set(key, (h = this.newHost()));
    // A counter reset (reboot) makes this interval's delta meaningless: skip it.
    if (row.reset) return undefined;
    const rate = Number(row.invalid) / row.interval_s;
    const x = Math.log1p(rate);
    const own = this.baseline(h);
    const seasonal = h.season.reference(row.ts.sec);
    const { center, spread } = seasonal && seasonal.center > own.center ? { center: seasonal.center, spread: Math.max(seasonal.spread, own.spread) } : own;
    const fleet = this.fleet(key, row.ts.sec);
    let z = h.n === 0 ? 0 : (x - center) / Math.max(spread, this.o.minSpread);
    if (fleet && h.n < this.o.warmup) z = Math.max(z, (x - fleet.center) / Math.max(fleet.spread, this.o.minSpread));
    h.last = [row.ts.sec, x];
    h.season.add(row.ts.sec, x); // even while open: a burst recurring at this hour is what it learns
    const above = z > this.o.z && rate >= this.o.minRate && (!fleet || x > fleet.center);
    const clear = z < this.o.clearZ || rate < this.o.minRate;
    const step = h.ep.step(row.ts, above, clear);
    this.hold(h, x, above, step);
    const interval = h.recent[h.recent.length - 1]!;
    h.recent.push(emptyEvidence());
    if (h.recent.length > this.o.window + 1) h.recent.shift();
    if (step === undefined) return undefined;
    if (step === 'opened') {
      h.peak = { z, rate };
      h.evidence = emptyEvidence();
      for (const e of h.recent) merge(h.evidence, e);
    } else {
      if (z > h.peak.z) h.peak = { z, rate };
      if (step === 'continues') merge(h.evidence, interval);
    }
    const startedAt = step === 'closed' ? h.ep.closedStart! : h.ep.startedAt!;
    const baselineRate = Math.expm1(center);
    return {
      host: row.host, netns: row.netns, kind: 'invalid_spike', severity: h.peak.z >= 2 * this.o.z ? 'critical' : 'warning',
      started_at: startedAt, ended_at: step === 'closed' ? row.ts : null,
      score: h.peak.z, baseline: baselineRate, observed: h.peak.rate,
      details: {
        rate, z, baseline_rate: baselineRate, interval_s: row.interval_s, invalid: Number(row.invalid),
        baseline_by: seasonal && seasonal.center > own.center ? seasonal.by : h.n < this.o.warmup ? 'ewma' : 'median',
        fleet_median_rate: fleet ? Math.expm1(fleet.center) : null, ...summary(h.evidence),
      },
      flow_ids: [], version: versionOf(row.ts),
    };
  }

  /** An NFLOG sample of an INVALID packet, counted in its namespace's current interval. */
  sample(r: InvalidPacketRecord): void {
    const key = scopeOf(r.host, r.netns);
    let h = this.hosts.get(key);
    if (!h) this.hosts.set(key, (h = this.newHost()));
    addSample(h.recent[h.recent.length - 1]!, r);
  }

  private newHost(): HostState {
    return {
      hist: [], m: 0, v: 0, n: 0, ep: new Episode(this.o), peak: { z: 0, rate: 0 }, recent: [emptyEvidence()], evidence: emptyEvidence(),
      season: new SeasonalProfile(), last: [0, 0], held: [],
    };
  }

  /** Median and spread (MAD) of the other hosts' latest log1p(rate), when enough are current. */
  private fleet(self: string, sec: number): { center: number; spread: number } | undefined {
    const xs: number[] = [];
    for (const [name, h] of this.hosts) if (name !== self && sec - h.last[0] <= FLEET_FRESH_S) xs.push(h.last[1]);
    if (xs.length < FLEET_MIN_HOSTS) return undefined;
    const med = median(xs);
    return { center: med, spread: median(xs.map((v) => Math.abs(v - med))) / 0.6745 };
  }

  private baseline(h: HostState): { center: number; spread: number } {
    if (h.n < this.o.warmup) return { center: h.m, spread: Math.sqrt(h.v) };
    const med = median(h.hist);
    const mad = median(h.hist.map((v) => Math.abs(v - med)));
    return { center: med, spread: mad / 0.6745 };
  }

  /**
   * Feeds the baseline. Frozen while an anomaly is open; otherwise an interval above threshold
   * waits in `held` until it is known not to have opened one. Learning those at once let the
   * warm-up EWMA absorb a burst before the episode's `openAfter` intervals came (issue 18.17).
   */
  private hold(h: HostState, x: number, above: boolean, step: string | undefined): void {
    if (step === 'opened') {
      h.held = []; // the intervals that opened it: the attack, not the baseline
      return;
    }
    if (h.ep.open || step === 'closed') return;
    h.held.push(above ? x : null);
    if (!above) this.learn(h, x);
    while (h.held.length > this.o.window) {
      const old = h.held.shift();
      if (old != null) this.learn(h, old);
    }
  }

  private learn(h: HostState, x: number): void {
    if (h.n === 0) h.m = x;
    const d = x - h.m;
    h.m += this.o.alpha * d;
    h.v = (1 - this.o.alpha) * (h.v + this.o.alpha * d * d);
    h.n++;
    h.hist.push(x);
    if (h.hist.length > this.o.history) h.hist.shift();
  }
}
