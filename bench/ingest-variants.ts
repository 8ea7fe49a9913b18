/**
 * What each part of the real `flows` table costs an embedded insert (issue 19): the schema built by
 * the real migrations in one database per variant, one thing changed in each (a column's DEFAULT,
 * columns dropped, a view, indexes, part format, an insert setting), the same RowBinary files
 * inserted the way the store does (`INSERT ... SETTINGS ... SELECT FROM file()`). CPU per row is
 * this process's (chDB's threads and the call's own JS) during the inserts only, merges stopped
 * (the storm's CPU, bench/e2e.ts, includes them); rows/s is wall
 * time over the inserts, one after the other. Variants alternate within each round; medians of
 * `rounds`; every run checks that every row was stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LoadFiles } from '../processor/clickhouse/load-files.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import { TableRows, type TableCodec } from '../processor/clickhouse/table-rows.js';
import { K8S_FLOW_COLUMNS } from '../processor/k8s/columns.js';
import { parseNetworks } from '../processor/networks/file.js';
import { loadNetworks } from '../processor/networks/load.js';
import { NETWORK_COLUMNS } from '../processor/networks/schema.js';
import type { Store } from '../processor/store.js';
import { tableRows } from './ingest.js';

export interface Variant {
  name: string;
  /** Statements after the migrations, `DB` standing for the variant's database. */
  setup?: string[];
  /** Insert settings over the store's. */
  settings?: Record<string, number>;
  /** Columns of the file not inserted (still read and parsed). */
  skip?: readonly string[];
  /** A networks file loaded first (the dictionary then names every address). */
  networks?: boolean;
  /** Rows per insert (default the bench's batch). */
  batch?: number;
}

export interface VariantRow {
  name: string;
  batch: number;
  chUsPerRow: number;
  /** Spread of the rounds: min and max. */
  chUsMin: number;
  chUsMax: number;
  rowsPerSecond: number;
}

export interface VariantsResult {
  rows: number;
  rounds: number;
  variants: VariantRow[];
  loadavg: [number, number];
}

const STORE_SETTINGS = { insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, optimize_on_insert: 0, async_insert: 0 };
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const flows = 'DB.flows';
// one dictionary lookup per address for all five attributes (identical subexpressions are computed once)
const tupleDefault = (c: (typeof NETWORK_COLUMNS)[number]) =>
  `tupleElement(dictGet('DB.networks_dict', ('name', 'role', 'site', 'region', 'tenant'), orig_${c.side}), '${c.attribute}')`;
const tupleSetup = NETWORK_COLUMNS.map((c) => `ALTER TABLE ${flows} MODIFY COLUMN ${c.name} DEFAULT ${tupleDefault(c)}`);

/** The variants measured (issue 19's suspects, one at a time). */
export const VARIANTS: Variant[] = [
  { name: 'flows as migrated (base)' },
  { name: 'network columns DEFAULT \'\' (no dictGet)', setup: NETWORK_COLUMNS.map((c) => `ALTER TABLE ${flows} MODIFY COLUMN ${c.name} DEFAULT ''`) },
  { name: 'network columns dropped', setup: [`ALTER TABLE ${flows} ${NETWORK_COLUMNS.map((c) => `DROP COLUMN ${c.name}`).join(', ')}`] },
  { name: 'k8s columns not stored (dropped; still parsed)', skip: K8S_FLOW_COLUMNS.map((c) => c.name), setup: [`ALTER TABLE ${flows} ${K8S_FLOW_COLUMNS.map((c) => `DROP COLUMN ${c.name}`).join(', ')}`] },
  { name: 'no materialized view (flows_1m_mv dropped)', setup: ['DROP VIEW DB.flows_1m_mv SYNC'] },
  { name: 'no skip indexes', setup: [`ALTER TABLE ${flows} DROP INDEX addresses_bf, DROP INDEX flow_ids_bf, DROP INDEX orig_dport_set`] },
  { name: 'insert_deduplicate = 0 (views too)', settings: { insert_deduplicate: 0, deduplicate_blocks_in_dependent_materialized_views: 0 } },
  // migration 11 made the base's parts compact; before it, they were wide (ClickHouse's defaults)
  { name: 'wide parts (min_rows_for_wide_part = 0)', setup: [`ALTER TABLE ${flows} MODIFY SETTING min_rows_for_wide_part = 0`] },
  { name: 'compact parts up to 1 GiB', setup: [`ALTER TABLE ${flows} MODIFY SETTING min_bytes_for_wide_part = 1073741824, min_rows_for_wide_part = 100000000`] },
  { name: 'max_threads = 1', settings: { max_threads: 1 } },
  { name: 'max_insert_threads = 2', settings: { max_insert_threads: 2 } },
  { name: 'input_format_parallel_parsing = 0', settings: { input_format_parallel_parsing: 0 } },
  { name: 'no TTL', setup: [`ALTER TABLE ${flows} REMOVE TTL`] },
  { name: 'batch 100,000 rows', batch: 100_000 },
  { name: 'batch 25,000 rows', batch: 25_000 },
  { name: 'network columns: one tuple dictGet per address', setup: tupleSetup },
  { name: 'networks loaded (base)', networks: true },
  { name: 'networks loaded, one tuple dictGet per address', networks: true, setup: tupleSetup },
];

/** A networks file naming the bench's addresses (198.51.0.0/16 clients, 203.0.113.0/24 servers) among 500 others. */
function networksFile(): string {
  const lines = ['cidr,name,role,site,region,tenant', '198.51.0.0/16,clients,client,par1,eu,acme', '203.0.113.0/24,servers,server,fra1,eu,acme'];
  for (let i = 0; i < 500; i++) lines.push(`10.${i >> 8}.${i & 255}.0/24,net-${i},role-${i % 7},site-${i % 13},eu,t${i % 5}`);
  return `${lines.join('\n')}\n`;
}

export async function runIngestVariants(variants: Variant[] = VARIANTS, flowCount = 200_000, batch = 50_000, rounds = 5,
  progress: (s: string) => void = () => {}): Promise<VariantsResult> {
  const load0 = os.loadavg()[0]!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctpipe-variants-'));
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  const files = LoadFiles.open();
  try {
    const rows = tableRows(flowCount, 0).flows;
    // the files of each batch size, written once
    const byBatch = new Map<number, { paths: string[]; codec: TableCodec }>();
    for (const b of new Set(variants.map((v) => v.batch ?? batch))) {
      const paths: string[] = [];
      let codec = TableRows.empty('flows').codec;
      for (let i = 0; i < rows.length; i += b) {
        const t = TableRows.of('flows', rows.slice(i, i + b));
        codec = t.codec;
        paths.push(files.write(t.pieces));
      }
      byBatch.set(b, { paths, codec });
    }
    const dbs = variants.map((_, i) => `v${i}`);
    for (const [i, v] of variants.entries()) {
      progress(`variants: migrating ${v.name}`);
      await migrate(store, { db: dbs[i]!, flowsTtlDays: 3650, eventsTtlDays: 3650 });
      for (const q of v.setup ?? []) await store.command(q.replaceAll('DB.', `${dbs[i]}.`));
      // the inserts' own cost: a merge started by one variant's parts would run during the next one's
      for (const t of ['flows', 'flows_1m', 'flows_state_1m', 'fleet_1m']) await store.command(`SYSTEM STOP MERGES ${dbs[i]}.${t}`);
      if (v.networks) {
        await loadNetworks(store.database(dbs[i]!), parseNetworks(networksFile(), 'bench.csv'), { file: 'bench.csv', processor: 'bench' });
      }
    }
    const us: number[][] = variants.map(() => []);
    const walls: number[][] = variants.map(() => []);
    let token = 0;
    for (let round = 0; round < rounds; round++) {
      for (const [i, v] of variants.entries()) {
        progress(`variants: round ${round + 1} ${v.name}`);
        const db = dbs[i]!;
        for (const t of ['flows', 'flows_1m', 'flows_state_1m', 'fleet_1m']) await store.command(`TRUNCATE TABLE ${db}.${t}`);
        const { paths, codec } = byBatch.get(v.batch ?? batch)!;
        const names = codec.names.filter((n) => !v.skip?.includes(n));
        const settings = { ...STORE_SETTINGS, ...v.settings };
        const set = Object.entries(settings).map(([k, x]) => `${k} = ${Number(x)}`).join(', ');
        const c0 = cpuUs();
        const t0 = performance.now();
        for (const p of paths) {
          await store.command(`INSERT INTO ${db}.flows (${names.join(', ')}) SETTINGS insert_deduplication_token = 'v${token++}', ${set} ` +
            `SELECT ${names.join(', ')} FROM file({p:String}, 'RowBinary', {s:String})`, { p, s: codec.structure });
        }
        us[i]!.push((cpuUs() - c0) / rows.length);
        walls[i]!.push((performance.now() - t0) / 1000);
        await check(store, db, rows.length, v);
      }
    }
    return {
      rows: rows.length, rounds, loadavg: [load0, os.loadavg()[0]!],
      variants: variants.map((v, i) => ({
        name: v.name, batch: v.batch ?? batch, chUsPerRow: median(us[i]!), chUsMin: Math.min(...us[i]!), chUsMax: Math.max(...us[i]!),
        rowsPerSecond: rows.length / median(walls[i]!),
      })),
    };
  } finally {
    files.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every row stored, and with a networks file loaded, every row named. */
async function check(store: Store, db: string, n: number, v: Variant): Promise<void> {
  const [r] = await store.query<{ n: string; named: string }>(
    `SELECT count() n, ${v.networks ? "countIf(orig_src_net_name = 'clients' AND orig_dst_net_role = 'server')" : '0'} named FROM ${db}.flows`);
  if (Number(r!.n) !== n) throw new Error(`variants guard: ${r!.n} of ${n} rows stored (${v.name})`);
  if (v.networks && Number(r!.named) !== n) throw new Error(`variants guard: ${r!.named} of ${n} rows named (${v.name})`);
}
