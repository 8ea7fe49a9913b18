/**
 * Store calls retried while ClickHouse is unavailable: exponential backoff (doubling from `minMs`
 * up to `maxMs`), for as long as the caller wants. The caller holds its input position meanwhile,
 * which is what pauses consumption; nothing is dropped. A failure that retrying cannot mend
 * (errors.ts) is thrown at once: STORE_ROWS_REFUSED for rows ClickHouse refuses, STORE_SCHEMA for a
 * statement the database cannot run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../../common/backoff.js';
import { asError, CtpipeError } from '../../common/errors.js';
import { classifyStoreError, describeStoreError, type StoreFailure } from './errors.js';

export interface RetryOptions {
  minMs?: number;
  maxMs?: number;
  /** Checked after each transient failure: true gives up with STORE_UNAVAILABLE. */
  shouldStop?: () => boolean;
  onError?: (e: Error, attempt: number, failure: StoreFailure) => void;
}

export async function retrying<T>(fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const backoff = new Backoff(o.minMs ?? 200, o.maxMs ?? 10_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const failure = classifyStoreError(e);
      o.onError?.(asError(e), attempt, failure);
      if (failure === 'rows') throw new CtpipeError('STORE_ROWS_REFUSED', describeStoreError(e), { cause: e });
      if (failure === 'schema') throw new CtpipeError('STORE_SCHEMA', describeStoreError(e), { cause: e });
      if (o.shouldStop?.()) throw new CtpipeError('STORE_UNAVAILABLE', `gave up after ${attempt} attempts: ${describeStoreError(e)}`, { cause: e });
      // the wait ends early when the caller gives up (a second signal): a stop is never held up by it
      const until = Date.now() + backoff.next();
      while (Date.now() < until && !o.shouldStop?.()) await sleep(Math.min(200, until - Date.now()));
    }
  }
}
