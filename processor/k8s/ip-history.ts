/**
 * Who held an address when: per address, the intervals during which each owner (a pod, a service,
 * a node) held it, so a flow is named by the owner at its first_seen and a pod address reused later
 * by another pod names each flow's own pod. Pure; times in ms.
 *
 * Bounded: open intervals (owners holding an address now) at most `maxOpen`, refused past it
 * (counted); ended ones kept for `keepMs` after their end (flows that started before can still be
 * emitted, up to the longest a conntrack entry lives) and at most `maxEnded`, the oldest ended
 * dropped first. About 150 bytes an interval, the names shared with their owner.
 */
export interface Interval<N> {
  owner: string;
  start: number;
  end?: number;
  names: N;
}

export interface HistoryLimits {
  maxOpen: number;
  maxEnded: number;
  keepMs: number;
}

export class IpHistory<N> {
  private readonly byIp = new Map<string, Interval<N>[]>();
  private open = 0;
  private ended = 0;
  /** Intervals refused by the bound on open ones. */
  refused = 0;

  constructor(private readonly limits: HistoryLimits) {}

  get openCount(): number {
    return this.open;
  }

  get endedCount(): number {
    return this.ended;
  }

  /**
   * `owner` holds `ip` from `start`: an owner that held it before lost it when this one took it
   * (ended at this start), and this one's start is never before a previous holder's end.
   */
  hold(ip: string, owner: string, start: number, names: N): boolean {
    let list = this.byIp.get(ip);
    const mine = list?.find((i) => i.owner === owner && i.end === undefined);
    if (mine) {
      mine.names = names;
      return true;
    }
    if (this.open >= this.limits.maxOpen) {
      this.refused++;
      return false;
    }
    let from = start;
    for (const i of list ?? []) {
      if (i.end === undefined) {
        i.end = Math.max(i.start, from);
        this.open--;
        this.ended++;
      }
      from = Math.max(from, i.end);
    }
    if (!list) this.byIp.set(ip, (list = []));
    list.push({ owner, start: from, names });
    this.open++;
    this.bound(from);
    return true;
  }

  /** `owner` no longer holds `ip` from `end` on. */
  release(ip: string, owner: string, end: number): void {
    const i = this.byIp.get(ip)?.find((x) => x.owner === owner && x.end === undefined);
    if (!i) return;
    i.end = Math.max(i.start, end);
    this.open--;
    this.ended++;
    this.bound(i.end);
  }

  /** Churn between two prunes cannot grow the ended holdings past twice their bound. */
  private bound(now: number): void {
    if (this.ended > 2 * this.limits.maxEnded) this.prune(now);
  }

  /** The names of the owner of `ip` at `t`: the latest interval that started by `t` and had not ended; undefined when none. */
  at(ip: string, t: number): N | undefined {
    const list = this.byIp.get(ip);
    if (!list) return undefined;
    let best: Interval<N> | undefined;
    for (const i of list) {
      if (i.start <= t && (i.end === undefined || t < i.end) && (!best || i.start >= best.start)) best = i;
    }
    return best?.names;
  }

  /** Drops ended intervals older than keepMs before `now`, then the oldest ended past maxEnded. */
  prune(now: number): void {
    const cut = now - this.limits.keepMs;
    let cutEnd = cut;
    if (this.ended > this.limits.maxEnded) {
      // the end time below which the excess lies
      const ends: number[] = [];
      for (const list of this.byIp.values()) for (const i of list) if (i.end !== undefined) ends.push(i.end);
      ends.sort((a, b) => a - b);
      cutEnd = Math.max(cut, ends[this.ended - this.limits.maxEnded - 1]! + 1);
    }
    for (const [ip, list] of this.byIp) {
      const kept = list.filter((i) => i.end === undefined || i.end >= cutEnd);
      this.ended -= list.length - kept.length;
      if (kept.length === 0) this.byIp.delete(ip);
      else if (kept.length !== list.length) this.byIp.set(ip, kept);
    }
  }
}
