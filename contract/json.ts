/**
 * The JSON lines form of a record (a public interface, documented in docs/RECORDS.md): what
 * `ctpipe collect --output jsonl` prints and what `ctpipe replay` reads back. Differences from the
 * in-memory record: `time` replaces sec/nsec (RFC 3339, nanoseconds, UTC); `status` lists IPS_*
 * names; TCP/SCTP/DCCP states and flags are names; start/stop are RFC 3339 strings; absent fields
 * are omitted. fromJson inverts toJson exactly.
 */
import { sumCpus, type CpuStats, type CtpipeRecord, type U64 } from './records.js';
import { DEFAULT_RECORD_LIMITS, validateRecord, type RecordLimits } from './validate.js';
import {
  DCCP_STATE_NAMES, EXPECT_FLAG_NAMES, IPS_NAMES, SCTP_STATE_NAMES, TCP_CT_FLAG_NAMES, TCP_STATE_NAMES, flagNames,
} from './kernel.js';
import { CtpipeError, errorMessage } from '../common/errors.js';
import { nsOf, nsSplit, split } from './u64.js';

export function rfc3339(sec: number, nsec: number): string {
  const iso = new Date(sec * 1000).toISOString(); // 2026-11-21T05:24:12.000Z
  return `${iso.slice(0, 19)}.${String(nsec).padStart(9, '0')}Z`;
}

export function parseRfc3339(s: string): { sec: number; nsec: number } {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(s);
  if (!m) throw new CtpipeError('RECORD_DECODE', `not an RFC 3339 UTC time: ${s}`);
  const sec = Date.parse(`${m[1]}Z`) / 1000;
  if (Number.isNaN(sec)) throw new CtpipeError('RECORD_DECODE', `not an RFC 3339 UTC time: ${s}`); // 2026-13-01
  const nsec = m[2] ? Number(m[2].padEnd(9, '0')) : 0;
  return { sec, nsec };
}

function nsToTime(v: U64): string {
  if (!nsSplit(v)) throw new CtpipeError('RECORD_INVALID', `not a uint64 of nanoseconds: ${JSON.stringify(String(v).slice(0, 40))}`);
  return rfc3339(split.sec, split.nsec);
}

function timeToNs(s: string): U64 {
  const { sec, nsec } = parseRfc3339(s);
  return sec < 0 ? sec * 1e9 + nsec : nsOf(sec, nsec); // before 1970: negative, which validation rejects
}

function nameOf(names: readonly string[], v: number | undefined): string | number | undefined {
  if (v === undefined) return undefined;
  return names[v] ?? v;
}

function valueOf(names: readonly string[], v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  const i = names.indexOf(String(v));
  if (i < 0) throw new CtpipeError('RECORD_DECODE', `unknown name ${String(v)}`);
  return i;
}

function bitsOf(names: readonly string[], v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new CtpipeError('RECORD_DECODE', 'expected a list of flag names');
  let bits = 0;
  for (const n of v) {
    const i = names.indexOf(String(n));
    if (i < 0) throw new CtpipeError('RECORD_DECODE', `unknown flag ${String(n)}`);
    bits |= 1 << i;
  }
  return bits >>> 0;
}

/** The JSON object for one record (undefined fields drop out in JSON.stringify). */
export function toJson(r: CtpipeRecord): Record<string, unknown> {
  const { sec, nsec, ...rest } = r;
  // Key order of the line: type, host, netns (when set), run, seq, time, then the record's own fields.
  const o: Record<string, unknown> = Object.assign({ type: r.type, host: r.host, netns: r.netns, run: r.run, seq: r.seq, time: rfc3339(sec, nsec) }, rest);
  if (r.type === 'new' || r.type === 'update' || r.type === 'destroy' || r.type === 'snapshot') {
    o.status = flagNames(r.status, IPS_NAMES);
    o.tcp_state = nameOf(TCP_STATE_NAMES, r.tcp_state);
    o.sctp_state = nameOf(SCTP_STATE_NAMES, r.sctp_state);
    o.dccp_state = nameOf(DCCP_STATE_NAMES, r.dccp_state);
    if (r.tcp_flags_orig !== undefined) o.tcp_flags_orig = flagNames(r.tcp_flags_orig, TCP_CT_FLAG_NAMES);
    if (r.tcp_flags_reply !== undefined) o.tcp_flags_reply = flagNames(r.tcp_flags_reply, TCP_CT_FLAG_NAMES);
    if (r.start !== undefined) o.start = nsToTime(r.start);
    if (r.stop !== undefined) o.stop = nsToTime(r.stop);
  } else if (r.type === 'exp_new' || r.type === 'exp_destroy') {
    if (r.flags !== undefined) o.flags = flagNames(r.flags, EXPECT_FLAG_NAMES);
  }
  return o;
}

export function toJsonLine(r: CtpipeRecord): string {
  return JSON.stringify(toJson(r));
}

/**
 * Parses one JSON line back into a record and checks it against the contract (validate.ts):
 * throws RECORD_DECODE on anything malformed, RECORD_INVALID on a value the contract does not allow.
 */
export function fromJsonLine(line: string): CtpipeRecord {
  return parseJsonLine(line, DEFAULT_RECORD_LIMITS);
}

/** fromJsonLine with the deployment's bounds. */
export function parseJsonLine(line: string, limits: RecordLimits): CtpipeRecord {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch (e) {
    throw new CtpipeError('RECORD_DECODE', `not JSON: ${errorMessage(e)}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof o.type !== 'string' || typeof o.time !== 'string') {
    throw new CtpipeError('RECORD_DECODE', 'a record needs "type" and "time"');
  }
  const { time, ...rest } = o;
  const r = { ...rest, ...parseRfc3339(time as string) } as Record<string, unknown>;
  switch (o.type) {
    case 'new': case 'update': case 'destroy': case 'snapshot': {
      r.status = bitsOf(IPS_NAMES, o.status) ?? 0;
      // each only where the line has it: a field added as undefined and deleted after put the
      // record in V8's dictionary mode, slow to build and to read (30 us a DESTROY line, now 19)
      if (o.tcp_state !== undefined) r.tcp_state = valueOf(TCP_STATE_NAMES, o.tcp_state);
      if (o.sctp_state !== undefined) r.sctp_state = valueOf(SCTP_STATE_NAMES, o.sctp_state);
      if (o.dccp_state !== undefined) r.dccp_state = valueOf(DCCP_STATE_NAMES, o.dccp_state);
      if (o.tcp_flags_orig !== undefined) r.tcp_flags_orig = bitsOf(TCP_CT_FLAG_NAMES, o.tcp_flags_orig);
      if (o.tcp_flags_reply !== undefined) r.tcp_flags_reply = bitsOf(TCP_CT_FLAG_NAMES, o.tcp_flags_reply);
      if (o.start !== undefined) r.start = timeToNs(String(o.start));
      if (o.stop !== undefined) r.stop = timeToNs(String(o.stop));
      break;
    }
    case 'exp_new': case 'exp_destroy':
      if (o.flags !== undefined) r.flags = bitsOf(EXPECT_FLAG_NAMES, o.flags);
      break;
    case 'stats':
      // totals are the CPUs' sum, as the protobuf decoder makes them, not what the line claims
      if (Array.isArray(o.cpus) && o.cpus.every((c) => typeof c === 'object' && c !== null)) r.totals = sumCpus(o.cpus as CpuStats[]);
      break;
    case 'loss': case 'invalid_packet': case 'dump_end':
      break;
    default:
      throw new CtpipeError('RECORD_DECODE', `unknown record type ${String(o.type)}`);
  }
  const why = validateRecord(r, limits);
  if (why !== undefined) throw new CtpipeError('RECORD_INVALID', why);
  return r as unknown as CtpipeRecord;
}
