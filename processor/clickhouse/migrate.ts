/**
 * Applies the migrations a database lacks, in order, recording each one (idempotent); then checks
 * that every table written from a column list matches it (schema-check.ts).
 */
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

export async function currentVersion(store: Store, db: string): Promise<number> {
  const [row] = await store.query<{ v: number | string }>(`SELECT max(version) AS v FROM ${db}.schema_migrations`);
  return Number(row?.v ?? 0);
}
