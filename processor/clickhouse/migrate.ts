/**
 * Applies the migrations a database lacks, in order, recording each one (idempotent); then checks
 * that every table written from a column list matches it (schema-check.ts). A database that
 * records a version this ctpipe does not know was migrated by another (newer) ctpipe: its tables
 * may differ in ways the check cannot see, and every insert could fail, so nothing starts on it.
 */
import { CtpipeError } from '../../common/errors.js';
import { checkTables } from './schema-check.js';
import type { Store } from '../store.js';
import { MIGRATIONS, type SchemaContext } from './schema.js';

export interface MigrateResult {
  from: number;
  to: number;
  applied: number[];
}

/**
 * `upTo` stops at an older version (tests build a database as a previous release left it), and
 * then the check is skipped: the columns are the latest version's.
 */
export async function migrate(store: Store, c: SchemaContext, upTo = Infinity): Promise<MigrateResult> {
  const on = c.cluster ? ` ON CLUSTER ${c.cluster}` : '';
  await store.command(`CREATE DATABASE IF NOT EXISTS ${c.db}${on}`);
  await store.command(`CREATE TABLE IF NOT EXISTS ${c.db}.schema_migrations${on} (version UInt32, description String, applied_at DateTime DEFAULT now())
            ENGINE = ${c.cluster ? `ReplicatedMergeTree('/clickhouse/tables/{shard}/${c.db}/schema_migrations', '{replica}')` : 'MergeTree'} ORDER BY version`);
  const done = await currentVersion(store, c.db);
  await refuseUnknownVersions(store, c.db);
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= done || m.version > upTo) continue;
    for (const q of m.statements(c)) await store.command(q);
    // INSERT ... SELECT: an embedded store refuses INSERT ... VALUES (stdin: clickhouse/store.ts)
    await store.command(`INSERT INTO ${c.db}.schema_migrations (version, description) SELECT {v:UInt32}, {d:String}`, { v: m.version, d: m.description });
    applied.push(m.version);
  }
  if (upTo >= MIGRATIONS[MIGRATIONS.length - 1]!.version) await checkTables(store, c.db);
  return { from: done, to: MIGRATIONS[MIGRATIONS.length - 1]!.version, applied };
}

/** SCHEMA_UNKNOWN_VERSION when `db` records a migration this ctpipe does not have. */
export async function refuseUnknownVersions(store: Store, db: string): Promise<void> {
  const known = MIGRATIONS.map((m) => m.version);
  const rows = await store.query<{ version: number; description: string }>(
    `SELECT version, any(description) AS description FROM ${db}.schema_migrations WHERE version NOT IN {known:Array(UInt32)} GROUP BY version ORDER BY version`, { known });
  if (rows.length === 0) return;
  const list = rows.map((r) => `${r.version} (${JSON.stringify(r.description.slice(0, 80))})`).join(', ');
  throw new CtpipeError('SCHEMA_UNKNOWN_VERSION',
    `the database ${db} records schema version${rows.length > 1 ? 's' : ''} ${list}, which this ctpipe does not know (it knows 1 to ${known[known.length - 1]!}): ` +
    'a newer ctpipe migrated it. Run that ctpipe version (or newer) against this database; an older one would write rows its tables may not take');
}

export async function currentVersion(store: Store, db: string): Promise<number> {
  const [row] = await store.query<{ v: number | string }>(`SELECT max(version) AS v FROM ${db}.schema_migrations`);
  return Number(row?.v ?? 0);
}
