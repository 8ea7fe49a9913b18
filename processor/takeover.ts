/**
 * What a member does first after a rebalance hands it partitions: their state is restored and
 * their first batches hold the records of the pause, so until each has stored a batch the
 * partitions it kept put off their periodic checkpoints (a snapshot and its inserts each, due
 * together right after the pause, which shared the CPU and the store with the partitions that
 * moved and delayed their takeover). Putting a checkpoint off is always safe: it only lengthens
 * what a restart would replay. It waits at most one checkpoint interval after the assignment, so
 * a partition that gets no records cannot hold the others' checkpoints back.
 */
export class TakeoverPriority {
  private readonly waiting = new Set<number>();
  private until = 0;

  constructor(private readonly maxDeferMs: number) {}

  /** A rebalance handed over `taken` (partitions this member did not hold) at `now`. */
  assigned(taken: readonly number[], now: number): void {
    this.waiting.clear();
    for (const p of taken) this.waiting.add(p);
    this.until = now + this.maxDeferMs;
  }

  /** A batch of `partition` is stored. */
  stored(partition: number): void {
    this.waiting.delete(partition);
  }

  /** Whether `partition`'s due checkpoint waits: other partitions taken over have stored nothing yet. */
  defers(partition: number, now: number): boolean {
    if (now >= this.until) this.waiting.clear();
    return this.waiting.size > 0 && !this.waiting.has(partition);
  }

  /** Partitions taken over that have not stored a batch yet. */
  get pending(): number {
    return this.waiting.size;
  }
}
