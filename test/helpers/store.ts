/** Reading a ctpipe store (chDB or ClickHouse) in tests. */
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';

/** The rows `sql` returns. */
export async function select<T = Record<string, string>>(store: Store, sql: string): Promise<T[]> {
  return store.query<T>(sql);
}

/** The first value of the first row `sql` returns, as a number (a count, a sum). */
export async function scalar(store: Store, sql: string): Promise<number> {
  return Number(Object.values((await select(store, sql))[0]!)[0]);
}

/** The rows `sql` returns from the chDB store at `dir`, opened for this query alone (chDB serves one process). */
export async function queryStore<T = Record<string, string>>(dir: string, sql: string): Promise<T[]> {
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    return await select<T>(store, sql);
  } finally {
    await store.close();
  }
}
