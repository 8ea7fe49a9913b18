/** Opening the configured ClickHouse, with errors that say which address and what to check. */
import { existsSync } from 'node:fs';
import { CtpipeError, errorMessage } from '../common/errors.js';
import { redactUrls } from '../common/redact.js';
import type { Logger } from '../common/log.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import type { Store } from '../processor/store.js';
import type { SchemaContext } from '../processor/clickhouse/schema.js';
import type { Config } from './config.js';

/** `readonly`: the store of a command that only reads (StoreOptions.readonly). */
export async function connectStore(cfg: Config, o: { readonly?: boolean } = {}): Promise<Store> {
  const c = cfg.clickhouse;
  // a command that only reads never makes an empty store (chDB creates its directory on open)
  const dir = c.url.startsWith('chdb:') ? c.url.slice(5) || './data' : undefined;
  if (o.readonly && dir !== undefined && !existsSync(dir)) {
    throw new CtpipeError('STORE_UNAVAILABLE', `there is no embedded store at ${dir} (ctpipe run makes it; --clickhouse-url chdb:PATH names another, http://HOST:8123 a ClickHouse server)`);
  }
  const store = await openStore({ url: c.url, database: c.database, username: c.username, password: c.password, passwordFile: c.password_file, readonly: o.readonly });
  try {
    await store.ping();
  } catch (e) {
    await store.close().catch(() => undefined);
    const what = c.url.startsWith('chdb:')
      ? `the embedded ClickHouse at ${c.url.slice(5) || './data'} cannot be opened (is another ctpipe process using that directory?)`
      : `ClickHouse at ${redactUrls(c.url)} cannot be reached (is it running, and are the address, user and password right?)`;
    throw new CtpipeError('STORE_UNAVAILABLE', `${what}: ${errorMessage(e)}`);
  }
  return store;
}

export function schemaContext(cfg: Config): SchemaContext {
  const c = cfg.clickhouse;
  return { db: c.database, cluster: c.cluster, flowsTtlDays: c.flows_ttl_days, eventsTtlDays: c.events_ttl_days };
}

/** Opens the store and brings its schema up to date (what `run` and `process` do at start). */
export async function connectMigratedStore(cfg: Config, log: Logger): Promise<Store> {
  const store = await connectStore(cfg);
  const m = await migrate(store, schemaContext(cfg));
  if (m.applied.length) log.info({ applied: m.applied, database: cfg.clickhouse.database }, 'schema created or upgraded');
  return store;
}
