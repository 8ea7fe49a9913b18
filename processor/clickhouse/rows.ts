/** Rows in the form ClickHouse's JSONEachRow input takes (times as 'YYYY-MM-DD hh:mm:ss.nnnnnnnnn'). */
import type { AnomalyRow } from '../anomaly/row.js';
import type { FlowRow, Time } from '../lifecycle/flow-row.js';
import type { HealthEvent } from '../lifecycle/engine.js';
import type { HostStatsRow } from '../stats/deltas.js';
import type { CtRecord } from '../../contract/records.js';
import { TCP_STATE_NAMES } from '../../contract/kernel.js';
import { tsvText } from './tsv.js';

/**
 * DateTime64(9) as ClickHouse parses it fastest: unix seconds with nine decimals. (No Date object:
 * a flow row has up to a dozen times, and formatting them was most of the row's cost.)
 */
export function chTime(t: Time): string {
  const ns = String(t.nsec);
  return `${t.sec}.${'000000000'.slice(ns.length)}${ns}`;
}


/** `flows` columns in the order flowTsv writes them. */
export const FLOW_COLUMNS = [
  'host', 'run', 'flow_id', 'ct_id', 'family', 'proto', 'orig_src', 'orig_dst', 'orig_sport', 'orig_dport',
  'reply_src', 'reply_dst', 'reply_sport', 'reply_dport', 'icmp_type', 'icmp_code', 'first_seen', 'established_at',
  'seen_reply_at', 'assured_at', 'ended_at', 'end_reason', 'lost_by', 'duration_ms', 'tcp_states', 'tcp_state_times',
  'final_tcp_state', 'assured', 'seen_reply', 'conn_state', 'handshake_ms', 'orig_packets', 'orig_bytes',
  'reply_packets', 'reply_bytes', 'helper', 'related', 'master_flow_id', 'mark', 'zone', 'nat', 'nat_src', 'nat_dst',
  'snapshot', 'resynced', 'version',
] as const;

const N = '\\N';
const tOpt = (t: Time | null) => (t ? chTime(t) : N);
const nOpt = (v: number | null) => (v === null ? N : String(v));

/**
 * One `flows` row as a TabSeparated line (tsv.ts has the grammar), in FLOW_COLUMNS order. Written
 * field by field because this is the hottest code after the engine: only the free-text columns
 * (host, run, helper) can hold characters that need escaping; the rest are numbers, hex ids,
 * addresses and names ctpipe chose.
 */
export function flowTsv(r: FlowRow): string {
  return `${tsvText(r.host)}\t${tsvText(r.run)}\t${r.flow_id}\t${r.ct_id}\t${r.family}\t${r.proto}\t${r.orig_src}\t${r.orig_dst}\t${r.orig_sport}\t${r.orig_dport}\t` +
    `${r.reply_src}\t${r.reply_dst}\t${r.reply_sport}\t${r.reply_dport}\t${nOpt(r.icmp_type)}\t${nOpt(r.icmp_code)}\t${chTime(r.first_seen)}\t${tOpt(r.established_at)}\t` +
    `${tOpt(r.seen_reply_at)}\t${tOpt(r.assured_at)}\t${tOpt(r.ended_at)}\t${r.end_reason}\t${r.lost_by}\t${nOpt(r.duration_ms)}\t` +
    `[${r.tcp_states.map((x) => `'${x}'`).join(',')}]\t[${r.tcp_state_times.map((t) => `'${chTime(t)}'`).join(',')}]\t` +
    `${r.final_tcp_state}\t${r.assured}\t${r.seen_reply}\t${r.conn_state}\t${nOpt(r.handshake_ms)}\t${r.orig_packets}\t${r.orig_bytes}\t` +
    `${r.reply_packets}\t${r.reply_bytes}\t${tsvText(r.helper)}\t${r.related}\t${r.master_flow_id}\t${r.mark}\t${r.zone}\t${r.nat}\t${r.nat_src}\t${r.nat_dst}\t` +
    `${r.snapshot}\t${r.resynced}\t${r.version}`;
}

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
