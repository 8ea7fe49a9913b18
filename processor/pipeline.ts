/**
 * The processor's core, shared by `ctpipe process` (Kafka), `ctpipe run` (in memory) and file
 * replay: records go through the lifecycle engine, the statistics deltas and the detectors; the
 * rows they produce are written by a RowWriter (writer.ts) under a token per table and input
 * range, so a batch retried or replayed with the same range is stored once. The caller does not
 * move its input position until write() resolves true.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { CtpipeRecord } from '../contract/records.js';
import { Detectors, type DetectOptions, type DetectorsState } from './anomaly/detectors.js';
import type { AnomalyRow } from './anomaly/row.js';
import type { FlowRow } from './clickhouse/flow-columns.js';
import { anomalyRow, eventRow, healthRow, statsRow } from './clickhouse/rows.js';
import { LifecycleEngine, type EngineOptions, type EngineState } from './lifecycle/engine.js';
import { StatsDeltas, type StatsState } from './stats/deltas.js';
import type { SnapshotReader, SnapshotWriter } from './snapshot.js';
import { TABLES, type Store } from './store.js';
import { noRows, RowWriter, type Origin, type Rows, type WriteActivity } from './writer.js';

export interface PipelineOptions {
  store: Store;
  engine: Omit<EngineOptions, 'onRow' | 'onHealth'>;
  /** Anomaly detection on each host's statistics (none when absent). */
  detect?: DetectOptions;
  rawEvents: boolean;
  log: Logger;
  registry: Registry;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Inserts past this many bytes are split (writer.ts; tests). */
  maxInsertBytes?: number;
  /** Fills a flow row's names (Kubernetes, --kubernetes) before it is stored. */
  names?: RowNames;
}

export interface RowNames {
  fill(row: FlowRow): void;
}

export type { Rows };

/** What a pipeline did between two processor_stats rows (the Pipeline health dashboard). */
const noActivity = (): WriteActivity & { records: number } => ({ records: 0, rows: 0, inserts: 0, insert_seconds: 0, insert_max_seconds: 0, insert_errors: 0, dead_letters: 0 });

/** A pipeline's state as checkpoints stored it before binary snapshots (JSON; still loaded). */
export interface LegacyState {
  engine: EngineState;
  stats: StatsState;
  detectors?: DetectorsState;
}

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
    openFlows: new Gauge({ name: 'ctpipe_processor_open_flows', help: 'Open lifecycles in memory (all partitions of the processor)', registers: [registry] }),
    evictions: new Gauge({ name: 'ctpipe_processor_evictions', help: 'Lifecycles closed by the memory bound (cumulative)', registers: [registry] }),
    duplicates: new Gauge({ name: 'ctpipe_processor_duplicates', help: 'Duplicate records dropped (cumulative)', registers: [registry] }),
    gaps: new Counter({ name: 'ctpipe_processor_gap_records_total', help: 'Records missing from collector sequences', registers: [registry] }),
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
  private evictionsLogged = 0;
  private evictionsLoggedAt = 0;
  private activityAt = 0;
  private readonly writer: RowWriter;

  constructor(private readonly o: PipelineOptions) {
    this.m = pipelineMetrics(o.registry);
    this.writer = new RowWriter(o, () => this.activity);
    this.detectors = o.detect && new Detectors(o.detect);
    this.engine = new LifecycleEngine({
      ...o.engine,
      onRow: (r) => {
        o.names?.fill(r);
        this.buffers.flows.push(r);
        for (const a of this.detectors?.onFlow(r) ?? []) this.anomaly(a);
      },
      onHealth: (h) => {
        if (h.kind === 'gap') this.m.gaps.inc(h.count);
        this.buffers.pipeline_health.push(healthRow(h));
      },
    });
  }

  /**
   * Applies records (in stream order); rows accumulate until write(). `tick` false leaves the
   * engine's pass over the open flows (timeouts, refreshes: O(open flows)) to a later tick(), so a
   * caller feeding small slices pays it once per insert, not once per slice.
   */
  process(records: readonly CtpipeRecord[], tick = true): void {
    for (const r of records) {
      if (!this.engine.apply(r)) continue; // a duplicate (at-least-once delivery): already counted everywhere
      this.hosts.add(r.host);
      if (r.type === 'stats') {
        const row = this.stats.apply(r);
        if (row) {
          this.buffers.host_stats.push(statsRow(row));
          for (const a of this.detectors?.onStats(row) ?? []) this.anomaly(a);
        }
      } else if (r.type === 'invalid_packet') {
        this.detectors?.onInvalidPacket(r);
      } else if (r.type === 'exp_new' || r.type === 'exp_destroy') {
        for (const a of this.detectors?.onExpectation(r) ?? []) this.anomaly(a);
      } else if (r.type === 'new' || r.type === 'update' || r.type === 'destroy' || r.type === 'snapshot') {
        for (const a of this.detectors?.onFlowRecord(r) ?? []) this.anomaly(a);
        if (this.o.rawEvents) this.buffers.events.push(eventRow(r));
      }
    }
    if (tick) this.tick();
    this.activity.records += records.length;
    this.m.records.inc(records.length);
    // the processor's total (the budget its partitions share), not this partition's alone
    this.m.openFlows.set(this.o.engine.budget?.open ?? this.engine.openCount);
    const evicted = this.engine.counters.evictions - this.evictionsLogged;
    this.m.evictions.set(this.engine.counters.evictions);
    if (evicted > 0 && Date.now() - this.evictionsLoggedAt > 60_000) {
      this.o.log.warn({ evicted, total: this.engine.counters.evictions, open: this.engine.openCount },
        'open flows past process.max_open_flows: the oldest idle ones were evicted (closed as lost; one that ends later still gets its true end). Raise process.max_open_flows if memory allows, or add processors');
      this.evictionsLogged = this.engine.counters.evictions;
      this.evictionsLoggedAt = Date.now();
    }
    this.m.duplicates.set(this.engine.counters.duplicates);
  }

  /** Advances event time for the hosts of the records processed since the last tick (engine.tick). */
  tick(): void {
    if (this.hosts.size === 0) return;
    this.engine.tick(...this.hosts);
    this.hosts.clear();
  }

  /** Open anomalies seen, to count each once when it opens. */
  private readonly openAnomalies = new Set<string>();

  private anomaly(a: AnomalyRow): void {
    const k = `${a.host}|${a.netns ?? ''}|${a.kind}|${a.started_at.sec}.${a.started_at.nsec}`;
    if (a.ended_at !== null) this.openAnomalies.delete(k);
    else if (!this.openAnomalies.has(k)) {
      this.openAnomalies.add(k);
      this.m.anomalies.inc({ kind: a.kind });
    }
    this.buffers.anomalies.push(anomalyRow(a));
  }

  /** Whether the last insert reached ClickHouse. */
  /** This partition's state is let go (it moved away): its flows leave the processor's count. */
  dispose(): void {
    this.engine.dispose();
    this.m.openFlows.set(this.o.engine.budget?.open ?? 0);
  }

  get storeUp(): boolean {
    return this.writer.storeUp;
  }

  /** The state into a snapshot (checkpoint.ts); the pipeline must stay still until it is finished. */
  async save(w: SnapshotWriter): Promise<void> {
    await this.engine.save(w);
    w.json('stats', this.stats.exportState());
    w.json('detectors', this.detectors?.exportState() ?? null);
  }

  /** A fresh pipeline takes a snapshot's state. */
  restore(r: SnapshotReader): void {
    this.engine.restore(r);
    this.stats.importState(r.json<StatsState>('stats'));
    this.detectors?.importState(r.json<DetectorsState | null>('detectors') ?? undefined);
  }

  /** A checkpoint from before snapshots (JSON) into a fresh pipeline. */
  importLegacy(s: LegacyState): void {
    this.engine.importLegacy(s.engine);
    this.stats.importState(s.stats);
    this.detectors?.importState(s.detectors);
  }

  /** Dead letters: records that could not be decoded, with their coordinates. */
  deadLetter(row: { topic: string; partition: number; offset: string; reason: string; payload_hex: string }): void {
    this.activity.dead_letters++;
    this.buffers.dead_letters.push({ ...row, offset: Number(row.offset) });
  }

  /**
   * A processor_stats row of what this pipeline did since the last one (at most one per `everyMs`),
   * written with the next rows: `processor` names the process, `partition` its input (-1 for
   * `ctpipe run`), `lag` how far behind the input's end it is. Operational figures on the wall
   * clock: the one table whose rows a replay does not reproduce exactly.
   */
  noteActivity(processor: string, partition: number, lag: number, now = Date.now(), everyMs = 10_000): void {
    if (now - this.activityAt < everyMs) return;
    const ms = Math.floor(now);
    this.buffers.processor_stats.push({ ts: { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 }, processor, partition, lag, ...this.activity });
    this.activity = noActivity();
    this.activityAt = now;
  }

  /** Rows for open flows now (on shutdown, so long-lived flows are visible). */
  flushOpen(): void {
    this.engine.flushOpen();
  }

  /** Rows produced and not yet taken, every table's. */
  get pendingRows(): number {
    return TABLES.reduce((n, t) => n + this.buffers[t].length, 0);
  }

  /** The rows produced so far; the pipeline starts collecting afresh (so it can go on meanwhile). */
  takeRows(): Rows {
    const rows = this.buffers;
    this.buffers = noRows();
    return rows;
  }

  /** Writes the rows produced so far (writeRows of takeRows). */
  write(token: string, o?: WriteOptions): Promise<boolean> {
    return this.writeRows(this.takeRows(), token, o);
  }

  /**
   * Writes `rows` under `token` (the input range, e.g. topic:partition:from-to); false only when it
   * gave up waiting for ClickHouse (`shouldStop`), and then the caller must not advance its position.
   */
  writeRows(rows: Rows, token: string, o: WriteOptions = {}): Promise<boolean> {
    return this.writer.write(rows, token, o.origin ?? { input: token, partition: 0, offset: 0 }, o.shouldStop);
  }
}

export interface WriteOptions {
  /** Named in the dead letters of refused rows. */
  origin?: Origin;
  shouldStop?: () => boolean;
}
