/**
 * Counter dumps: the kernel sends a flow's byte and packet counters (CTA_COUNTERS_ORIG/REPLY) only
 * in DESTROY events and in dumps, so an open flow's rows would show 0 bytes until it ends. A
 * counter dump reads the table and emits every entry as a `snapshot` record; the processor folds
 * them into the flows it knows as counter updates (lifecycle/engine.ts), so refresh rows and the
 * rows written at a stop carry what the kernel has counted so far.
 *
 * Two kinds: periodic (`collect.counter_dump_interval`) and one at stop (`ctpipe run`, before the
 * open flows' rows are written). Both are guarded by the table's size, read first from the global
 * statistics (one small request): a dump costs 3 to 4 us of CPU per entry in this process
 * (docs/PERFORMANCE.md, "Counter dumps"), so a big table is skipped with a log line unless the
 * bound is raised. The stop dump is also bounded in time: the stop must not wait on it.
 */
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { CtRecord } from '../contract/records.js';
import type { GlobalStats } from './conntrack/stats.js';
import * as R from './netlink/requests.js';
import type { QueryClient } from './query.js';

export interface CounterDumpOptions {
  /** Between two periodic dumps (0: none). */
  intervalMs: number;
  /** No dump (periodic or at stop) when the table holds more entries than this. */
  maxEntries: number;
  /** Dump at stop (`ctpipe run`), at most this long; 0: no stop dump. */
  stopTimeoutMs: number;
}

export type CounterDumpWhy = 'periodic' | 'stop';

export interface CounterDumpResult {
  why: CounterDumpWhy;
  /** Entries in the table before the dump (global statistics). */
  entries: number;
  /** Records emitted. */
  flows: number;
  ms: number;
  /** Why the dump did not run, or did not finish. */
  skipped?: 'too_many_entries' | 'timeout' | 'busy' | 'failed';
}

export class CounterDumper {
  private timer?: NodeJS.Timeout;
  private running: Promise<CounterDumpResult> | undefined;
  /** The size guard's last verdict, so a skip is logged when it starts, not at every interval. */
  private skipping = false;
  private closing = false;
  /** Dumps done, skipped and records emitted (for tests and the stop log). */
  readonly counted = { dumps: 0, skipped: 0, flows: 0 };

  constructor(
    private readonly o: CounterDumpOptions,
    private readonly query: QueryClient,
    private readonly emit: (r: CtRecord) => void,
    private readonly log: Logger,
  ) {}

  /** Starts the periodic dumps (none when the interval is 0). */
  start(onError: (e: unknown) => void): void {
    if (this.o.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.dump('periodic').catch(onError);
    }, this.o.intervalMs);
  }

  /** No more periodic dumps; one under way is cut short by the socket's close, which is no failure. */
  stopTimer(): void {
    clearInterval(this.timer);
    this.closing = true;
  }

  /** One counter dump; `timeoutMs` bounds the dump's whole duration (the request's own timeout counts from the last reply). */
  async dump(why: CounterDumpWhy, timeoutMs = 0): Promise<CounterDumpResult> {
    const t0 = Date.now();
    const result = (r: Omit<CounterDumpResult, 'why' | 'ms'>): CounterDumpResult => ({ why, ms: Date.now() - t0, ...r });
    if (this.running) {
      // a periodic dump is under way: no pile-up; a stop waits for it, then makes its own within what is left of its bound
      if (why !== 'stop') return result({ entries: 0, flows: 0, skipped: 'busy' });
      const waited = await this.bounded(this.running.then(() => false), timeoutMs, () => true);
      const left = timeoutMs - (Date.now() - t0);
      if (waited || left <= 0) return result({ entries: 0, flows: 0, skipped: 'timeout' });
      return this.dump(why, left);
    }
    const run = this.run(why, timeoutMs, result);
    this.running = run;
    return run.finally(() => { this.running = undefined; });
  }

  private async bounded<T>(p: Promise<T>, timeoutMs: number, late: () => T): Promise<T> {
    if (timeoutMs <= 0) return p;
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<T>((resolve) => { timer = setTimeout(() => resolve(late()), timeoutMs); });
    return Promise.race([p, cut]).finally(() => clearTimeout(timer));
  }

  private async run(why: CounterDumpWhy, timeoutMs: number, result: (r: Omit<CounterDumpResult, 'why' | 'ms'>) => CounterDumpResult): Promise<CounterDumpResult> {
    try {
      let global: GlobalStats = {};
      await this.query.request(R.ctStatsGlobal, { globalStats: (g) => { global = g; } }, timeoutMs || undefined);
      const entries = global.entries ?? 0;
      if (entries > this.o.maxEntries) {
        this.counted.skipped++;
        if (why === 'stop' || !this.skipping) {
          this.log.info({ why, entries, max_entries: this.o.maxEntries },
            `counter dump skipped: the table holds ${entries} entries, more than collect.counter_dump_max_entries; open flows' rows keep the counters they had`);
        }
        this.skipping = true;
        return result({ entries, flows: 0, skipped: 'too_many_entries' });
      }
      if (this.skipping) this.log.info({ entries }, 'counter dumps resume: the table is within collect.counter_dump_max_entries again');
      this.skipping = false;
      let flows = 0;
      const dumped = this.query.request(R.ctDump, { ct: (r) => { flows++; this.emit(r); } });
      dumped.catch(() => undefined); // a dump cut short fails when its socket closes
      if ((await this.bounded(dumped.then(() => 'done' as const), timeoutMs, () => 'late' as const)) === 'late') {
        this.counted.skipped++;
        this.log.warn({ why, entries, flows, timeout_ms: timeoutMs }, `counter dump cut short after ${timeoutMs} ms (${flows} of about ${entries} entries): the others keep the counters they had`);
        return result({ entries, flows, skipped: 'timeout' });
      }
      this.counted.dumps++;
      this.counted.flows += flows;
      const r = result({ entries, flows });
      this.log[why === 'stop' ? 'info' : 'debug']({ why, flows, ms: r.ms }, 'counter dump done');
      return r;
    } catch (e) {
      this.counted.skipped++;
      if (this.closing && why === 'periodic') return result({ entries: 0, flows: 0, skipped: 'failed' });
      this.log.warn({ why, err: errorMessage(e) }, 'counter dump failed');
      return result({ entries: 0, flows: 0, skipped: 'failed' });
    }
  }
}
