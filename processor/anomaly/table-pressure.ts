/**
 * Conntrack table pressure per host and network namespace (each namespace has its own table; keyed
 * as the lifecycle engine keys flows, lifecycle/scope.ts, so a checkpoint from before namespaces
 * keeps its hosts): the table filling (entries over `warnFill` of the maximum;
 * critical over `criticalFill`), with the time to full extrapolated from the trend of the last
 * intervals (least squares), and the kernel dropping because of it (early_drop, drop and
 * insert_failed per second over `minDropRate`). Two kinds, each with its own episode; `observed`
 * is the peak (fill, or drops per second), `baseline` the threshold, `score` their ratio, and
 * `details` the statistics of the peak interval (fill, entries, maximum, drop rates, time to full).
 */
import type { Time } from '../lifecycle/flow-row.js';
import type { HostStatsRow } from '../stats/deltas.js';
import { scopeOf } from '../lifecycle/scope.js';
import { Episode, type EpisodeOptions, type EpisodeState } from './episode.js';
import { versionOf, type AnomalyRow } from './row.js';

export interface TablePressureOptions extends EpisodeOptions {
  warnFill: number;
  criticalFill: number;
  /** Drops per second (early_drop + drop + insert_failed) that count as dropping. */
  minDropRate: number;
  trendPoints: number;
}

interface HostState {
  fill: Episode;
  drops: Episode;
  trend: { t: number; entries: number }[];
  peakFill: number;
  peakDrops: number;
  /** The statistics of each episode's worst interval: its evidence (the table may have changed since). */
  fillAt?: Record<string, unknown>;
  dropsAt?: Record<string, unknown>;
}

export type TablePressureState = [string, Omit<HostState, 'fill' | 'drops'> & { fill: EpisodeState; drops: EpisodeState }][];

export class TablePressureDetector {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly o: TablePressureOptions) {}

  exportState(): TablePressureState {
    return [...this.hosts].map(([k, h]) => [k, { ...h, fill: h.fill.state(), drops: h.drops.state() }]);
  }

  importState(s: TablePressureState): void {
    for (const [k, h] of s) this.hosts.set(k, { ...h, fill: new Episode(this.o).restore(h.fill), drops: new Episode(this.o).restore(h.drops) });
  }

  apply(row: HostStatsRow): AnomalyRow[] {
    if (!(row.interval_s > 0) || !(row.max_entries > 0)) return [];
    const key = scopeOf(row.host, row.netns);
    let h = this.hosts.get(key);
    if (!h) this.hosts.set(key, (h = { fill: new Episode(this.o), drops: new Episode(this.o), trend: [], peakFill: 0, peakDrops: 0 }));
    h.trend.push({ t: row.ts.sec + row.ts.nsec / 1e9, entries: row.entries });
    if (h.trend.length > this.o.trendPoints) h.trend.shift();
    const fill = row.entries / row.max_entries;
    const rates = {
      early_drop: Number(row.early_drop) / row.interval_s,
      drop: Number(row.drop) / row.interval_s,
      insert_failed: Number(row.insert_failed) / row.interval_s,
    };
    const dropRate = row.reset ? 0 : rates.early_drop + rates.drop + rates.insert_failed;
    const slope = slopeOf(h.trend);
    const details: Record<string, unknown> = {
      at: row.ts.sec, fill, entries: row.entries, max_entries: row.max_entries, ...Object.fromEntries(Object.entries(rates).map(([k, v]) => [`${k}_per_s`, v])),
      entries_per_s: slope, seconds_to_full: slope > 0 ? (row.max_entries - row.entries) / slope : null,
    };
    const out: AnomalyRow[] = [];
    const fillStep = h.fill.step(row.ts, fill >= this.o.warnFill, fill < this.o.warnFill * 0.95);
    if (fillStep) {
      if (fillStep === 'opened' || fill > h.peakFill) [h.peakFill, h.fillAt] = [fill, details];
      out.push(this.row(row, h.fill, fillStep, 'table_pressure', h.peakFill >= this.o.criticalFill ? 'critical' : 'warning', h.peakFill / this.o.warnFill, this.o.warnFill, h.peakFill, h.fillAt ?? details));
    }
    const dropStep = h.drops.step(row.ts, dropRate >= this.o.minDropRate, dropRate < this.o.minDropRate);
    if (dropStep) {
      if (dropStep === 'opened' || dropRate > h.peakDrops) [h.peakDrops, h.dropsAt] = [dropRate, details];
      out.push(this.row(row, h.drops, dropStep, 'table_drops', 'critical', h.peakDrops / this.o.minDropRate, this.o.minDropRate, h.peakDrops, h.dropsAt ?? details));
    }
    return out;
  }

  private row(r: HostStatsRow, ep: Episode, step: 'opened' | 'continues' | 'closed', kind: string, severity: AnomalyRow['severity'],
    score: number, baseline: number, observed: number, details: Record<string, unknown>): AnomalyRow {
    const startedAt: Time = step === 'closed' ? ep.closedStart! : ep.startedAt!;
    return { host: r.host, netns: r.netns, kind, severity, started_at: startedAt, ended_at: step === 'closed' ? r.ts : null, score, baseline, observed, details, flow_ids: [], version: versionOf(r.ts) };
  }
}

/** Least-squares slope of entries over time (entries per second); 0 with fewer than 3 points. */
function slopeOf(pts: { t: number; entries: number }[]): number {
  if (pts.length < 3) return 0;
  const t0 = pts[0]!.t;
  const n = pts.length;
  let st = 0, se = 0, stt = 0, ste = 0;
  for (const p of pts) {
    const t = p.t - t0;
    st += t; se += p.entries; stt += t * t; ste += t * p.entries;
  }
  const d = n * stt - st * st;
  return d === 0 ? 0 : (n * ste - st * se) / d;
}
