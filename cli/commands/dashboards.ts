/** `ctpipe dashboards`: writes the Grafana dashboards and provisioning files (dashboards/generate.ts) and the Prometheus rules (dashboards/prometheus.ts). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../common/paths.js';
import { writeGenerated } from '../../dashboards/generate.js';
import { prometheusGenerated } from '../../dashboards/prometheus.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';

export const dashboardsSpec: CommandSpec = {
  name: 'dashboards',
  summary: 'write the Grafana dashboards, data source, alert rules and contact point files, and the Prometheus alert rules',
  usage: 'ctpipe dashboards [--out DIR] [--clickhouse-database NAME]',
  parts: ['database'],
  own: { out: { type: 'string', description: 'directory to write (default: dashboards/grafana in the package; the Prometheus rules to dashboards/prometheus, or with --out to DIR/prometheus)' } },
};

export async function runDashboards(cfg: Config, own: Record<string, unknown>): Promise<number> {
  const dir = (own.out as string | undefined) ?? path.join(packageRoot(), 'dashboards', 'grafana');
  const files = writeGenerated(dir, cfg.clickhouse.database);
  const promDir = own.out ? path.join(dir, 'prometheus') : path.join(packageRoot(), 'dashboards', 'prometheus');
  mkdirSync(promDir, { recursive: true });
  for (const [rel, content] of prometheusGenerated()) {
    writeFileSync(path.join(promDir, rel), content);
    files.push(path.join(promDir, rel));
  }
  process.stdout.write(`${files.length} files written to ${dir} and ${promDir} (queries on database ${cfg.clickhouse.database})\n`);
  return 0;
}
