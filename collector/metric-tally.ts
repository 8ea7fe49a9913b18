/**
 * Counts for a labelled prom-client Counter, kept in plain numbers on the hot path and published
 * into the counter whenever it is read (its `collect`, which every scrape and `get()` runs). An
 * event is then one increment of a field, not prom-client's per-call label hashing, validation
 * and result object (two such calls per conntrack event were 3-4% of `ctpipe run`'s main thread,
 * issue 19). Names, labels and values are the counter's own; a series appears at the first read
 * after its first count, as one made by `inc` does.
 */
import type { Counter } from 'prom-client';

type Labels = Record<string, string>;

/** One label set's count not yet published. */
export class Tally {
  n = 0;
  constructor(readonly labels: Labels) {}
}

export class CounterTallies {
  private readonly tallies = new Map<string, Tally>();
  private counter?: Counter;

  /** The counter to publish into: created with `collect: () => tallies.publish()`. */
  attach(counter: Counter): void {
    this.counter = counter;
  }

  /** The tally of one label set (the same object for the same labels, kept until `drop`). */
  of(labels: Labels): Tally {
    const key = JSON.stringify(labels);
    let t = this.tallies.get(key);
    if (t === undefined) {
      t = new Tally({ ...labels });
      this.tallies.set(key, t);
    }
    return t;
  }

  /** Moves every count into the counter. */
  publish(): void {
    const c = this.counter;
    if (!c) return;
    for (const t of this.tallies.values()) {
      if (t.n === 0) continue;
      const n = t.n;
      t.n = 0;
      c.inc(t.labels, n);
    }
  }

  /** Forgets the tallies whose labels match (a namespace let go): their counts go with their series. */
  drop(match: (labels: Labels) => boolean): void {
    for (const [k, t] of this.tallies) if (match(t.labels)) this.tallies.delete(k);
  }
}
