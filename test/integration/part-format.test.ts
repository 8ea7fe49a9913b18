/**
 * Migration 12 (issue 19): `flows` and `events` inserts write compact parts (one file for all
 * columns) below 1,000,000 rows, on the embedded store and through ClickHouse's HTTP interface
 * (lab/clickhouse-front.ts); a store migrated before keeps its wide parts and rows, writes compact
 * parts from the upgrade on, and merges past 1,000,000 rows make wide parts again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableRows } from '../../bench/ingest.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { WIDE_PART_ROWS } from '../../processor/clickhouse/part-format.js';
import { SCHEMA_VERSION } from '../../processor/clickhouse/schema.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { TableRows } from '../../processor/clickhouse/table-rows.js';
import type { Store } from '../../processor/store.js';
import { release, tempDir } from '../helpers/resources.js';

const ROWS = 100_000; // one storm insert (processor/sink.ts: maxRows)
const rows = tableRows(ROWS, 0);
let embedded: Store | undefined;
let front: ClickHouseFront | undefined;
let server: Store | undefined;
let dirs: string[] = [];

// one chDB directory per process: the front's first, then the embedded store's
beforeAll(() => {
  dirs = [tempDir('parts-server'), tempDir('parts-embedded')];
});
afterAll(async () => {
  await release(server, front, embedded, ...dirs);
});

const ctx = (db: string) => ({ db, flowsTtlDays: 3650, eventsTtlDays: 3650 });
const parts = (store: Store, db: string, table: string) => store.query<{ part_type: string; rows: string }>(
  'SELECT part_type, rows FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active ORDER BY name', { db, t: table });
const count = async (store: Store, db: string, table: string) => Number((await store.query<{ n: string }>(`SELECT count() n FROM ${db}.${table}`))[0]!.n);
async function insertBoth(store: Store, db: string, token: string): Promise<void> {
  await store.database(db).insert('flows', TableRows.of('flows', rows.flows), token);
  await store.database(db).insert('events', TableRows.of('events', rows.events), token);
}

describe('compact parts for flows and events inserts (migration 12)', () => {
  const fresh = async (store: Store) => {
    await migrate(store, ctx('fresh'));
    await insertBoth(store, 'fresh', 'fresh');
    for (const table of ['flows', 'events']) {
      expect(await count(store, 'fresh', table)).toBe(ROWS);
      const ps = await parts(store, 'fresh', table);
      expect(ps.length).toBeGreaterThan(0);
      expect(ps.map((p) => p.part_type)).toEqual(ps.map(() => 'Compact'));
    }
    const [def] = await store.query<{ q: string }>("SELECT create_table_query q FROM system.tables WHERE database = 'fresh' AND name = 'flows'");
    expect(def!.q).toContain(`min_rows_for_wide_part = ${WIDE_PART_ROWS}`);
  };

  it(`writes a ${ROWS.toLocaleString()}-row insert as compact parts through a server's HTTP interface, every row stored`, async () => {
    expect(rows.flows).toHaveLength(ROWS);
    expect(rows.events).toHaveLength(ROWS);
    front = await ClickHouseFront.start(dirs[0]!);
    server = await openStore({ url: front.url, database: 'ctpipe' });
    await fresh(server);
    await release(server, front);
    [server, front] = [undefined, undefined];
  });

  it(`writes a ${ROWS.toLocaleString()}-row insert as compact parts embedded, every row stored`, async () => {
    embedded = await openStore({ url: `chdb:${dirs[1]}`, database: 'ctpipe' });
    await fresh(embedded);
  });

  it('upgrades a store of version 11: its wide parts and rows kept, compact parts from then on, merges past 1,000,000 rows wide', async () => {
    const db = 'v11';
    const store = embedded!;
    expect(await migrate(store, ctx(db), 11)).toMatchObject({ to: SCHEMA_VERSION, applied: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] });
    await store.command(`SYSTEM STOP MERGES ${db}.flows`); // the parts as inserted, until the merge below
    await insertBoth(store, db, 'before');
    expect((await parts(store, db, 'flows')).map((p) => p.part_type)).toEqual(['Wide']); // ClickHouse's defaults: what the upgrade finds
    expect(await migrate(store, ctx(db))).toMatchObject({ from: 11, applied: [12] });
    expect(await migrate(store, ctx(db))).toMatchObject({ applied: [] });
    // the same rows under a new token (the flows table's version keeps them one row per flow id)
    await insertBoth(store, db, 'after');
    expect((await parts(store, db, 'flows')).map((p) => p.part_type)).toEqual(['Wide', 'Compact']);
    expect(await count(store, db, 'flows')).toBe(2 * ROWS);
    expect(await count(store, db, 'events')).toBe(2 * ROWS);
    // two more compact parts in the same partition, then one merge of all four: 1,400,000 rows, wide
    for (let i = 0; i < 2; i++) {
      await store.command(`INSERT INTO ${db}.flows (host, run, flow_id, first_seen, version) SELECT 'merge', 'm', toString(number + {i:UInt64}), ` +
        'toDateTime64({t:UInt32}, 9, \'UTC\'), 1 FROM numbers(600000)', { i: i * 600_000, t: Number(rows.flows[0]!.first_seen.sec) }); // the same day: one partition
    }
    expect((await parts(store, db, 'flows')).map((p) => p.part_type)).toEqual(['Wide', 'Compact', 'Compact', 'Compact']);
    await store.command(`SYSTEM START MERGES ${db}.flows`);
    await store.command(`OPTIMIZE TABLE ${db}.flows FINAL`);
    const merged = await parts(store, db, 'flows');
    expect(merged.map((p) => p.part_type)).toEqual(['Wide']);
    expect(Number(merged[0]!.rows)).toBeGreaterThanOrEqual(WIDE_PART_ROWS);
    expect(await count(store, db, 'flows')).toBe(ROWS + 1_200_000); // the same flow ids twice: replaced by the merge
  });
});
