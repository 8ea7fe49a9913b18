/**
 * Exponential backoff between retries: the wait doubles from `minMs` up to `maxMs`, and starts
 * again from `minMs` after a success (reset). The Kafka publisher and the ClickHouse retries share it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class Backoff {
  private delay: number;

  constructor(private readonly minMs: number, private readonly maxMs: number) {
    this.delay = minMs;
  }

  /** The wait before the next attempt; each call doubles the following one. */
  next(): number {
    const d = this.delay;
    this.delay = Math.min(d * 2, this.maxMs);
    return d;
  }

  wait(): Promise<void> {
    return sleep(this.next());
  }

  reset(): void {
    this.delay = this.minMs;
  }
}
