/**
 * Whether a live table has exactly the columns its list in code declares, by name and type. The
 * migrations (schema.ts) are history and the lists (flow-columns.ts, tables.ts) are what ctpipe
 * writes; migrate() checks the two agree before anything is inserted, so a missing migration, a
 * column declared without one, or a table altered by hand stops the processor at start with
 * every difference named, instead of failing or mis-storing at the first insert.
 */
import { chTypeName, type ColumnDef } from './ch-type.js';
import { FLOW_COLUMN_DEFS } from './flow-columns.js';
import { NETWORK_COLUMNS } from '../networks/schema.js';
import { ALL_TABLE_COLUMNS } from './tables.js';
import { CtpipeError } from '../../common/errors.js';
import type { Store } from '../store.js';

export interface LiveColumn {
  name: string;
  type: string;
}

/** Each difference between the live columns and the list, in words; empty when they match. */
export function columnDiff(live: readonly LiveColumn[], want: readonly ColumnDef[]): string[] {
  const has = new Map(live.map((c) => [c.name, c.type]));
  const wanted = new Set(want.map((c) => c.name));
  const out: string[] = [];
  for (const c of want) {
    const type = chTypeName(c.type);
    const got = has.get(c.name);
    if (got === undefined) out.push(`missing column ${c.name} ${type}`);
    else if (got !== type) out.push(`column ${c.name} is ${got}, expected ${type}`);
  }
  for (const c of live) if (!wanted.has(c.name)) out.push(`unexpected column ${c.name} ${c.type}`);
  return out;
}

/** The columns an insert can write (ALIAS, MATERIALIZED and EPHEMERAL ones are ClickHouse's). */
export async function liveColumns(store: Store, db: string, table: string): Promise<LiveColumn[]> {
  return store.query<LiveColumn>(`SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}
            AND default_kind NOT IN ('ALIAS', 'MATERIALIZED', 'EPHEMERAL') ORDER BY position`, { db, table });
}

/** Throws, naming each difference, unless `db.table` has exactly the columns `want` declares. */
export async function checkColumns(store: Store, db: string, table: string, want: readonly ColumnDef[], declaredIn: string): Promise<void> {
  const diff = columnDiff(await liveColumns(store, db, table), want);
  if (diff.length) {
    throw new CtpipeError('SCHEMA_MISMATCH', `table ${db}.${table} does not match the columns this processor writes (${declaredIn}): ${diff.join('; ')} ` +
      '(a column declared without its migration, a database migrated by another ctpipe version, or a table altered by hand)');
  }
}

/** Every column of `flows`: those rows carry, then those ClickHouse fills (networks/schema.ts). */
export const FLOWS_TABLE_COLUMNS: readonly ColumnDef[] = [...FLOW_COLUMN_DEFS, ...NETWORK_COLUMNS];

/** The `flows` table against FLOWS_TABLE_COLUMNS. */
export function checkFlowsTable(store: Store, db: string): Promise<void> {
  return checkColumns(store, db, 'flows', FLOWS_TABLE_COLUMNS, 'processor/clickhouse/flow-columns.ts');
}

/** Every table written from a list against its list (migrate() runs it after the migrations). */
export async function checkTables(store: Store, db: string): Promise<void> {
  await checkFlowsTable(store, db);
  for (const [table, list] of Object.entries(ALL_TABLE_COLUMNS)) {
    if (table !== 'flows') await checkColumns(store, db, table, list, 'processor/clickhouse/tables.ts');
  }
}
