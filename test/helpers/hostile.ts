/** Stored data with hostile names in it: a synthetic fleet's rows copied with one host's name (and its kinds and states) replaced. */
import type { Store } from '../../processor/store.js';

export const FLEET_TABLES = ['flows', 'host_stats', 'pipeline_health', 'anomalies', 'processor_stats', 'dead_letters'];
const HAS_HOST = new Set(['flows', 'host_stats', 'pipeline_health', 'anomalies']);

/**
 * Copies every fleet table of database `from` into `to`, host `host`'s rows renamed `names.host`
 * (its anomalies' kind `names.kind`, its S0 flows' conn_state `names.state`, when given); with
 * `only`, that host's rows alone (and the tables without a host whole).
 */
export async function copyRenamed(store: Store, from: string, to: string, host: string, names: { host: string; kind?: string; state?: string }, only = false): Promise<void> {
  const p = { from_host: host, h: names.host, k: names.kind ?? '', s: names.state ?? '' };
  for (const t of FLEET_TABLES) {
    const cols = (await store.query<{ name: string }>(
      "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position", { db: from, t }))
      .map((c) => c.name);
    // the source's columns renamed: an alias named as a column hides it in the rest of the query
    const src = `(SELECT ${cols.map((c) => `${c} AS src_${c}`).join(', ')} FROM ${from}.${t})`;
    const renamed = (c: string) => c === 'host' ? 'if(src_host = {from_host:String}, {h:String}, src_host)'
      : c === 'kind' && t === 'anomalies' && names.kind ? 'if(src_host = {from_host:String}, {k:String}, src_kind)'
        : c === 'conn_state' && names.state ? "if(src_host = {from_host:String} AND src_conn_state = 'S0', {s:String}, src_conn_state)" : `src_${c}`;
    const where = only && HAS_HOST.has(t) ? ' WHERE src_host = {from_host:String}' : '';
    await store.command(`INSERT INTO ${to}.${t} (${cols.join(', ')}) SELECT ${cols.map((c) => `${renamed(c)} AS ${c}`).join(', ')} FROM ${src}${where}`, p);
  }
}
