/**
 * Network attributes in ClickHouse: the rows of each loaded networks file (`networks`, one
 * generation per load), which generation is current (`network_loads`), an ip_trie dictionary over
 * the current one (`networks_dict`), and ten `flows` columns whose DEFAULT looks the flow's
 * addresses up in it. The insert leaves them out, so ClickHouse fills them as each row is stored:
 * a changed file names new rows only, and a row keeps the names it was stored with.
 *
 * On a cluster every node holds every generation (one Keeper path for all shards), the dictionary
 * is created ON CLUSTER on each node and reads its own copy, and a load reloads it ON CLUSTER;
 * the dictionary's LIFETIME also reloads it wherever the current generation changed
 * (invalidate_query), so a node that missed the reload catches up within two minutes.
 */
import { CH, type ColumnDef } from '../clickhouse/ch-type.js';
import type { SchemaContext } from '../clickhouse/schema.js';
import { NETWORK_ATTRIBUTES } from './file.js';

const LC = CH.LowCardinality(CH.String);
const SIDES = ['src', 'dst'] as const;

/** `orig_src_net_name` ... `orig_dst_net_tenant`: filled by ClickHouse, in this order. */
export const NETWORK_COLUMNS = SIDES.flatMap((side) => NETWORK_ATTRIBUTES.map((a) => ({
  name: `orig_${side}_net_${a}`, type: LC, filled: true as const, side, attribute: a,
}))) satisfies readonly ColumnDef[];

export const DICTIONARY = 'networks_dict';

const onCluster = (c: SchemaContext) => (c.cluster ? ` ON CLUSTER ${c.cluster}` : '');

/** The current generation: the one loaded last (a failed load points back to the one before). */
export const currentGenerationSql = (db: string) => `SELECT argMax(generation, loaded_at) FROM ${db}.network_loads`;

/** The statements of migration 10. */
export function networkStatements(c: SchemaContext): string[] {
  const on = onCluster(c);
  // every node keeps all of it: one path for the whole cluster, each replica named by shard and replica
  const engine = (t: string) => (c.cluster ? `ReplicatedMergeTree('/clickhouse/tables/all/${c.db}/${t}', '{shard}-{replica}')` : 'MergeTree');
  const attrs = NETWORK_ATTRIBUTES.map((a) => `${a} String`).join(', ');
  const query = `SELECT cidr, ${NETWORK_ATTRIBUTES.join(', ')} FROM ${c.db}.networks WHERE generation = (${currentGenerationSql(c.db)})`;
  const flowsTables = [...(c.cluster ? ['flows_local'] : []), 'flows'];
  return [
    `CREATE TABLE IF NOT EXISTS ${c.db}.networks${on} (generation UInt64, line UInt32, cidr String, ${attrs}) ENGINE = ${engine('networks')} ORDER BY (generation, cidr)`,
    `CREATE TABLE IF NOT EXISTS ${c.db}.network_loads${on} (generation UInt64, loaded_at DateTime64(9, 'UTC'), file String, networks UInt32, processor String) ENGINE = ${engine('network_loads')} ORDER BY (loaded_at, generation)`,
    `CREATE DICTIONARY IF NOT EXISTS ${c.db}.${DICTIONARY}${on} (cidr String, ${NETWORK_ATTRIBUTES.map((a) => `${a} String DEFAULT ''`).join(', ')}) PRIMARY KEY cidr ` +
      `SOURCE(CLICKHOUSE(query '${query}' invalidate_query '${currentGenerationSql(c.db)}')) LAYOUT(IP_TRIE) LIFETIME(MIN 60 MAX 120)`,
    ...flowsTables.flatMap((t) => NETWORK_COLUMNS.map((col) =>
      `ALTER TABLE ${c.db}.${t}${on} ADD COLUMN IF NOT EXISTS ${col.name} LowCardinality(String) DEFAULT dictGet('${c.db}.${DICTIONARY}', '${col.attribute}', orig_${col.side})`)),
    // Rows stored before this migration would otherwise compute the names at every read (today's
    // file, not theirs): a background mutation stores them once (empty: no file was loaded yet).
    ...NETWORK_COLUMNS.map((col) => `ALTER TABLE ${c.db}.${c.cluster ? 'flows_local' : 'flows'}${on} MATERIALIZE COLUMN ${col.name}`),
  ];
}
