/**
 * Rows in the forms ClickHouse's inputs take: `flows` as TabSeparated lines, from its column list
 * (flow-columns.ts); the other tables as JSONEachRow objects (times as unix seconds.nanoseconds).
 */
import type { AnomalyRow } from '../anomaly/row.js';
import type { HealthEvent } from '../lifecycle/engine.js';
import type { HostStatsRow } from '../stats/deltas.js';
import type { CtRecord } from '../../contract/records.js';
import { TCP_STATE_NAMES } from '../../contract/kernel.js';
import { chTime } from './ch-type.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from './flow-columns.js';
import { tsvEncoder } from './tsv.js';

/** The `flows` insert's column list, in the order flowTsv writes them. */
export const FLOW_COLUMNS: readonly string[] = FLOW_COLUMN_DEFS.map((c) => c.name);

/** One `flows` row as a TabSeparated line (tsv.ts), in FLOW_COLUMNS order. */
export const flowTsv = tsvEncoder<FlowRow>(FLOW_COLUMN_DEFS);

export function anomalyToCh(a: AnomalyRow): Record<string, unknown> {
  return { ...a, started_at: chTime(a.started_at), ended_at: a.ended_at && chTime(a.ended_at), details: JSON.stringify(a.details) };
}

export function statsToCh(r: HostStatsRow): Record<string, unknown> {
  return { ...r, ts: chTime(r.ts) };
}

export function healthToCh(h: HealthEvent): Record<string, unknown> {
  return { host: h.host, run: h.run, ts: chTime(h.at), kind: h.kind, count: h.count, first_seq: h.first_seq ?? null, last_seq: h.last_seq ?? null, detail: h.detail };
}

export function eventToCh(r: CtRecord): Record<string, unknown> {
  return {
    host: r.host, run: r.run, seq: r.seq, ts: chTime(r), type: r.type, ct_id: r.id, proto: r.proto,
    orig_src: r.orig.src, orig_dst: r.orig.dst, orig_sport: r.orig.sport ?? 0, orig_dport: r.orig.dport ?? 0,
    tcp_state: r.tcp_state === undefined ? '' : (TCP_STATE_NAMES[r.tcp_state] ?? String(r.tcp_state)), status: r.status,
  };
}
