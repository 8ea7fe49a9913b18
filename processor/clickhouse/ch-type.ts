/**
 * ClickHouse column types as values, for tables whose columns are declared once in code
 * (flow-columns.ts): precise enough to name the type as `system.columns` shows it (the schema
 * check), to give the JS type of a row's value (ChValue), and to write a value in ClickHouse's
 * text formats (tsv.ts) or, with the same structure, its binary ones (RowBinary, Native).
 */
/** DateTime64(9)'s value: an event time as the kernel stamps it, nanoseconds exact. */
export interface Time {
  sec: number;
  nsec: number;
}

export type ChScalar = 'String' | 'IPv6' | 'Bool' | 'UInt8' | 'UInt16' | 'UInt32' | 'UInt64' | 'Int32' | 'Int64' | 'Float64';

export type ChType =
  | { readonly t: ChScalar }
  | { readonly t: 'DateTime64'; readonly precision: number; readonly tz: string }
  | { readonly t: 'Enum8'; readonly values: Readonly<Record<string, number>> }
  | { readonly t: 'Nullable' | 'Array' | 'LowCardinality'; readonly of: ChType };

const scalar = <S extends ChScalar>(t: S) => ({ t }) as const;

/** Constructors, named as ClickHouse spells the types. */
export const CH = {
  String: scalar('String'),
  IPv6: scalar('IPv6'),
  Bool: scalar('Bool'),
  UInt8: scalar('UInt8'),
  UInt16: scalar('UInt16'),
  UInt32: scalar('UInt32'),
  UInt64: scalar('UInt64'),
  Int32: scalar('Int32'),
  Int64: scalar('Int64'),
  Float64: scalar('Float64'),
  DateTime64: <P extends number, Z extends string>(precision: P, tz: Z) => ({ t: 'DateTime64', precision, tz }) as const,
  Enum8: <V extends Readonly<Record<string, number>>>(values: V) => ({ t: 'Enum8', values }) as const,
  Nullable: <O extends ChType>(of: O) => ({ t: 'Nullable', of }) as const,
  Array: <O extends ChType>(of: O) => ({ t: 'Array', of }) as const,
  LowCardinality: <O extends ChType>(of: O) => ({ t: 'LowCardinality', of }) as const,
};

/** The type's name as ClickHouse writes it in `system.columns.type` (and accepts in DDL). */
export function chTypeName(c: ChType): string {
  switch (c.t) {
    case 'DateTime64':
      return `DateTime64(${c.precision}, '${c.tz}')`;
    case 'Enum8':
      return `Enum8(${Object.entries(c.values).sort((a, b) => a[1] - b[1]).map(([k, v]) => `'${k}' = ${v}`).join(', ')})`;
    case 'Nullable': case 'Array': case 'LowCardinality':
      return `${c.t}(${chTypeName(c.of)})`;
    default:
      return c.t;
  }
}

/** The JS value a row holds for a column of type C; S narrows its strings (a column's `values`). */
export type ChValue<C extends ChType, S extends string = string> =
  C extends { t: 'Nullable'; of: infer O extends ChType } ? ChValue<O, S> | null
  : C extends { t: 'Array'; of: infer O extends ChType } ? ChValue<O, S>[]
  : C extends { t: 'LowCardinality'; of: infer O extends ChType } ? ChValue<O, S>
  : C extends { t: 'Enum8'; values: infer V } ? keyof V & string
  : C extends { t: 'DateTime64' } ? Time
  : C extends { t: 'String' } ? S
  : C extends { t: 'IPv6' } ? string // text; IPv4 as a.b.c.d (stored IPv4-mapped)
  : C extends { t: 'Bool' } ? boolean
  : number; // UInt64 and Int64 too: counters, offsets and versions, exact below 2^53

/** A column of a table declared in code: `values` lists what a string column may hold, if closed. */
export interface ColumnDef {
  readonly name: string;
  readonly type: ChType;
  readonly values?: readonly string[];
  /**
   * Its strings are ctpipe's own (hex, addresses, state names): text formats write them as they
   * are, skipping the escaping free text needs. Implied by `values`.
   */
  readonly plain?: boolean;
  /** ClickHouse fills it (a DEFAULT): rows do not carry it, inserts leave it out, the schema check still wants it. */
  readonly filled?: true;
}

/** The columns an insert writes, in list order. */
export const written = <L extends readonly ColumnDef[]>(list: L): readonly ColumnDef[] => list.filter((c) => !c.filled);

/** A row of a table declared as `L`: one property per column, typed by ChValue. */
export type RowOf<L extends readonly ColumnDef[]> = {
  [D in L[number] as D extends { filled: true } ? never : D['name']]: ChValue<D['type'], D extends { values: readonly (infer V extends string)[] } ? V : string>;
};

/**
 * DateTime64(9) as ClickHouse's text formats parse it fastest: unix seconds with nine decimals
 * (`precision` fewer for a coarser column). No Date object: a flow row has up to a dozen times,
 * and formatting them was most of its cost.
 */
export function chTime(t: Time, precision = 9): string {
  const ns = String(t.nsec);
  const frac = `${'000000000'.slice(ns.length)}${ns}`;
  if (precision === 9) return `${t.sec}.${frac}`;
  return precision > 0 ? `${t.sec}.${frac.slice(0, precision)}` : String(t.sec);
}
