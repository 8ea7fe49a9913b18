/** `ctpipe report --html FILE`: the dashboards' main panels as one HTML page (dashboards/report.ts). */
import { writeFileSync } from 'node:fs';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { redactUrls } from '../../common/redact.js';
import { didYouMean } from '../../common/suggest.js';
import { dashboards } from '../../dashboards/generate.js';
import { REPORT_PANELS, renderReport, type ReportSection } from '../../dashboards/report.js';
import { resolveVariables, runDashboard } from '../../dashboards/run-queries.js';
import type { CommandSpec } from '../args.js';
import { parseDuration, type Config } from '../config.js';
import { connectStore } from '../store.js';
import type { Store } from '../../processor/store.js';

export const reportSpec: CommandSpec = {
  name: 'report',
  summary: 'write the dashboards\' main panels as one self-contained HTML page (no Grafana needed)',
  usage: 'ctpipe report --html report.html [--since 6h | --from 2026-11-21T10:00:00Z --to 2026-11-21T11:00:00Z] [--report-host NAME]',
  parts: ['store', 'database'],
  own: {
    html: { type: 'string', description: 'the HTML file to write' },
    since: { type: 'string', description: 'the range ends now and starts this long ago (default 6h)' },
    from: { type: 'string', description: 'start of the range (ISO 8601)' },
    to: { type: 'string', description: 'end of the range (ISO 8601, default now)' },
    'report-host': { type: 'string', description: 'the host of the Host detail section (default: the first host with statistics)' },
  },
};

function time(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(String(v));
  if (Number.isNaN(t)) throw new CtpipeError('CONFIG_INVALID', `--${name} must be an ISO 8601 time such as 2026-11-21T10:00:00Z, not "${String(v)}"`);
  return t;
}

export async function runReport(cfg: Config, own: Record<string, unknown>): Promise<number> {
  const file = own.html as string | undefined;
  if (!file) throw new CtpipeError('CONFIG_INVALID', 'usage: ctpipe report --html FILE (see ctpipe report --help)');
  const toMs = time(own.to, 'to') ?? Date.now();
  let since: number;
  try {
    since = parseDuration((own.since as string | undefined) ?? '6h');
  } catch (e) {
    throw new CtpipeError('CONFIG_INVALID', `--since: ${errorMessage(e)}`);
  }
  const fromMs = time(own.from, 'from') ?? toMs - since;
  if (fromMs >= toMs) throw new CtpipeError('CONFIG_INVALID', '--from must be before --to');
  // about 200 points across the range, as Grafana picks the interval for a panel's width
  const intervalMs = Math.max(1000, Math.round((toMs - fromMs) / 200 / 1000) * 1000);
  const store = await connectStore(cfg, { readonly: true });
  try {
    if (own['report-host'] !== undefined) await knownHost(store, cfg.clickhouse.database, String(own['report-host']));
    const sections: ReportSection[] = [];
    for (const d of dashboards(cfg.clickhouse.database)) {
      const keep = REPORT_PANELS[d.uid!];
      if (!keep) continue;
      const ctx = { fromMs, toMs, intervalMs };
      const vars = await resolveVariables(store, d, ctx, 'all');
      if (own['report-host'] && vars.host && !vars.host.all) vars.host = { values: [String(own['report-host'])] };
      const results = await runDashboard(store, d, { ...ctx, vars }, keep); // only the panels shown
      const host = vars.host && !vars.host.all ? `: ${vars.host.values[0] ?? 'no host'}` : '';
      sections.push({ title: `${d.title!.replace('ctpipe / ', '')}${host}`, results });
    }
    writeFileSync(file, renderReport(sections, { fromMs, toMs, store: redactUrls(cfg.clickhouse.url) }));
    const panels = sections.reduce((n, s) => n + new Set(s.results.map((r) => r.panel!.id)).size, 0);
    process.stdout.write(`${file}: ${panels} panels from ${sections.length} dashboards, ${new Date(fromMs).toISOString()} to ${new Date(toMs).toISOString()}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** Refuses a host the store holds nothing of, naming the closest it does hold. */
async function knownHost(store: Store, db: string, host: string): Promise<void> {
  const hosts = (await store.query<{ host: string }>(
    `SELECT DISTINCT host FROM (SELECT host FROM ${db}.host_stats UNION ALL SELECT host FROM ${db}.flows) ORDER BY host LIMIT 10000`)).map((r) => r.host);
  if (hosts.includes(host)) return;
  const some = hosts.slice(0, 5).join(', ');
  throw new CtpipeError('CONFIG_INVALID', `--report-host: the store holds nothing of host "${host}"${didYouMean(host, hosts)}` +
    (hosts.length ? ` (it holds ${hosts.length} host(s): ${some}${hosts.length > 5 ? ', ...' : ''})` : ' (it holds no host yet)'));
}
