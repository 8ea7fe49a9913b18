/** Waiting in a test for something to happen, failing it after a bound. */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';

export interface Wait {
  /** The bound, ms: the test fails if `pending` still holds after it. */
  within: number;
  /** The pause between looks, ms. */
  every: number;
  /** The failure's message; asked at each look, as an `expect` message is. */
  why: () => string | undefined | Promise<string | undefined>;
  /** A process that must keep running meanwhile. */
  alive?: ChildProcess;
}

/**
 * Waits while `pending()` holds, looking every `every` ms. Each time it holds, expects that less
 * than `within` ms have passed and that `alive` has not exited.
 */
export async function waitWhile(pending: () => boolean | Promise<boolean>, o: Wait): Promise<void> {
  for (let t = 0; await pending(); t += o.every) {
    expect(t < o.within && (o.alive === undefined || o.alive.exitCode === null), await o.why()).toBe(true);
    await sleep(o.every);
  }
}
