/**
 * The detectors a pipeline runs on each host's statistics rows and finished lifecycles, with their configuration and
 * their state (checkpointed with the partition's, so baselines and open anomalies survive restarts
 * and rebalances). Hosts are keyed by name; a host's records stay in one Kafka partition.
 */
import type { CtRecord, ExpRecord, InvalidPacketRecord } from '../../contract/records.js';
import type { HostStatsRow } from '../stats/deltas.js';
import type { EpisodeOptions } from './episode.js';
import { InvalidSpikeDetector, type InvalidSpikeOptions, type InvalidSpikeState } from './invalid-spike.js';
import type { FlowRow } from '../lifecycle/flow-row.js';
import type { AnomalyRow } from './row.js';
import { RelatedDetector, type RelatedOptions, type RelatedState } from './related.js';
import { ScanDetector, type ScanOptions, type ScanState } from './scans.js';
import { TablePressureDetector, type TablePressureOptions, type TablePressureState } from './table-pressure.js';

export interface DetectOptions {
  episode: EpisodeOptions;
  invalid: Omit<InvalidSpikeOptions, keyof EpisodeOptions>;
  table: Omit<TablePressureOptions, keyof EpisodeOptions>;
  scans: ScanOptions;
  related: RelatedOptions;
}

export interface DetectorsState {
  invalid: InvalidSpikeState;
  table: TablePressureState;
  scans?: ScanState;
  related?: RelatedState;
}

export class Detectors {
  private readonly invalid: InvalidSpikeDetector;
  private readonly table: TablePressureDetector;
  private readonly scans: ScanDetector;
  private readonly related: RelatedDetector;

  constructor(o: DetectOptions) {
    this.invalid = new InvalidSpikeDetector({ ...o.episode, ...o.invalid });
    this.table = new TablePressureDetector({ ...o.episode, ...o.table });
    this.scans = new ScanDetector(o.scans);
    this.related = new RelatedDetector(o.related);
  }

  /** A finished (or refreshed) lifecycle. */
  onFlow(row: FlowRow): AnomalyRow[] {
    const a = this.scans.onFlow(row);
    const b = this.related.onFlow(row);
    // called per row: arrays are joined only when both have rows
    return b.length === 0 ? a : a.length === 0 ? b : [...a, ...b];
  }

  onFlowRecord(r: CtRecord): AnomalyRow[] {
    return this.related.onFlowRecord(r);
  }

  onExpectation(r: ExpRecord): AnomalyRow[] {
    return this.related.onExpectation(r);
  }

  onInvalidPacket(r: InvalidPacketRecord): void {
    this.invalid.sample(r);
  }

  onStats(row: HostStatsRow): AnomalyRow[] {
    const out = [...this.scans.advance(row.host, row.ts), ...this.related.advance(row.host, row.ts), ...this.table.apply(row)];
    const a = this.invalid.apply(row);
    if (a) out.push(a);
    return out;
  }

  exportState(): DetectorsState {
    return { invalid: this.invalid.exportState(), table: this.table.exportState(), scans: this.scans.exportState(), related: this.related.exportState() };
  }

  importState(s: DetectorsState | undefined): void {
    if (!s) return; // a checkpoint from before the detectors: they start learning
    this.invalid.importState(s.invalid);
    this.table.importState(s.table);
    if (s.scans) this.scans.importState(s.scans);
    if (s.related) this.related.importState(s.related);
  }
}
