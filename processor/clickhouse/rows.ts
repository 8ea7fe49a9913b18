/**
 * Rows in their tables' forms (one property per column of the table's list: tables.ts,
 * flow-columns.ts), from what the processor's parts produce. `flows` rows come straight from the
 * engine (rowOf); flowTsv is their TabSeparated line, the form inserts took before RowBinary
 * (bench/ingest.ts compares the two).
 */
import type { AnomalyRow } from '../anomaly/row.js';
import type { HealthEvent } from '../lifecycle/engine.js';
import type { HostStatsRow } from '../stats/deltas.js';
import type { CtRecord, StatField } from '../../contract/records.js';
import { TCP_STATE_NAMES } from '../../contract/kernel.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from './flow-columns.js';
import type { AnomalyTableRow, EventTableRow, HealthTableRow, HostStatsTableRow } from './tables.js';
import { tsvEncoder } from './tsv.js';

/** The `flows` insert's column list, in the order of its encoders. */
export const FLOW_COLUMNS: readonly string[] = FLOW_COLUMN_DEFS.map((c) => c.name);

/** One `flows` row as a TabSeparated line (tsv.ts), in FLOW_COLUMNS order. */
export const flowTsv = tsvEncoder<FlowRow>(FLOW_COLUMN_DEFS);

export function anomalyRow(a: AnomalyRow): AnomalyTableRow {
  return {
    host: a.host, netns: a.netns ?? '', kind: a.kind, severity: a.severity, started_at: a.started_at, ended_at: a.ended_at,
    score: a.score, baseline: a.baseline, observed: a.observed, details: JSON.stringify(a.details), flow_ids: a.flow_ids, version: a.version,
  };
}

export function statsRow(r: HostStatsRow): HostStatsTableRow {
  const n = (f: StatField) => r[f] as number;
  return {
    host: r.host, netns: r.netns, run: r.run, ts: r.ts, interval_s: r.interval_s, entries: r.entries, max_entries: r.max_entries,
    found: n('found'), invalid: n('invalid'), insert: n('insert'), insert_failed: n('insert_failed'), drop: n('drop'), early_drop: n('early_drop'),
    error: n('error'), search_restart: n('search_restart'), clash_resolve: n('clash_resolve'), chaintoolong: n('chaintoolong'),
    exp_new: r.exp_new, exp_create: r.exp_create, exp_delete: r.exp_delete, cpus: r.cpus, reset: r.reset, collector_events: r.collector_events,
  };
}

export function healthRow(h: HealthEvent): HealthTableRow {
  return { host: h.host, run: h.run, ts: h.at, kind: h.kind, count: h.count, first_seq: h.first_seq ?? null, last_seq: h.last_seq ?? null, detail: h.detail };
}

export function eventRow(r: CtRecord): EventTableRow {
  return {
    host: r.host, run: r.run, seq: r.seq, ts: r, type: r.type, ct_id: r.id, proto: r.proto,
    orig_src: r.orig.src, orig_dst: r.orig.dst, orig_sport: r.orig.sport ?? 0, orig_dport: r.orig.dport ?? 0,
    tcp_state: r.tcp_state === undefined ? '' : (TCP_STATE_NAMES[r.tcp_state] ?? String(r.tcp_state)), status: r.status,
  };
}
