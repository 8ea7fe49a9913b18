/**
 * A batch of one table's rows as the insert sends them: RowBinary (rowbinary.ts), each row encoded
 * when it is made, so a batch is one buffer and the rows' end offsets, not thousands of objects.
 * The writer cuts a batch ClickHouse refuses into halves (writer.ts): a slice is a view on the same
 * bytes. A row the encoder cannot write (a value out of its column's range) is kept as a refusal:
 * an insert of a slice holding one fails as ClickHouse's refusal would, so the row reaches
 * dead_letters the same way, with the reason, and every other row is stored.
 */
import { CtpipeError } from '../../common/errors.js';
import type { Table } from '../store.js';
import type { ColumnDef } from './ch-type.js';
import { ByteSink, readRowBinary, refusedColumn, rowBinaryEncoder, rowBinaryStructure, type RowEncoder } from './rowbinary.js';
import { TABLE_COLUMNS, type TableRow } from './tables.js';
import { tsvEncoder } from './tsv.js';

/** What a table's rows are written with, made once per table. */
export interface TableCodec {
  readonly columns: readonly ColumnDef[];
  /** The insert's column list, in the encoder's order. */
  readonly names: readonly string[];
  /** `file(path, 'RowBinary', structure)`'s structure. */
  readonly structure: string;
  readonly encode: RowEncoder<unknown>;
  /** A row as TabSeparated text: what a dead letter holds. */
  readonly text: (row: unknown) => string;
  /** The last batch's size: the next starts with that much room, so buffers rarely grow. */
  lastBytes: number;
}

const codecs = new Map<readonly ColumnDef[], TableCodec>();

/** The codec of a column list (each list's encoder is generated once). */
export function codecOf(columns: readonly ColumnDef[]): TableCodec {
  let c = codecs.get(columns);
  if (!c) {
    const written = columns.filter((x) => !x.filled);
    c = {
      columns, names: written.map((x) => x.name), structure: rowBinaryStructure(columns),
      encode: rowBinaryEncoder(columns), text: tsvEncoder(written), lastBytes: 0,
    };
    codecs.set(columns, c);
  }
  return c;
}

/** The bytes and row ends a batch and its slices share. */
class Encoded {
  sink: ByteSink | undefined;
  /** Where each row ends; a refused row takes no bytes. */
  readonly ends: number[] = [];
  /** Refused rows by index: why, and the row as text. */
  readonly refused = new Map<number, { reason: string; text: string }>();
}

export class TableRows<T extends Table = Table> {
  private constructor(
    readonly table: T,
    readonly codec: TableCodec,
    private readonly e: Encoded,
    private readonly from: number,
    /** Undefined for a whole batch, which rows are still pushed to. */
    private readonly to: number | undefined,
  ) {}

  static empty<T extends Table>(table: T): TableRows<T> {
    return new TableRows(table, codecOf(TABLE_COLUMNS[table]), new Encoded(), 0, undefined);
  }

  static of<T extends Table>(table: T, rows: readonly TableRow<T>[]): TableRows<T> {
    const b = TableRows.empty(table);
    for (const r of rows) b.push(r);
    return b;
  }

  get length(): number {
    return (this.to ?? this.e.ends.length) - this.from;
  }

  /** Encodes a row onto the batch (not onto a slice). */
  push(row: TableRow<T>): void {
    if (this.to !== undefined) throw new Error('TableRows.push: a slice is read-only');
    const c = this.codec;
    // blocks about a quarter of the last batch, within 64 KiB and 8 MiB: a few pieces an insert
    const s = (this.e.sink ??= new ByteSink(Math.min(8 << 20, Math.max(1 << 16, c.lastBytes >> 2))));
    const start = s.offset;
    try {
      c.encode(s, row);
    } catch (err) {
      s.rewind(start);
      const why = refusedColumn(c.columns, row as Record<string, unknown>) ?? (err instanceof Error ? err.message : String(err));
      let text: string;
      try {
        text = c.text(row);
      } catch {
        text = JSON.stringify(row) ?? String(row);
      }
      this.e.refused.set(this.e.ends.length, { reason: `ctpipe's RowBinary encoder refused ${this.table}.${why}`, text });
    }
    const end = s.offset;
    this.e.ends.push(end);
    c.lastBytes = end;
  }

  /** Rows `from` to `to` (exclusive) of this batch, sharing its bytes. */
  slice(from: number, to = this.length): TableRows<T> {
    return new TableRows(this.table, this.codec, this.e, this.from + from, this.from + Math.min(to, this.length));
  }

  private start(i: number): number {
    return i === 0 ? 0 : this.e.ends[i - 1]!;
  }

  /** The rows' RowBinary bytes, as views on the blocks they were written to. */
  get pieces(): Buffer[] {
    return this.e.sink ? this.e.sink.pieces(this.start(this.from), this.start(this.from + this.length)) : [];
  }

  /** The same in one buffer (copied when the rows span blocks). */
  get bytes(): Buffer {
    const p = this.pieces;
    return p.length === 1 ? p[0]! : Buffer.concat(p);
  }

  get byteLength(): number {
    return this.start(this.from + this.length) - this.start(this.from);
  }

  /** Throws STORE_ROWS_REFUSED, as ClickHouse's refusal would be, if a row here could not be encoded. */
  assertEncoded(): void {
    if (this.e.refused.size === 0) return;
    for (let i = this.from; i < this.from + this.length; i++) {
      const r = this.e.refused.get(i);
      if (r) throw new CtpipeError('STORE_ROWS_REFUSED', r.reason);
    }
  }

  /** Row `i` as TabSeparated text (a dead letter's payload). */
  text(i: number): string {
    const at = this.from + i;
    const refused = this.e.refused.get(at);
    if (refused) return refused.text;
    const row = readRowBinary(this.codec.columns, this.slice(i, i + 1).bytes)[0];
    return this.codec.text(row);
  }
}
