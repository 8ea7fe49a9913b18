/**
 * Retrying ClickHouse calls while it is unreachable: exponential backoff (doubling from `minMs`
 * up to `maxMs`), for as long as the caller wants. The caller holds its input position meanwhile,
 * which is what pauses consumption; nothing is dropped.
 */
import { Backoff } from '../../common/backoff.js';
import { asError, CtpipeError, errorMessage } from '../../common/errors.js';

export interface RetryOptions {
  minMs?: number;
  maxMs?: number;
  /** Checked after each failure: true gives up with STORE_UNAVAILABLE. */
  shouldStop?: () => boolean;
  onError?: (e: Error, attempt: number) => void;
}

export async function retrying<T>(fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const backoff = new Backoff(o.minMs ?? 200, o.maxMs ?? 10_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      o.onError?.(asError(e), attempt);
      if (o.shouldStop?.()) throw new CtpipeError('STORE_UNAVAILABLE', `gave up after ${attempt} attempts: ${errorMessage(e)}`, { cause: e });
      await backoff.wait();
    }
  }
}
