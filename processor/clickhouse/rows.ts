/** Rows in the form ClickHouse's JSONEachRow input takes (times as 'YYYY-MM-DD hh:mm:ss.nnnnnnnnn'). */
import type { FlowRow, Time } from '../lifecycle/flow-row.js';
import type { HealthEvent } from '../lifecycle/engine.js';
import type { HostStatsRow } from '../stats/deltas.js';
import type { CtRecord } from '../../contract/records.js';
import { TCP_STATE_NAMES } from '../../collector/conntrack/constants.js';

export function chTime(t: Time): string {
  const iso = new Date(t.sec * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(t.nsec).padStart(9, '0')}`;
}

const opt = (t: Time | null) => (t ? chTime(t) : null);

export function flowToCh(r: FlowRow): Record<string, unknown> {
  return {
    ...r,
    first_seen: chTime(r.first_seen),
    established_at: opt(r.established_at),
    seen_reply_at: opt(r.seen_reply_at),
    assured_at: opt(r.assured_at),
    ended_at: opt(r.ended_at),
    tcp_state_times: r.tcp_state_times.map(chTime),
  };
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
