/**
 * A host's INVALID level by hour of the day and of the week (UTC), so a burst that recurs at the
 * same time (a nightly backup through an asymmetric path, a weekly scan) stops alerting once it
 * has been seen often enough (lifecycle-anomaly.md §3.3). Each finished hour leaves its 90th
 * percentile and MAD of log1p(rate): the 90th so a burst filling a tenth of the hour counts. The
 * reference for an hour is the median over the same hour of the last 3 weeks once 2 weeks exist,
 * else of the last 7 days once 3 days exist, else none.
 */
export type HourSummary = [index: number, level: number, mad: number];

export interface SeasonalState {
  hour: number;
  xs: number[];
  daily: HourSummary[][];
  weekly: HourSummary[][];
}

const DAYS = 7;
const WEEKS = 3;
/** Fewer learned intervals than this in an hour (an anomaly open most of it) leave no summary. */
const MIN_SAMPLES = 6;

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

export class SeasonalProfile {
  private s: SeasonalState = { hour: -1, xs: [], daily: Array.from({ length: 24 }, () => []), weekly: Array.from({ length: 168 }, () => []) };

  state(): SeasonalState {
    return this.s;
  }

  restore(s: SeasonalState): this {
    this.s = s;
    return this;
  }

  /** One interval's log1p(rate) at `sec` (event time). */
  add(sec: number, x: number): void {
    const hour = Math.floor(sec / 3600);
    if (hour !== this.s.hour) {
      if (this.s.hour >= 0 && this.s.xs.length >= MIN_SAMPLES) this.close(this.s.hour, this.s.xs);
      this.s.hour = hour;
      this.s.xs = [];
    }
    this.s.xs.push(x);
  }

  /** The expected level and spread for the hour of `sec`, when there is history enough. */
  reference(sec: number): { center: number; spread: number; by: 'weekly' | 'daily' } | undefined {
    const hour = Math.floor(sec / 3600);
    const w = this.s.weekly[weekHour(hour)]!;
    const d = this.s.daily[hour % 24]!;
    const [by, rows] = w.length >= 2 ? ['weekly' as const, w] : d.length >= 3 ? ['daily' as const, d] : [undefined, []];
    if (!by) return undefined;
    return { center: median(rows.map((r) => r[1])), spread: median(rows.map((r) => r[2])) / 0.6745, by };
  }

  private close(hour: number, xs: number[]): void {
    const s = sorted(xs);
    const level = s[Math.min(s.length - 1, Math.floor(0.9 * s.length))]!;
    const m = median(s);
    const summary = (index: number): HourSummary => [index, round(level), round(median(s.map((x) => Math.abs(x - m))))];
    push(this.s.daily[hour % 24]!, summary(Math.floor(hour / 24)), DAYS);
    push(this.s.weekly[weekHour(hour)]!, summary(Math.floor(hour / 168)), WEEKS);
  }
}

/** Hours since the epoch to hour of the week (the epoch was a Thursday; any fixed origin serves). */
const weekHour = (hour: number) => hour % 168;
const round = (x: number) => Math.round(x * 1e4) / 1e4; // checkpoints stay small
function push(ring: HourSummary[], s: HourSummary, keep: number): void {
  ring.push(s);
  if (ring.length > keep) ring.shift();
}
