/**
 * Keeps ClickHouse's networks in step with the file: loaded at start (a bad file stops the start,
 * like any bad setting), then again whenever the file changes (its size, time or inode, polled:
 * an editor's rename-over and a generator's rewrite both show) or the process gets SIGHUP. A
 * changed file that fails its check, or that ClickHouse refuses, is logged and the names loaded
 * before stay. Loads run one at a time; a change during one is loaded after it.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Store } from '../store.js';
import { readNetworksFile } from './file.js';
import { loadNetworks, type LoadResult } from './load.js';

export interface WatchOptions {
  file: string;
  processor: string;
  cluster?: string;
  log: Logger;
  /** How often the file's metadata is polled. */
  pollMs?: number;
}

export class NetworksWatcher {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Loads done and refused since start (tests and logs). */
  loads = 0;
  refused = 0;
  private readonly onHup = () => {
    this.opts.log.info({ file: this.opts.file }, 'SIGHUP: reloading the networks file');
    this.trigger();
  };
  private readonly onChange = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
    this.trigger();
  };

  private constructor(private readonly store: Store, private readonly opts: WatchOptions) {}

  /** Loads the file (throwing if it is bad or refused), then watches it. */
  static async start(store: Store, opts: WatchOptions): Promise<NetworksWatcher> {
    const w = new NetworksWatcher(store, opts);
    w.report(await w.load());
    watchFile(opts.file, { interval: opts.pollMs ?? 1000, persistent: false }, w.onChange);
    process.on('SIGHUP', w.onHup);
    return w;
  }

  private async load(): Promise<LoadResult> {
    const parsed = readNetworksFile(this.opts.file);
    return loadNetworks(this.store, parsed, this.opts);
  }

  private report(r: LoadResult): void {
    this.loads++;
    this.opts.log.info({ file: this.opts.file, networks: r.networks, in_dictionary: r.loaded, generation: r.generation }, 'networks loaded: new flow rows carry these names');
  }

  /** Loads the file again (after the load in progress, if any). */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          this.report(await this.load());
        } catch (e) {
          this.refused++;
          this.opts.log.error({ file: this.opts.file, err: errorMessage(e) }, 'networks file not loaded: flows keep the names loaded before');
        }
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
  }

  /** Stops watching; waits for a load in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    unwatchFile(this.opts.file, this.onChange);
    process.off('SIGHUP', this.onHup);
    await this.running;
  }
}
