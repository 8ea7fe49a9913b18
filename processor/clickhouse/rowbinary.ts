/**
 * ClickHouse's RowBinary input, the form of every insert ctpipe makes: a row is its columns'
 * values in list order, nothing between them, nothing escaped.
 *
 *   UInt8..UInt64, Int32, Int64, Float64   little-endian, 1 to 8 bytes
 *   Bool                                   1 byte, 0 or 1;  Enum8: its Int8 code
 *   String                                 ULEB128 byte length, then the bytes (UTF-8 here)
 *   IPv6                                   16 bytes in network order (IPv4 as ::ffff:a.b.c.d)
 *   DateTime64(P, tz)                      Int64: ticks of 10^-P s since the epoch
 *   Nullable(T)                            0x01 (NULL) | 0x00 T
 *   Array(T)                               ULEB128 count, then the items
 *   LowCardinality(T)                      T
 *
 * https://clickhouse.com/docs/interfaces/formats/RowBinary (and /sql-reference/data-types/*).
 *
 * Why RowBinary rather than Native (measured on flow rows, docs/PERFORMANCE.md): read with plain
 * types (rowBinaryStructure), ClickHouse parses a row in 1.2 us and the whole insert, parts and the
 * view included, takes 3.2 to 4.1 us; Native, from ClickHouse's own files, 2.0 to 2.7 us. Native
 * saves ClickHouse about 0.8 us a row, but an encoder writing each column's stream apart cost 2 to
 * 4 us a row more in JS than this one, and a Native block is laid out column by column: a batch
 * ClickHouse refuses could no longer be halved as byte ranges (writer.ts), nor a refused row be read
 * back alone. Inline TabSeparated cost 16 to 24 us in ClickHouse and about 40 in JS.
 */
import { addrToBytes, bytesToAddr, ipv4ToU32 } from '../../contract/addr.js';
import { generate, ident } from '../codegen.js';
import { chTypeName, type ChType, type ColumnDef, type Time } from './ch-type.js';

/**
 * Bytes being written, in blocks: a full block is kept and a new one begun, so bytes are never
 * copied to grow (copying a doubled buffer took a third of the encoding time). A row is reserved
 * whole before it is written, so it never spans two blocks. Offsets count from the first byte.
 */
export class ByteSink {
  u8: Buffer;
  dv: DataView;
  /** The next position in the current block. */
  p = 0;
  /** The blocks before the current one, each cut to what it holds. */
  private readonly full: Buffer[] = [];
  /** The offset of the current block's first byte. */
  private base = 0;

  constructor(private readonly blockSize = 1 << 16) {
    this.u8 = Buffer.allocUnsafe(blockSize);
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
  }

  /** The offset of the next byte. */
  get offset(): number {
    return this.base + this.p;
  }

  /** Room for `n` more bytes in the current block (an encoder reserves a row's bound before writing it). */
  reserve(n: number): void {
    if (this.p + n <= this.u8.length) return;
    if (this.p > 0) this.full.push(this.u8.subarray(0, this.p));
    this.base += this.p;
    this.p = 0;
    this.u8 = Buffer.allocUnsafe(Math.max(this.blockSize, n));
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
  }

  /** Back to `offset` (a refused row's start: its block may have begun with it). */
  rewind(offset: number): void {
    this.p = offset - this.base;
  }

  /** The bytes from `from` to `to`, as views on the blocks they lie in. */
  pieces(from: number, to: number): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    for (const b of [...this.full, this.u8.subarray(0, this.p)]) {
      const lo = Math.max(from, at);
      const hi = Math.min(to, at + b.length);
      if (lo < hi) out.push(b.subarray(lo - at, hi - at));
      at += b.length;
    }
    return out;
  }
}

/** A value the encoder cannot write as its column's type: the row is refused, not stored wrong. */
export class RowRefusal extends Error {}

const show = (v: unknown): string => {
  if (typeof v === 'object' && v !== null) return JSON.stringify(v)?.slice(0, 80) ?? String(v);
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : String(v);
};
const refuse = (v: unknown, what: string): never => {
  throw new RowRefusal(`${show(v)} ${what}`);
};

const TWO32 = 4294967296;
const TWO64 = 18446744073709551616;
/** DateTime64(9)'s Int64 nanoseconds end in April 2262. */
const MAX_SEC9 = 9223372036;

function varint(u: Buffer, p: number, n: number): number {
  while (n > 127) {
    u[p++] = (n & 127) | 128;
    n = Math.floor(n / 128);
  }
  u[p] = n;
  return p + 1;
}

function str(u: Buffer, p: number, s: unknown): number {
  if (typeof s !== 'string') return refuse(s, 'is not a string');
  const n = s.length;
  if (n < 128) { // ASCII, the common case, byte by byte: cheaper than a call into the encoder
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) break;
      u[p + 1 + i] = c;
    }
    if (i === n) {
      u[p] = n;
      return p + 1 + n;
    }
  }
  const len = Buffer.byteLength(s, 'utf8');
  p = varint(u, p, len);
  return p + u.write(s, p, len, 'utf8');
}

/** A string's share of a row's bound: 3 UTF-8 bytes per UTF-16 unit at most, and the length. */
const strBound = (s: unknown): number => (typeof s === 'string' ? 3 * s.length + 5 : 5);

/**
 * An address column: IPv4 as ::ffff:a.b.c.d, byte for byte what ClickHouse makes of the text. A
 * flow row's IPv4 text comes from the open-flow table's numbers (u32ToIpv4), which left each
 * number in ipv4ToU32's memo under that very string: the number is found, not parsed.
 */
function ipv6(u: Buffer, dv: DataView, p: number, s: unknown): number {
  if (typeof s !== 'string') return refuse(s, 'is not an IP address');
  let v4 = ipv4ToU32(s);
  if (v4 < 0) {
    let b: Buffer;
    try {
      b = addrToBytes(s);
    } catch {
      return refuse(s, 'is not an IP address');
    }
    if (b.length === 16) {
      u.set(b, p);
      return p + 16;
    }
    v4 = b.readUInt32BE(0);
  }
  dv.setUint32(p, 0);
  dv.setUint32(p + 4, 0);
  dv.setUint32(p + 8, 0xffff);
  dv.setUint32(p + 12, v4);
  return p + 16;
}

const isTime = (t: unknown): t is Time => typeof t === 'object' && t !== null && Number.isInteger((t as Time).sec) &&
  Number.isInteger((t as Time).nsec) && (t as Time).nsec >= 0 && (t as Time).nsec < 1e9;

/**
 * DateTime64(9): sec * 1e9 + nsec is past 2^53, so the Int64 is made of exact parts: sec = a * 2^16
 * + b; the low 32 bits come from b's share and a's low 16 bits, the high from the rest.
 */
function time9(dv: DataView, p: number, t: unknown): number {
  if (!isTime(t)) return refuse(t, 'is not a time');
  const sec = t.sec;
  // before 1970 too: ClickHouse stores such times, but text inserts refused them, TTLs and
  // partitions (toDateTime, toYYYYMMDD) clamp them, and a kernel never stamps one
  if (sec < 0 || sec >= MAX_SEC9) return refuse(t, 'is outside DateTime64(9)\'s range (1970 to 2262)');
  const a = Math.floor(sec / 65536);
  const low = (sec - a * 65536) * 1e9 + t.nsec; // < 2^47
  const high = a * 1e9; // < 2^48; the value is high * 2^16 + low
  const hh = Math.floor(high / 65536);
  const s = (high - hh * 65536) * 65536 + low;
  const carry = Math.floor(s / TWO32);
  dv.setUint32(p, s - carry * TWO32, true);
  dv.setUint32(p + 4, hh + carry, true);
  return p + 8;
}

/** DateTime64(P) for P <= 6: the ticks stay below 2^53 until the year 287,000. */
function timeCoarse(dv: DataView, p: number, t: unknown, perSec: number, nsPerTick: number): number {
  if (!isTime(t)) return refuse(t, 'is not a time');
  if (t.sec < 0) return refuse(t, 'is before 1970');
  const ticks = t.sec * perSec + Math.floor(t.nsec / nsPerTick);
  const hi = Math.floor(ticks / TWO32);
  dv.setUint32(p, ticks - hi * TWO32, true);
  dv.setUint32(p + 4, hi, true);
  return p + 8;
}

function u64(dv: DataView, p: number, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < TWO64) || Math.floor(v) !== v) return refuse(v, 'is not a UInt64');
  const hi = Math.floor(v / TWO32);
  dv.setUint32(p, v - hi * TWO32, true);
  dv.setUint32(p + 4, hi, true);
  return p + 8;
}

function i64(dv: DataView, p: number, v: unknown): number {
  if (typeof v !== 'number' || !(v >= -(TWO64 / 2) && v < TWO64 / 2) || Math.floor(v) !== v) return refuse(v, 'is not an Int64');
  const hi = Math.floor(v / TWO32);
  dv.setUint32(p, v - hi * TWO32, true);
  dv.setInt32(p + 4, hi, true);
  return p + 8;
}

function f64(dv: DataView, p: number, v: unknown): number {
  if (typeof v !== 'number') return refuse(v, 'is not a number');
  dv.setFloat64(p, v, true);
  return p + 8;
}

const FIXED: Partial<Record<ChType['t'], number>> = { UInt8: 1, UInt16: 2, UInt32: 4, Int32: 4, UInt64: 8, Int64: 8, Float64: 8, Bool: 1, Enum8: 1, IPv6: 16, DateTime64: 8 };

/** The bytes a value of type `c` takes when that does not depend on the value. */
const fixedSize = (c: ChType): number | undefined => (c.t === 'LowCardinality' ? fixedSize(c.of) : FIXED[c.t]);

interface Code {
  /** JS source of a bound on the bytes value `v` takes (an expression). */
  bound: string;
  /** JS source writing `v` at `p` (statements advancing `p`). */
  write: string;
}

/** What an encoder's generated source refers to: the helpers above, and constants made on the way. */
function encoderEnv(): Record<string, unknown> {
  return { varint, str, strBound, ipv6, time9, timeCoarse, u64, i64, f64, refuse };
}

/** Source for value expression `v` of type `c`; `env` takes the constants it needs. */
function valueCode(c: ChType, v: string, env: Record<string, unknown>, depth = 0): Code {
  const fixed = fixedSize(c);
  const b = (write: string): Code => ({ bound: String(fixed), write });
  switch (c.t) {
    case 'LowCardinality':
      return valueCode(c.of, v, env, depth);
    case 'String':
      // '' inline: most of a flow row's strings are empty (names, NAT, helper), and a call per column adds up
      return { bound: `strBound(${v})`, write: `if (${v} === '') u[p++] = 0; else p = str(u, p, ${v});` };
    case 'UInt8':
      return b(`if ((${v} & 255) !== ${v}) refuse(${v}, 'is not a UInt8'); u[p++] = ${v};`);
    case 'UInt16':
      return b(`if ((${v} & 65535) !== ${v}) refuse(${v}, 'is not a UInt16'); dv.setUint16(p, ${v}, true); p += 2;`);
    case 'UInt32':
      return b(`if (${v} >>> 0 !== ${v}) refuse(${v}, 'is not a UInt32'); dv.setUint32(p, ${v}, true); p += 4;`);
    case 'Int32':
      return b(`if ((${v} | 0) !== ${v}) refuse(${v}, 'is not an Int32'); dv.setInt32(p, ${v}, true); p += 4;`);
    case 'UInt64':
      return b(`p = u64(dv, p, ${v});`);
    case 'Int64':
      return b(`p = i64(dv, p, ${v});`);
    case 'Float64':
      return b(`p = f64(dv, p, ${v});`);
    case 'Bool':
      return b(`u[p++] = ${v} === true ? 1 : ${v} === false ? 0 : refuse(${v}, 'is not a Bool');`);
    case 'Enum8': {
      const codes = `enum${Object.keys(env).length}`;
      env[codes] = new Map(Object.entries(c.values));
      return b(`{ const e = ${codes}.get(${v}); if (e === undefined) refuse(${v}, ${JSON.stringify(`is not one of ${chTypeName(c)}`)}); u[p++] = e & 255; }`);
    }
    case 'IPv6':
      return b(`p = ipv6(u, dv, p, ${v});`);
    case 'DateTime64': {
      if (c.precision === 9) return b(`p = time9(dv, p, ${v});`);
      if (!(Number.isInteger(c.precision) && c.precision >= 0 && c.precision <= 6)) throw new Error(`rowBinaryEncoder: DateTime64(${c.precision}) is not written`);
      return b(`p = timeCoarse(dv, p, ${v}, ${10 ** c.precision}, ${10 ** (9 - c.precision)});`);
    }
    case 'Nullable': {
      const inner = valueCode(c.of, v, env, depth);
      return { bound: `(${v} === null ? 1 : 1 + ${inner.bound})`, write: `if (${v} === null) u[p++] = 1; else { u[p++] = 0; ${inner.write} }` };
    }
    case 'Array': {
      const x = `x${depth}`;
      const i = `i${depth}`;
      const item = valueCode(c.of, x, env, depth + 1);
      const itemFixed = fixedSize(c.of);
      // a bound over the items: by count when their size is fixed, else item by item
      let bound = `(Array.isArray(${v}) ? 5 + ${v}.length * ${itemFixed} : 5)`;
      if (itemFixed === undefined) {
        const f = `bound${Object.keys(env).length}`;
        env[f] = generate(['a'], `if (!Array.isArray(a)) return 5; let n = 5; for (const ${x} of a) n += ${item.bound}; return n;`, env);
        bound = `${f}(${v})`;
      }
      return {
        bound,
        write: `if (!Array.isArray(${v})) refuse(${v}, 'is not an array'); p = varint(u, p, ${v}.length);
          for (let ${i} = 0; ${i} < ${v}.length; ${i}++) { const ${x} = ${v}[${i}]; ${item.write} }`,
      };
    }
  }
}

/** Writes one row into a sink; throws RowRefusal (the sink's position then means nothing). */
export type RowEncoder<R> = (s: ByteSink, r: R) => void;

/**
 * The RowBinary writer of rows of `columns` (those ClickHouse fills left out), in list order,
 * generated once per list (codegen.ts) like the TabSeparated one: a row's bound is reserved first,
 * then every value is written through locals. Values of the wrong type or out of their column's
 * range throw RowRefusal: such a row is refused whole, never stored wrong.
 */
export function rowBinaryEncoder<R>(columns: readonly ColumnDef[]): RowEncoder<R> {
  const env = encoderEnv();
  const cols = columns.filter((c) => !c.filled);
  const codes = cols.map((c, i) => ({ v: `v${i}`, name: ident(c.name), code: valueCode(c.type, `v${i}`, env) }));
  const body = `${codes.map((c) => `const ${c.v} = r.${c.name};`).join('\n')}
    s.reserve(${codes.map((c) => c.code.bound).join(' + ') || '0'});
    const u = s.u8, dv = s.dv;
    let p = s.p;
    ${codes.map((c) => c.code.write).join('\n')}
    s.p = p;`;
  return generate(['s', 'r'], body, env);
}

/**
 * Why a row cannot be written: the first column whose value the encoder refuses (`name: why`).
 * Slow, for the rare refused row: each column is tried alone.
 */
export function refusedColumn(columns: readonly ColumnDef[], row: Record<string, unknown>): string | undefined {
  for (const c of columns.filter((x) => !x.filled)) {
    try {
      rowBinaryEncoder([c])(new ByteSink(64), row);
    } catch (e) {
      return `${c.name}: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  return undefined;
}

/**
 * The `structure` argument of `file(path, 'RowBinary', structure)`. LowCardinality is left out: the
 * bytes are the same, and ClickHouse then reads plain strings and converts whole columns on insert
 * (reading a flow row: 1.2 us, against 3.2 with each value put in a dictionary as it is read).
 */
export function rowBinaryStructure(columns: readonly ColumnDef[]): string {
  const plain = (c: ChType): ChType => (c.t === 'LowCardinality' ? plain(c.of) : c.t === 'Nullable' || c.t === 'Array' ? { t: c.t, of: plain(c.of) } : c);
  return columns.filter((c) => !c.filled).map((c) => `${ident(c.name)} ${chTypeName(plain(c.type))}`).join(', ');
}

/** Reads one value of type `c` at `at.p` (dead letters and tests; not a hot path). */
function readValue(c: ChType, u: Buffer, at: { p: number }): unknown {
  const dv = new DataView(u.buffer, u.byteOffset, u.byteLength);
  const p = at.p;
  const varlen = (): number => {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const x = u[at.p++]!;
      n += (x & 127) * shift;
      if (x < 128) return n;
    }
  };
  switch (c.t) {
    case 'LowCardinality':
      return readValue(c.of, u, at);
    case 'Nullable':
      return u[at.p++] === 1 ? null : readValue(c.of, u, at);
    case 'Array':
      return Array.from({ length: varlen() }, () => readValue(c.of, u, at));
    case 'String': {
      const n = varlen();
      at.p += n;
      return u.toString('utf8', at.p - n, at.p);
    }
    case 'IPv6': {
      at.p += 16;
      const mapped = dv.getUint32(p) === 0 && dv.getUint32(p + 4) === 0 && dv.getUint32(p + 8) === 0xffff;
      return mapped ? bytesToAddr(u, p + 12, 4) : bytesToAddr(u, p, 16);
    }
    case 'DateTime64': {
      at.p += 8;
      const ticks = dv.getBigInt64(p, true);
      const per = 10n ** BigInt(c.precision);
      return { sec: Number(ticks / per), nsec: Number(ticks % per) * 10 ** (9 - c.precision) };
    }
    case 'Enum8': {
      const code = dv.getInt8(at.p++);
      return Object.entries(c.values).find(([, v]) => v === code)?.[0] ?? code;
    }
    case 'Bool':
      return u[at.p++] !== 0;
    default: {
      const size = FIXED[c.t]!;
      at.p += size;
      switch (c.t) {
        case 'UInt8': return u[p];
        case 'UInt16': return dv.getUint16(p, true);
        case 'UInt32': return dv.getUint32(p, true);
        case 'Int32': return dv.getInt32(p, true);
        case 'UInt64': return Number(dv.getBigUint64(p, true));
        case 'Int64': return Number(dv.getBigInt64(p, true));
        default: return dv.getFloat64(p, true);
      }
    }
  }
}

/** The rows in `bytes`, decoded as `columns` (those ClickHouse fills left out). */
export function readRowBinary(columns: readonly ColumnDef[], bytes: Buffer): Record<string, unknown>[] {
  const cols = columns.filter((c) => !c.filled);
  const at = { p: 0 };
  const rows: Record<string, unknown>[] = [];
  while (at.p < bytes.length) {
    const row: Record<string, unknown> = {};
    for (const c of cols) row[c.name] = readValue(c.type, bytes, at);
    rows.push(row);
  }
  return rows;
}
