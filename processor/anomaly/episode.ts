/**
 * When an anomaly opens, continues and closes: one per (host, kind) at a time. It opens after
 * `openAfter` of the last `window` intervals were above threshold, closes after `closeAfter`
 * intervals in a row were clear (a lower bar than opening: hysteresis), and cannot reopen within
 * `cooldownS` of closing. Every decision is on event time, so a replay gives the same anomalies.
 */
import type { Time } from '../lifecycle/flow-row.js';

export interface EpisodeOptions {
  openAfter: number;
  window: number;
  closeAfter: number;
  cooldownS: number;
}

export type Step = 'opened' | 'continues' | 'closed' | undefined;

export interface EpisodeState {
  recent: boolean[];
  clearRun: number;
  cooldownUntil: number;
  startedAt?: Time;
  closedStart?: Time;
}

export class Episode {
  private recent: boolean[] = [];
  private clearRun = 0;
  private cooldownUntil = 0;
  startedAt: Time | undefined;
  /** Start of the episode the last step closed. */
  closedStart: Time | undefined;

  constructor(private readonly o: EpisodeOptions) {}

  state(): EpisodeState {
    return { recent: this.recent, clearRun: this.clearRun, cooldownUntil: this.cooldownUntil, startedAt: this.startedAt, closedStart: this.closedStart };
  }

  restore(s: EpisodeState): this {
    this.recent = s.recent;
    this.clearRun = s.clearRun;
    this.cooldownUntil = s.cooldownUntil;
    this.startedAt = s.startedAt;
    this.closedStart = s.closedStart;
    return this;
  }

  get open(): boolean {
    return this.startedAt !== undefined;
  }

  /** One interval: `above` the opening threshold, `clear` below the closing one. */
  step(at: Time, above: boolean, clear: boolean): Step {
    this.recent.push(above);
    if (this.recent.length > this.o.window) this.recent.shift();
    if (this.startedAt === undefined) {
      if (at.sec < this.cooldownUntil) return undefined;
      if (this.recent.filter(Boolean).length < this.o.openAfter) return undefined;
      this.startedAt = at;
      this.clearRun = 0;
      return 'opened';
    }
    this.clearRun = clear ? this.clearRun + 1 : 0;
    if (this.clearRun < this.o.closeAfter) return 'continues';
    this.closedStart = this.startedAt;
    this.startedAt = undefined;
    this.recent = [];
    this.cooldownUntil = at.sec + this.o.cooldownS;
    return 'closed';
  }
}
