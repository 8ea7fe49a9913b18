/**
 * Migration 12: the parts an insert writes into `flows` and `events` in ClickHouse's compact format
 * (all columns in one file) instead of wide (two files per column, ~170 for `flows`): the
 * per-column files were about half of an embedded insert's CPU (issue 19; docs/PERFORMANCE.md).
 * Merges make wide parts again once a part holds WIDE_PART_ROWS rows (and the default 10 MiB), so
 * queries over big ranges read wide parts as before. MergeTree settings, the same on a server.
 */
import type { SchemaContext } from './schema.js';

/** Parts under this many rows stay compact: a storm's inserts (100,000 rows each) and their first merges. */
export const WIDE_PART_ROWS = 1_000_000;

export function partFormatStatements(c: SchemaContext): string[] {
  const on = c.cluster ? ` ON CLUSTER ${c.cluster}` : '';
  // on a cluster the settings belong to the local tables; the Distributed ones store nothing
  return ['flows', 'events'].map((t) => `ALTER TABLE ${c.db}.${c.cluster ? `${t}_local` : t}${on} MODIFY SETTING min_rows_for_wide_part = ${WIDE_PART_ROWS}`);
}
