/** `ctpipe dashboards`: writes the Grafana dashboards and provisioning files (dashboards/generate.ts). */
import path from 'node:path';
import { packageRoot } from '../../common/paths.js';
import { writeGenerated } from '../../dashboards/generate.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';

export const dashboardsSpec: CommandSpec = {
  name: 'dashboards',
  summary: 'write the Grafana dashboards, data source, alert rules and contact point files',
  usage: 'ctpipe dashboards [--out DIR] [--clickhouse-database NAME]',
  parts: ['database'],
  own: { out: { type: 'string', description: 'directory to write (default: dashboards/grafana in the package)' } },
};

export async function runDashboards(cfg: Config, own: Record<string, unknown>): Promise<number> {
  const dir = (own.out as string | undefined) ?? path.join(packageRoot(), 'dashboards', 'grafana');
  const files = writeGenerated(dir, cfg.clickhouse.database);
  process.stdout.write(`${files.length} files written to ${dir} (queries on database ${cfg.clickhouse.database})\n`);
  return 0;
}
