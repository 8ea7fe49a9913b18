/**
 * `ctpipe run`: the main job on one machine. The collector and the processor in one process,
 * linked in memory (no Kafka), writing to the embedded ClickHouse (chDB at ./data by default) or
 * any server given with --clickhouse-url. A status line shows events/s, open flows and rows.
 */
import { Registry } from 'prom-client';
import type { Collector } from '../../collector/collector.js';
import type { NetnsFollower } from '../../collector/netns-follower.js';
import { collectorMetrics } from '../../collector/metrics.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { serveOps } from '../../common/http.js';
import { errorMessage } from '../../common/errors.js';
import { redactUrls } from '../../common/redact.js';
import { createLogger, type Logger } from '../../common/log.js';
import { Pipeline } from '../../processor/pipeline.js';
import { startKubernetesNames } from '../../processor/k8s/client.js';
import { pipelineOptions } from '../../processor/options.js';
import { OPEN_ROWS_AT_STOP, PipelineSink } from '../../processor/sink.js';
import { restoreState } from '../../processor/checkpoint.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { connectMigratedStore } from '../store.js';
import { fetchTop, topLoop } from '../top.js';
import type { Store } from '../../processor/store.js';
import { pendingLossFile, reportUnstored, reserveLossReport, storePendingLosses, unstoredEvent, type Unstored } from '../../processor/unstored.js';
import { topOptions } from './top.js';
import { collectorFor, collectorOptions, prepareCollect, untilStopped } from './collect.js';
import { watchNetworks } from './networks.js';

export const runSpec: CommandSpec = {
  name: 'run',
  summary: 'collector and processor in one process over the embedded ClickHouse: the main job on one machine',
  usage: 'ctpipe run [--clickhouse-url chdb:./data] [--duration 60s] [flags]',
  parts: ['host', 'log', 'ops', 'collector', 'feed', 'store', 'database', 'schema', 'pipeline', 'live', 'local', 'k8s', 'enrich'],
  own: {
    top: { type: 'boolean', description: 'show the live view of ctpipe top (busiest hosts, ports, states) instead of the status line' },
  },
};

export async function runRun(cfg: Config, own: Record<string, unknown> = {}): Promise<number> {
  // with --top the screen is the view's: only warnings and errors are logged
  const log = createLogger(own.top && cfg.log_level === 'info' ? 'warn' : cfg.log_level, 'ctpipe-run');
  const local = await startRun(cfg, log);
  const o = topOptions({});
  const status = own.top
    ? topLoop(() => fetchTop(local.store, cfg.clickhouse.database, o.windowS), { intervalMs: o.intervalMs, onError: (e) => log.warn({ err: e.message }, 'top view query failed') })
    : statusLine(() => local.progress());
  const done = untilStopped(cfg, (why) => {
    status.stop();
    return local.stop(why);
  }, (why) => local.abort(why));
  log.info({ host: cfg.host, run: local.collector.run, store: redactUrls(cfg.clickhouse.url) }, 'running: collector and processor');
  await done;
  return local.failure() || local.unstored.records > 0 ? 1 : 0;
}

/** What the status line shows. */
export interface Progress {
  events: number;
  open: number;
  rows: number;
  /** Records waiting for the processor, and raw event bytes held for it. */
  backlog: number;
  held: number;
}

export interface LocalRun {
  collector: Collector | NetnsFollower;
  pipeline: Pipeline;
  store: Store;
  progress(): Progress;
  /**
   * Stops collecting, writes what is left and closes the store (once; later calls share it). A
   * failure to write does not hold the stop up: the store and the nft table are closed anyway.
   */
  stop(why: string): Promise<void>;
  /** Why rows could not be stored, if writing stopped (the run then exits 1). */
  failure(): string | undefined;
  /**
   * A stop that no longer waits for ClickHouse (a second signal): what is not stored by then is
   * reported as a loss; past `ABORT_MS` the process exits whatever is still pending.
   */
  abort(why: string): void;
  /** What the stop could not store (records 0: everything was stored). */
  readonly unstored: Unstored;
}

/** How long an aborted stop may still take before the process exits regardless. */
const ABORT_MS = 15_000;

/** Where `ctpipe run` keeps the state of a host between runs. */
export const runStateKey = (host: string) => ({ group: 'ctpipe-run', topic: `run:${host}`, partition: 0 });

/**
 * The collector and the processor in this process, linked in memory; `ctpipe run` and `ctpipe demo`.
 * With `keepState` (run's way) the state is checkpointed and restored by the next start, whose
 * table dump continues the flows still open; without it (the demo's) open flows get a row at stop.
 */
export async function startRun(cfg: Config, log: Logger, keepState = true): Promise<LocalRun> {
  const registry = new Registry();
  const metrics = collectorMetrics(registry, { perCpu: cfg.collect.metrics_per_cpu });
  const undo = await prepareCollect(cfg, log, metrics);
  const store = await connectMigratedStore(cfg, log).catch(async (e: unknown) => {
    await undo();
    throw e;
  });
  const networks = await watchNetworks(cfg, store, log, `run:${cfg.host}`).catch(async (e: unknown) => {
    await store.close().catch(() => undefined);
    await undo();
    throw e;
  });
  await storePendingLosses(store, pendingLossFile(cfg.clickhouse.url), log);
  reserveLossReport(pendingLossFile(cfg.clickhouse.url), log);
  const k8s = await startKubernetesNames(cfg, log, registry).catch(async (e: unknown) => {
    await store.close();
    await undo();
    throw e;
  });
  const pipeline = new Pipeline(pipelineOptions(cfg, store, log, registry, undefined, k8s?.names));
  const key = runStateKey(cfg.host);
  if (keepState) {
    const t0 = Date.now();
    const cp = await store.loadCheckpoint(key).catch(async (e: unknown) => {
      await networks?.stop();
      await store.close();
      await undo();
      throw e;
    });
    if (cp) {
      await restoreState(pipeline, cp.chunks);
      log.info({ open: pipeline.engine.openCount, ms: Date.now() - t0 }, 'state restored from the last run; its table dump will continue the flows still open');
    }
  }
  const options = collectorOptions(cfg);
  options.counterDumps = { ...options.counterDumps!, stopTimeoutMs: cfg.collect.counter_dump_at_stop };
  const sink = new PipelineSink(pipeline, {
    flushMs: cfg.process.flush, processor: `run:${cfg.host}`, maxBacklog: cfg.process.max_backlog, log, stamper: options.stamper,
    checkpoint: keepState ? { store, key, everyMs: cfg.process.checkpoint } : undefined,
  });
  const collector = collectorFor(cfg, { ...options, sink, sockets: openNetfilterSocket, metrics, log }, registry);
  sink.upstream = () => collector.waitingBytes;
  if (cfg.metrics.enabled) {
    await serveOps(cfg.metrics.listen, registry, () => ({
      ok: collector.healthy && pipeline.storeUp && !sink.failure,
      detail: {
        run: collector.run, seq: collector.lastSeq, processed: sink.processed, backlog: sink.backlog, held_bytes: collector.heldEvents, open_flows: pipeline.engine.openCount,
        store_up: pipeline.storeUp, error: collector.lastError ?? sink.failure,
      },
    }));
  }
  let stopping: Promise<void> | undefined;
  let failed: string | undefined;
  const stop = (why: string) => {
    stopping ??= (async () => {
      log.info({ why }, 'stopping: writing what is left (a second signal stops without waiting for ClickHouse)');
      const t0 = Date.now();
      // the stop dump feeds the open flows' rows: none when they will not be written (sink.ts)
      await collector.stop(!keepState || pipeline.engine.openCount <= OPEN_ROWS_AT_STOP).catch((e: unknown) => log.error({ err: errorMessage(e) }, 'the collector did not stop cleanly'));
      const collected = Date.now();
      await sink.close().catch((e: unknown) => void (failed = errorMessage(e)));
      failed ??= sink.failure;
      await k8s?.stop();
      const written = Date.now();
      if (sink.unstored.records > 0) {
        const why = sink.failure ? `ClickHouse could not run the inserts (${sink.failure})` : 'ClickHouse did not take them before the stop (second signal)';
        await reportUnstored(store, unstoredEvent(cfg.host, collector.run, sink.unstored, why), pendingLossFile(cfg.clickhouse.url), log);
      }
      await networks?.stop();
      await store.close().catch((e: unknown) => log.warn({ err: errorMessage(e) }, 'closing the store failed'));
      await undo();
      const counts = {
        seq: collector.lastSeq, records: sink.processed, dropped: sink.dropped, rows: pipeline.engine.counters.rows, open: pipeline.engine.openCount,
        collector_ms: collected - t0, write_ms: written - collected, close_ms: Date.now() - written,
      };
      if (failed) log.error({ ...counts, err: failed }, 'stopped; what was left could not be stored');
      else log.info(counts, 'stopped');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    })();
    return stopping;
  };
  try {
    await collector.start();
  } catch (e) {
    await sink.close().catch(() => undefined);
    await k8s?.stop();
    await networks?.stop();
    await store.close().catch(() => undefined);
    await undo();
    throw e;
  }
  const abort = (why: string) => {
    if (sink.aborted) return;
    log.warn({ why }, `second signal: stopping without waiting for ClickHouse; what is not stored is reported as a loss (exit within ${ABORT_MS / 1000} s)`);
    sink.abort();
    setTimeout(() => {
      log.error({ unstored_records: sink.unstored.records, backlog: sink.backlog }, `the stop did not finish within ${ABORT_MS / 1000} s of the second signal: exiting now`);
      void undo().finally(() => log.flush(() => process.exit(1)));
    }, ABORT_MS).unref();
    if (!stopping) void stop(why);
  };
  return {
    collector, pipeline, store, stop, failure: () => failed ?? sink.failure, abort, unstored: sink.unstored,
    progress: () => ({ events: collector.lastSeq, open: pipeline.engine.openCount, rows: pipeline.engine.counters.rows, backlog: sink.backlog, held: collector.heldEvents }),
  };
}

/** Events/s, open flows and rows written: on a terminal a live line, otherwise a log every 30 s. */
function statusLine(read: () => Progress): { stop(): void } {
  const tty = process.stderr.isTTY;
  let last = read();
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const now = read();
    const rate = ((now.events - last.events) * 1000) / Math.max(1, Date.now() - lastAt);
    last = now;
    lastAt = Date.now();
    const waiting = now.backlog + now.held > 0 ? ` · ${now.backlog} records and ${Math.round(now.held / 2 ** 20)} MiB of events waiting` : '';
    const line = `${Math.round(rate)} events/s · ${now.open} open flows · ${now.rows} rows written${waiting} · ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MiB resident`;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${JSON.stringify({ level: 30, time: Date.now(), name: 'ctpipe-run', msg: line })}\n`);
  }, tty ? 2000 : 30_000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write('\n');
    },
  };
}
