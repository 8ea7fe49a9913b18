/**
 * The processor's core, shared by `ctpipe process` (Kafka) and `ctpipe run` (in memory): records
 * go through the lifecycle engine and the statistics deltas; the rows they produce are inserted
 * into ClickHouse under a deterministic deduplication token per table and input range, so a batch
 * retried or replayed with the same range is stored once. Inserts are retried until they succeed;
 * the caller does not move its input position until write() resolves.
 */
import { Readable } from 'node:stream';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isCtpipeError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { CtpipeRecord } from '../contract/records.js';
import { Detectors, type DetectOptions, type DetectorsState } from './anomaly/detectors.js';
import type { AnomalyRow } from './anomaly/row.js';
import { anomalyToCh, eventToCh, FLOW_COLUMNS, flowTsv, healthToCh, statsToCh } from './clickhouse/rows.js';
import { retrying } from './clickhouse/retry.js';
import type { Store } from './clickhouse/store.js';
import { LifecycleEngine, type EngineOptions, type EngineState } from './lifecycle/engine.js';
import { StatsDeltas, type StatsState } from './stats/deltas.js';

export interface PipelineOptions {
  store: Store;
  db: string;
  engine: Omit<EngineOptions, 'onRow' | 'onHealth'>;
  /** Anomaly detection on each host's statistics (none when absent). */
  detect?: DetectOptions;
  rawEvents: boolean;
  log: Logger;
  registry: Registry;
  retryMinMs?: number;
  retryMaxMs?: number;
}

type Table = 'flows' | 'host_stats' | 'pipeline_health' | 'anomalies' | 'events' | 'dead_letters' | 'processor_stats';

/** Rows taken from a pipeline, per table, to be written under one token. */
export type Rows = Record<Table, unknown[]>;
const noRows = (): Rows => ({ flows: [], host_stats: [], pipeline_health: [], anomalies: [], events: [], dead_letters: [], processor_stats: [] });

/** What a pipeline did between two processor_stats rows (the Pipeline health dashboard). */
const noActivity = () => ({ records: 0, rows: 0, inserts: 0, insert_seconds: 0, insert_max_seconds: 0, insert_errors: 0, dead_letters: 0 });

const metricsByRegistry = new WeakMap<Registry, ReturnType<typeof createMetrics>>();

/** One set per registry: a processor runs one pipeline per partition, all reporting together. */
function pipelineMetrics(registry: Registry): ReturnType<typeof createMetrics> {
  let m = metricsByRegistry.get(registry);
  if (!m) metricsByRegistry.set(registry, (m = createMetrics(registry)));
  return m;
}

function createMetrics(registry: Registry) {
  return {
    records: new Counter({ name: 'ctpipe_processor_records_total', help: 'Collector records processed', registers: [registry] }),
    rows: new Counter({ name: 'ctpipe_processor_rows_total', help: 'Rows inserted, by table', labelNames: ['table'], registers: [registry] }),
    insertErrors: new Counter({ name: 'ctpipe_processor_insert_errors_total', help: 'Failed ClickHouse inserts (each is retried)', registers: [registry] }),
    insertSeconds: new Histogram({ name: 'ctpipe_processor_insert_seconds', help: 'ClickHouse insert latency', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    openFlows: new Gauge({ name: 'ctpipe_processor_open_flows', help: 'Open lifecycles in memory', registers: [registry] }),
    evictions: new Gauge({ name: 'ctpipe_processor_evictions', help: 'Lifecycles closed by the memory bound (cumulative)', registers: [registry] }),
    duplicates: new Gauge({ name: 'ctpipe_processor_duplicates', help: 'Duplicate records dropped (cumulative)', registers: [registry] }),
    gaps: new Counter({ name: 'ctpipe_processor_gap_records_total', help: 'Records missing from collector sequences', registers: [registry] }),
    storeUp: new Gauge({ name: 'ctpipe_processor_store_up', help: '1 when the last ClickHouse insert succeeded', registers: [registry] }),
    anomalies: new Counter({ name: 'ctpipe_processor_anomalies_opened_total', help: 'Anomalies opened, by kind', labelNames: ['kind'], registers: [registry] }),
  };
}

export class Pipeline {
  readonly engine: LifecycleEngine;
  private readonly stats = new StatsDeltas();
  private readonly detectors: Detectors | undefined;
  private buffers: Rows = noRows();
  private readonly hosts = new Set<string>();
  private readonly m: ReturnType<typeof pipelineMetrics>;
  private activity = noActivity();
  private activityAt = 0;
  storeUp = true;

  constructor(private readonly o: PipelineOptions) {
    this.m = pipelineMetrics(o.registry);
    this.m.storeUp.set(1);
    this.detectors = o.detect && new Detectors(o.detect);
    this.engine = new LifecycleEngine({
      ...o.engine,
      onRow: (r) => {
        this.buffers.flows.push(flowTsv(r));
        for (const a of this.detectors?.onFlow(r) ?? []) this.anomaly(a);
      },
      onHealth: (h) => {
        if (h.kind === 'gap') this.m.gaps.inc(h.count);
        this.buffers.pipeline_health.push(healthToCh(h));
      },
    });
  }

  /** Applies records (in stream order); rows accumulate until write(). */
  process(records: readonly CtpipeRecord[]): void {
    for (const r of records) {
      if (!this.engine.apply(r)) continue; // a duplicate (at-least-once delivery): already counted everywhere
      this.hosts.add(r.host);
      if (r.type === 'stats') {
        const row = this.stats.apply(r);
        if (row) {
          this.buffers.host_stats.push(statsToCh(row));
          for (const a of this.detectors?.onStats(row) ?? []) this.anomaly(a);
        }
      } else if (r.type === 'invalid_packet') {
        this.detectors?.onInvalidPacket(r);
      } else if (r.type === 'exp_new' || r.type === 'exp_destroy') {
        for (const a of this.detectors?.onExpectation(r) ?? []) this.anomaly(a);
      } else if (r.type === 'new' || r.type === 'update' || r.type === 'destroy' || r.type === 'snapshot') {
        for (const a of this.detectors?.onFlowRecord(r) ?? []) this.anomaly(a);
        if (this.o.rawEvents) this.buffers.events.push(eventToCh(r));
      }
    }
    this.engine.tick(...this.hosts);
    this.hosts.clear();
    this.activity.records += records.length;
    this.m.records.inc(records.length);
    this.m.openFlows.set(this.engine.openCount);
    this.m.evictions.set(this.engine.counters.evictions);
    this.m.duplicates.set(this.engine.counters.duplicates);
  }

  /** Open anomalies seen, to count each once when it opens. */
  private readonly openAnomalies = new Set<string>();

  private anomaly(a: AnomalyRow): void {
    const k = `${a.host}|${a.kind}|${a.started_at.sec}.${a.started_at.nsec}`;
    if (a.ended_at !== null) this.openAnomalies.delete(k);
    else if (!this.openAnomalies.has(k)) {
      this.openAnomalies.add(k);
      this.m.anomalies.inc({ kind: a.kind });
    }
    this.buffers.anomalies.push(anomalyToCh(a));
  }

  exportState(): { engine: EngineState; stats: StatsState; detectors?: DetectorsState } {
    return { engine: this.engine.exportState(), stats: this.stats.exportState(), detectors: this.detectors?.exportState() };
  }

  importState(s: { engine: EngineState; stats: StatsState; detectors?: DetectorsState }): void {
    this.engine.importState(s.engine);
    this.stats.importState(s.stats);
    this.detectors?.importState(s.detectors);
  }

  /** Dead letters: records that could not be decoded, with their coordinates. */
  deadLetter(row: { topic: string; partition: number; offset: string; reason: string; payload_hex: string }): void {
    this.activity.dead_letters++;
    this.buffers.dead_letters.push(row);
  }

  /**
   * A processor_stats row of what this pipeline did since the last one (at most one per `everyMs`),
   * written with the next rows: `processor` names the process, `partition` its input (-1 for
   * `ctpipe run`), `lag` how far behind the input's end it is. Operational figures on the wall
   * clock: the one table whose rows a replay does not reproduce exactly.
   */
  noteActivity(processor: string, partition: number, lag: number, now = Date.now(), everyMs = 10_000): void {
    if (now - this.activityAt < everyMs) return;
    this.buffers.processor_stats.push({ ts: (now / 1000).toFixed(3), processor, partition, lag, ...this.activity });
    this.activity = noActivity();
    this.activityAt = now;
  }

  /** Rows for open flows now (on shutdown, so long-lived flows are visible). */
  flushOpen(): void {
    this.engine.flushOpen();
  }

  /** The rows produced so far; the pipeline starts collecting afresh (so it can go on meanwhile). */
  takeRows(): Rows {
    const rows = this.buffers;
    this.buffers = noRows();
    return rows;
  }

  /** Inserts the rows produced so far (writeRows of takeRows). */
  write(token: string, shouldStop?: () => boolean): Promise<boolean> {
    return this.writeRows(this.takeRows(), token, shouldStop);
  }

  /**
   * Inserts `rows`; `token` names the input range (e.g. topic:partition:from-to). Retries until
   * ClickHouse acknowledges (or `shouldStop` says to give up), so nothing derived from the range is
   * lost; returns false only when it gave up, and then the caller must not advance its position.
   */
  async writeRows(all: Rows, token: string, shouldStop: () => boolean = () => false): Promise<boolean> {
    const tables = Object.entries(all) as [Table, unknown[]][];
    for (const [table, rows] of tables) {
      if (rows.length === 0) continue;
      try {
        await retrying(async () => {
          const end = this.m.insertSeconds.startTimer();
          try {
            await this.o.store.insert({
              table: `${this.o.db}.${table}`,
              ...(table === 'flows'
                ? { values: Readable.from([Buffer.from(`${rows.join('\n')}\n`)], { objectMode: false }), format: 'TabSeparated' as const, columns: [...FLOW_COLUMNS] as [string, ...string[]] }
                : { values: rows, format: 'JSONEachRow' as const }),
              clickhouse_settings: { insert_deduplication_token: `${table}:${token}`, insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, optimize_on_insert: 0 },
            });
          } finally {
            const took = end(); // seconds
            this.activity.inserts++;
            this.activity.insert_seconds += took;
            this.activity.insert_max_seconds = Math.max(this.activity.insert_max_seconds, took);
          }
        }, {
          minMs: this.o.retryMinMs, maxMs: this.o.retryMaxMs, shouldStop,
          onError: (e) => {
            this.m.insertErrors.inc();
            this.activity.insert_errors++;
            if (this.storeUp) this.o.log.warn({ err: e.message, table, rows: rows.length }, 'ClickHouse insert failed; holding the input position and retrying');
            this.storeUp = false;
            this.m.storeUp.set(0);
          },
        });
      } catch (e) {
        if (isCtpipeError(e, 'STORE_UNAVAILABLE')) return false;
        throw e;
      }
      this.m.rows.inc({ table }, rows.length);
      this.activity.rows += rows.length;
      all[table] = []; // written: a second call with the same rows skips it
      if (!this.storeUp) this.o.log.info('ClickHouse accepts inserts again');
      this.storeUp = true;
      this.m.storeUp.set(1);
    }
    return true;
  }
}
