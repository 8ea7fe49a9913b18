/**
 * What a record may hold: the one list of field ranges (RANGES) and the one check of a record
 * against it (validateRecord), used by every input path: the protobuf decoder (Kafka, binary
 * recordings) and JSON lines (replay files). Nothing reaches the engine or the store that the
 * kernel could not have sent: a port fits 16 bits, a mark 32, a time is after 1970, a string is
 * bounded, an address parses as its family's. A record that does not is rejected whole, with the
 * first field at fault, never narrowed to fit (70000 as a port would have been stored as 4464).
 *
 * The Kafka path checks hundreds of thousands of records a second, so the numeric checks are
 * generated once from RANGES into straight-line code (common/codegen.ts): about 0.1 us a flow
 * record, where a zod schema of the same record took 1.5 us (bench in test/unit/validate.test.ts).
 */
import { generate, ident } from '../common/codegen.js';
import { addrToBytes, ipv4ToU32 } from './addr.js';
import { STAT_FIELDS, type CtpipeRecord, type Tuple } from './records.js';
import { MAX_U64 } from './u64.js';

const U8 = 0xff;
const U16 = 0xffff;
const U32 = 0xffffffff;
/** Counts and sequence numbers: any exact integer. */
const UINT = Number.MAX_SAFE_INTEGER;
/** Event times: seconds of a u64 of nanoseconds (the kernel's clock), so after 1970. */
export const MAX_SEC = 18_446_744_072;

/** The largest value of each integer field, by where it appears (the smallest is 0). */
export const RANGES = {
  stamp: { seq: UINT, sec: MAX_SEC, nsec: 999_999_999 },
  tuple: { proto: U8, sport: U16, dport: U16, icmp_type: U8, icmp_code: U8, icmp_id: U16, zone: U16 },
  flow: {
    id: U32, proto: U8, status: U32, tcp_state: U8, tcp_wscale_orig: U8, tcp_wscale_reply: U8, tcp_flags_orig: U8,
    tcp_flags_reply: U8, sctp_state: U8, sctp_vtag_orig: U32, sctp_vtag_reply: U32, dccp_state: U8, dccp_role: U8,
    timeout: U32, mark: U32, zone: U16, use: U32, secmark: U32,
  },
  seqadj: { correction_pos: U32, offset_before: U32, offset_after: U32 },
  synproxy: { isn: U32, its: U32, tsoff: U32 },
  unknown: { type: U16 },
  exp: { id: U32, timeout: U32, zone: U16, flags: U32, class: U32, nat_dir: U32 },
  cpu: { cpu: U32, ...Object.fromEntries(STAT_FIELDS.map((f) => [f, U32])) },
  totals: Object.fromEntries(STAT_FIELDS.map((f) => [f, UINT])),
  stats: { entries: U32, max_entries: U32, exp_new: U32, exp_create: U32, exp_delete: U32 },
  collector: { events: UINT, drops: UINT, enobufs: UINT, rejected: UINT },
  loss: { first_seq: UINT, last_seq: UINT },
  invalid_packet: { proto: U8, sport: U16, dport: U16, icmp_type: U8, icmp_code: U8, length: U32, mark: U32, weight: UINT },
  dump_end: { start_seq: UINT, flows: UINT, expectations: UINT },
} as const satisfies Record<string, Record<string, number>>;

/** Fields that must be present, by where they appear (the others may be absent). */
const REQUIRED: { [K in keyof typeof RANGES]?: readonly string[] } = {
  stamp: ['seq', 'sec', 'nsec'], tuple: ['proto'], flow: ['id', 'proto', 'status'], seqadj: ['correction_pos', 'offset_before', 'offset_after'],
  synproxy: ['isn', 'its', 'tsoff'], unknown: ['type'], cpu: ['cpu', ...STAT_FIELDS], totals: [...STAT_FIELDS],
  collector: ['events', 'drops', 'enobufs', 'rejected'], invalid_packet: ['proto', 'length', 'weight'], dump_end: ['start_seq', 'flows', 'expectations'],
};

/** Bounds the deployment sets (processor config): strings and lists a record may carry. */
export interface RecordLimits {
  /** Characters of any string field: host, run, helper, labels (hex), secctx, an unknown attribute's bytes (hex)... */
  maxString: number;
}

export const DEFAULT_RECORD_LIMITS: RecordLimits = { maxString: 1024 };

/** Bounds on a batch (one Kafka record, one recording frame), checked before its records are read. */
export interface BatchLimits extends RecordLimits {
  /** Records in one batch (the collector sends kafka.batch_events, at most 100,000). */
  maxRecords: number;
  /** Bytes of one batch, and of one decompressed Kafka record batch. */
  maxBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { ...DEFAULT_RECORD_LIMITS, maxRecords: 100_000, maxBytes: 16 << 20 };
/** Kernel bounds: unknown attributes a record keeps, per-CPU rows (NR_CPUS is at most 8192). */
const MAX_UNKNOWN = 64;
const MAX_CPUS = 8192;

/** A reason a value is out of range, for the generated checks. */
function outOfRange(field: string, v: unknown, max: number | string): string {
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v === 'object' ? typeof v : String(v);
  return `${field} ${shown} is not an integer from 0 to ${max}`;
}

type Check = (o: Record<string, unknown>, at: string) => string | undefined;

/** The straight-line check of one RANGES entry: the first field missing or out of range, or undefined. */
function rangeCheck(name: keyof typeof RANGES): Check {
  const required = new Set(REQUIRED[name] ?? []);
  const lines = Object.entries(RANGES[name]).map(([f, max]) => {
    const k = ident(f);
    // u32 and below: one >>> (a string, a fraction, NaN or a negative fail it); larger: safe integers
    const ok = max <= U32 ? `(v >>> 0) === v && v <= ${max}` : `typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= ${max}`;
    const absent = required.has(f) ? `return at + ${JSON.stringify(`${f} is missing`)};` : '';
    return `v = o.${k}; if (v === undefined) { ${absent} } else if (!(${ok})) return outOfRange(at + ${JSON.stringify(f)}, v, ${max});`;
  });
  return generate(['o', 'at'], `let v;\n${lines.join('\n')}\nreturn undefined;`, { outOfRange });
}

const CHECK = Object.fromEntries(Object.keys(RANGES).map((k) => [k, rangeCheck(k as keyof typeof RANGES)])) as Record<keyof typeof RANGES, Check>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(v: unknown, field: string, max: number, required = false): string | undefined {
  if (v === undefined) return required ? `${field} is missing` : undefined;
  if (typeof v !== 'string') return `${field} is not a string`;
  if (v.length > max) return `${field} is ${v.length} characters long, more than ${max} (process.max_string_length)`;
  return undefined;
}

/** Host and run name a stream: non-empty, bounded, no control characters. */
export function validateName(v: unknown, field: 'host' | 'run', limits: RecordLimits = DEFAULT_RECORD_LIMITS): string | undefined {
  return name(v, field, limits.maxString);
}

function name(v: unknown, field: string, max: number): string | undefined {
  const bad = str(v, field, max, true);
  if (bad) return bad;
  const s = v as string;
  if (s.length === 0) return `${field} is empty`;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 32 || s.charCodeAt(i) === 127) return `${field} holds a control character`;
  return undefined;
}

const HEX = /^(?:[0-9a-f]{2})*$/;
function hex(v: unknown, field: string, max: number): string | undefined {
  const bad = str(v, field, max);
  if (bad || v === undefined) return bad;
  return HEX.test(v as string) ? undefined : `${field} is not lower-case hex bytes`;
}

function digits(s: string): boolean {
  if (s.length < 16 || s.length > 20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
/** A U64: a safe integer, or the decimal string of a larger one up to 2^64 - 1 (compared as text, no BigInt). */
function u64(v: unknown, field: string): string | undefined {
  if (v === undefined || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) return undefined;
  if (typeof v === 'string' && digits(v) && (v.length < 20 || v <= MAX_U64)) return undefined;
  return outOfRange(field, v, MAX_U64);
}

/**
 * An address of `family`, or a reason it is not one. Text (JSON lines) is parsed, once per distinct
 * address (addr.ts caches); text the protobuf decoder made from 4 or 16 bytes (`fromBytes`) is an
 * address by construction, so only its family is checked.
 */
function addr(v: unknown, field: string, family: string, fromBytes: boolean): string | undefined {
  if (typeof v !== 'string') return `${field} is not an address`;
  if (fromBytes) return v.includes(':') === (family === 'ipv6') ? undefined : `${field} ${v} is not an ${family === 'ipv6' ? 'IPv6' : 'IPv4'} address`;
  if (family === 'ipv4') return ipv4ToU32(v) >= 0 ? undefined : `${field} ${JSON.stringify(v.slice(0, 50))} is not an IPv4 address`;
  if (!v.includes(':') || v.length > 45) return `${field} ${JSON.stringify(v.slice(0, 50))} is not an IPv6 address`;
  try {
    addrToBytes(v);
    return undefined;
  } catch {
    return `${field} ${JSON.stringify(v.slice(0, 50))} is not an IPv6 address`;
  }
}

type TupleField = 'orig' | 'reply' | 'master' | 'expected' | 'mask' | 'nat';
/** Field names made once: the checks run per record and must not build strings unless they fail. */
const TUPLE_NAMES = Object.fromEntries((['orig', 'reply', 'master', 'expected', 'mask', 'nat'] as const).map((f) => [f, { at: `${f}.`, src: `${f}.src`, dst: `${f}.dst` }]));

function tuple(t: unknown, field: TupleField, family: string, required: boolean, fromBytes: boolean): string | undefined {
  if (t === undefined) return required ? `${field} is missing` : undefined;
  if (!isObject(t)) return `${field} is not a tuple`;
  const n = TUPLE_NAMES[field]!;
  return CHECK.tuple(t, n.at) ?? addr(t.src, n.src, family, fromBytes) ?? addr(t.dst, n.dst, family, fromBytes);
}

function family(v: unknown): string | undefined {
  return v === 'ipv4' || v === 'ipv6' ? undefined : `family ${JSON.stringify(v)} is not ipv4 or ipv6`;
}

function bool(v: unknown, field: string): string | undefined {
  return v === undefined || typeof v === 'boolean' ? undefined : `${field} is not true or false`;
}

function triple(v: unknown, field: string, check: Check): string | undefined {
  if (v === undefined) return undefined;
  return isObject(v) ? check(v, `${field}.`) : `${field} is not an object`;
}

function unknown(v: unknown, max: number): string | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > MAX_UNKNOWN) return `unknown is not a list of at most ${MAX_UNKNOWN} attributes`;
  for (const u of v) {
    if (!isObject(u)) return 'unknown holds a non-object';
    const bad = CHECK.unknown(u, 'unknown.') ?? str(u.path, 'unknown.path', max, true) ?? hex(u.hex, 'unknown.hex', max);
    if (bad) return bad;
  }
  return undefined;
}

function direction(c: unknown, dir: 'orig' | 'reply'): string | undefined {
  if (c === undefined) return undefined;
  if (!isObject(c)) return `counters.${dir} is not an object`;
  if (c.packets === undefined || c.bytes === undefined) return `counters.${dir} needs packets and bytes`;
  return u64(c.packets, dir === 'orig' ? 'counters.orig.packets' : 'counters.reply.packets') ?? u64(c.bytes, dir === 'orig' ? 'counters.orig.bytes' : 'counters.reply.bytes');
}

function counters(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) return 'counters is not an object';
  return direction(v.orig, 'orig') ?? direction(v.reply, 'reply');
}

function flow(r: Record<string, unknown>, max: number, b: boolean): string | undefined {
  const f = r.family as string;
  return CHECK.flow(r, '') ?? family(f) ?? tuple(r.orig, 'orig', f, true, b) ?? tuple(r.reply, 'reply', f, true, b) ?? tuple(r.master, 'master', f, false, b) ??
    (r.proto !== (r.orig as Tuple).proto ? `proto ${String(r.proto)} is not the original tuple's ${(r.orig as Tuple).proto}` : undefined) ??
    u64(r.dccp_handshake_seq, 'dccp_handshake_seq') ?? u64(r.start, 'start') ?? u64(r.stop, 'stop') ?? counters(r.counters) ??
    str(r.helper, 'helper', max) ?? hex(r.helper_info, 'helper_info', max) ?? hex(r.labels, 'labels', max) ?? str(r.secctx, 'secctx', max) ??
    bool(r.kernel_time, 'kernel_time') ?? triple(r.seqadj_orig, 'seqadj_orig', CHECK.seqadj) ?? triple(r.seqadj_reply, 'seqadj_reply', CHECK.seqadj) ??
    triple(r.synproxy, 'synproxy', CHECK.synproxy) ?? unknown(r.unknown, max);
}

function expectation(r: Record<string, unknown>, max: number, b: boolean): string | undefined {
  const f = r.family as string;
  return CHECK.exp(r, '') ?? family(f) ?? tuple(r.master, 'master', f, false, b) ?? tuple(r.expected, 'expected', f, false, b) ??
    tuple(r.mask, 'mask', f, false, b) ?? tuple(r.nat, 'nat', f, false, b) ?? str(r.helper, 'helper', max) ?? str(r.fn, 'fn', max) ??
    bool(r.snapshot, 'snapshot') ?? unknown(r.unknown, max);
}

function stats(r: Record<string, unknown>): string | undefined {
  if (!Array.isArray(r.cpus) || r.cpus.length > MAX_CPUS) return `cpus is not a list of at most ${MAX_CPUS}`;
  for (const c of r.cpus) {
    const b = isObject(c) ? CHECK.cpu(c, 'cpus[].') : 'cpus holds a non-object';
    if (b) return b;
  }
  return CHECK.stats(r, '') ?? (isObject(r.collector) ? CHECK.collector(r.collector, 'collector.') : 'collector is not an object') ??
    (isObject(r.totals) ? CHECK.totals(r.totals, 'totals.') : 'totals is not an object');
}

const LOSS_REASONS = new Set(['enobufs', 'socket_drops', 'buffer_full', 'spool_full', 'truncated']);
const TCP_FLAG_LETTERS = /^[FSRPAUEC]{0,8}$/;

function byType(r: Record<string, unknown>, max: number, b: boolean): string | undefined {
  switch (r.type) {
    case 'new': case 'update': case 'destroy': case 'snapshot': return flow(r, max, b);
    case 'exp_new': case 'exp_destroy': return expectation(r, max, b);
    case 'stats': return stats(r);
    case 'loss':
      return CHECK.loss(r, '') ?? (LOSS_REASONS.has(r.reason as string) ? undefined : `reason ${JSON.stringify(r.reason)} is not a loss reason`) ??
        (Number.isSafeInteger(r.count) && (r.count as number) >= -1 ? undefined : 'count is not an integer from -1') ??
        str(r.source, 'source', max, true) ?? bool(r.resync, 'resync');
    case 'invalid_packet': {
      const f = r.family as string;
      return CHECK.invalid_packet(r, '') ?? family(f) ?? addr(r.src, 'src', f, b) ?? addr(r.dst, 'dst', f, b) ??
        (r.tcp_flags === undefined || (typeof r.tcp_flags === 'string' && TCP_FLAG_LETTERS.test(r.tcp_flags)) ? undefined : 'tcp_flags is not letters of FSRPAUEC') ??
        str(r.indev, 'indev', max) ?? str(r.outdev, 'outdev', max) ?? str(r.prefix, 'prefix', max);
    }
    case 'dump_end':
      return CHECK.dump_end(r, '') ?? (r.why === 'start' || r.why === 'resync' ? undefined : `why ${JSON.stringify(r.why)} is not start or resync`);
    default:
      return `type ${JSON.stringify(r.type)} is not a record type`;
  }
}

/**
 * Why `r` is not a record the contract allows (the first field at fault), or undefined when it is.
 * `r` may be anything (a parsed JSON line); a record that passes is a well-typed CtpipeRecord.
 * `decoded`: `r` came out of the protobuf decoder, whose batch's host and run were checked once
 * (validateName) and whose addresses were made from bytes; the rest is checked the same way.
 */
export function validateRecord(r: unknown, limits: RecordLimits = DEFAULT_RECORD_LIMITS, decoded = false): string | undefined {
  if (!isObject(r)) return 'a record is an object';
  const max = limits.maxString;
  return (decoded ? undefined : name(r.host, 'host', max) ?? name(r.run, 'run', max)) ?? (r.netns === undefined ? undefined : name(r.netns, 'netns', max)) ??
    CHECK.stamp(r, '') ?? byType(r, max, decoded);
}

/** The same as a type guard, for callers that go on with a record. */
export function isValidRecord(r: unknown, limits?: RecordLimits): r is CtpipeRecord {
  return validateRecord(r, limits) === undefined;
}
