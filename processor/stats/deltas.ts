/**
 * Per-host conntrack statistics as deltas over each polling interval, from the per-CPU u32
 * counters the collector reports (docs/RECORDS.md, `stats`). Within one collector run a counter
 * that went down wrapped at 2^32; across runs (the collector or the host restarted) a counter that
 * went down was reset, and its new value is the delta (Prometheus' rule for resets).
 */
import type { StatField, StatsRecord } from '../../contract/records.js';
import { STAT_FIELDS } from '../../contract/records.js';
import { scopeOf } from '../lifecycle/scope.js';

export interface HostStatsRow {
  host: string;
  /** The record's network namespace ('' for a collector of one). */
  netns: string;
  run: string;
  ts: { sec: number; nsec: number };
  interval_s: number;
  entries: number;
  max_entries: number;
  cpus: number;
  reset: boolean;
  exp_new: number;
  exp_create: number;
  exp_delete: number;
  /** Events the collector decoded in the interval. */
  collector_events: number;
  [k: string]: unknown;
}

interface Prev {
  run: string;
  sec: number;
  nsec: number;
  cpus: Map<number, Record<StatField, number>>;
  exp: [number, number, number];
  events?: number;
}

const WRAP = 2 ** 32;

export type StatsState = [string, { run: string; sec: number; nsec: number; cpus: [number, Record<StatField, number>][]; exp: [number, number, number]; events?: number }][];

export class StatsDeltas {
  private readonly prev = new Map<string, Prev>();

  exportState(): StatsState {
    return [...this.prev].map(([h, p]) => [h, { ...p, cpus: [...p.cpus] }]);
  }

  importState(s: StatsState): void {
    for (const [h, p] of s) this.prev.set(h, { ...p, cpus: new Map(p.cpus) });
  }

  /** The delta row for this record, or undefined for a host's first record (nothing to compare). */
  apply(r: StatsRecord): HostStatsRow | undefined {
    // each network namespace has its own counters (a collector of several sends a record each)
    const key = scopeOf(r.host, r.netns);
    const p = this.prev.get(key);
    const cpus = new Map(r.cpus.map((c): [number, Record<StatField, number>] => [c.cpu, c]));
    const exp: [number, number, number] = [r.exp_new ?? 0, r.exp_create ?? 0, r.exp_delete ?? 0];
    const events = r.collector?.events ?? 0;
    this.prev.set(key, { run: r.run, sec: r.sec, nsec: r.nsec, cpus, exp, events });
    if (!p) return undefined;
    const sameRun = p.run === r.run;
    let reset = false;
    const delta = (cur: number, old: number | undefined): number => {
      if (old === undefined) return 0; // a CPU that came online: no baseline yet
      if (cur >= old) return cur - old;
      if (sameRun) return cur + WRAP - old;
      reset = true;
      return cur;
    };
    const row: HostStatsRow = {
      host: r.host, netns: r.netns ?? '', run: r.run, ts: { sec: r.sec, nsec: r.nsec },
      interval_s: r.sec - p.sec + (r.nsec - p.nsec) / 1e9,
      entries: r.entries ?? 0, max_entries: r.max_entries ?? 0, cpus: r.cpus.length, reset: false,
      exp_new: delta(exp[0], p.exp[0]), exp_create: delta(exp[1], p.exp[1]), exp_delete: delta(exp[2], p.exp[2]),
      // counted since the collector started: a new run starts from zero (not a counter reset)
      collector_events: sameRun ? Math.max(0, events - (p.events ?? events)) : events,
    };
    for (const f of STAT_FIELDS) {
      let sum = 0;
      for (const c of r.cpus) sum += delta(c[f], p.cpus.get(c.cpu)?.[f]);
      row[f] = sum;
    }
    row.reset = reset;
    return row;
  }
}
