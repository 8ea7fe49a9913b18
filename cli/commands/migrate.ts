/** `ctpipe migrate`: creates or upgrades the ClickHouse schema (idempotent). */
import { migrate } from '../../processor/clickhouse/migrate.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { connectStore, schemaContext } from '../store.js';

export const migrateSpec: CommandSpec = {
  name: 'migrate',
  summary: 'create or upgrade the ClickHouse schema (a second run changes nothing)',
  usage: 'ctpipe migrate [--clickhouse-url chdb:./data|http://HOST:8123] [--clickhouse-cluster NAME]',
  parts: ['store', 'database', 'schema'],
};

export async function runMigrate(cfg: Config): Promise<number> {
  const store = await connectStore(cfg);
  try {
    const r = await migrate(store, schemaContext(cfg));
    process.stdout.write(r.applied.length
      ? `schema of ${cfg.clickhouse.database} upgraded from version ${r.from} to ${r.to} (applied ${r.applied.join(', ')})\n`
      : `schema of ${cfg.clickhouse.database} is current (version ${r.to}); nothing to do\n`);
    return 0;
  } finally {
    await store.close();
  }
}
