/**
 * The dashboards as code (dashboards/): the committed files are what the code generates; the
 * dashboards, alert rules and provisioning files pass the lint checks, and each check is shown to
 * catch what it is for; the macro expander produces what the ClickHouse plugin and Grafana do.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { alertRules } from '../../dashboards/alerts.js';
import { dashboards, generated } from '../../dashboards/generate.js';
import { lintAlertRules, lintDashboards, lintProvisioning } from '../../dashboards/lint.js';
import { expand, MacroError, unsafeVariables } from '../../dashboards/macros.js';
import { renderReport } from '../../dashboards/report.js';
import type { Result } from '../../dashboards/run-queries.js';
import { packageRoot } from '../../common/paths.js';

const ROOT = path.join(packageRoot(), 'dashboards', 'grafana');
const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
  const p = path.join(dir, f);
  return statSync(p).isDirectory() ? files(p) : [path.relative(ROOT, p)];
});

describe('dashboards as code', () => {
  it('the committed files are exactly what the code generates (npm run dashboards)', () => {
    const want = generated('ctpipe');
    expect(files(ROOT).sort()).toEqual([...want.keys()].sort());
    for (const [rel, content] of want) expect(readFileSync(path.join(ROOT, rel), 'utf8'), rel).toBe(content);
  });

  it('passes the dashboard, alert rule and provisioning checks', () => {
    const ds = dashboards('ctpipe');
    expect(ds.map((d) => d.uid)).toEqual(['ctpipe-fleet', 'ctpipe-host', 'ctpipe-flows', 'ctpipe-networks', 'ctpipe-anomalies', 'ctpipe-pipeline']);
    expect(lintDashboards(ds)).toEqual([]);
    expect(lintAlertRules(alertRules('ctpipe').groups, ds)).toEqual([]);
    const yaml = (rel: string) => parse(readFileSync(path.join(ROOT, 'provisioning', rel), 'utf8')) as unknown;
    expect(lintProvisioning('datasources', yaml('datasources/ctpipe-clickhouse.yaml'))).toEqual([]);
    expect(lintProvisioning('providers', yaml('dashboards/ctpipe.yaml'))).toEqual([]);
    expect(lintProvisioning('rules', yaml('alerting/ctpipe-rules.yaml'))).toEqual([]);
    expect(lintProvisioning('contactPoints', yaml('alerting/ctpipe-contact-points.yaml'))).toEqual([]);
    // every data source reference resolves to the provisioned one: rules by uid, panels through
    // the `datasource` variable of the provisioned type
    const provisioned = (yaml('datasources/ctpipe-clickhouse.yaml') as { datasources: { uid: string; type: string }[] }).datasources;
    const rules = (yaml('alerting/ctpipe-rules.yaml') as { groups: { rules: { data: { datasourceUid: string }[] }[] }[] }).groups.flatMap((g) => g.rules);
    expect(new Set(rules.flatMap((r) => r.data.map((q) => q.datasourceUid)))).toEqual(new Set([provisioned[0]!.uid, '__expr__']));
    for (const d of ds) expect(d.templating?.list?.find((v) => v.name === 'datasource')?.query, d.uid).toBe(provisioned[0]!.type);
    const contact = yaml('alerting/ctpipe-contact-points.yaml') as { contactPoints: { name: string }[]; policies: { receiver: string }[] };
    expect(contact.contactPoints.map((c) => c.name)).toContain(contact.policies[0]!.receiver);
  });

  it('the checks catch what they are for', () => {
    const broken = JSON.parse(JSON.stringify(dashboards('ctpipe'))) as ReturnType<typeof dashboards>;
    const fleet = broken[0]!;
    const [a, b] = [fleet.panels![1]!, fleet.panels![2]!];
    b.gridPos = { ...a.gridPos! };
    b.id = a.id;
    const target = (fleet.panels![8] as unknown as { targets: { rawSql: string }[] }).targets[0]!;
    target.rawSql = target.rawSql.replaceAll('$__timeFilter(ts)', '1=1').replace('${host:percentencode}', '${hots:percentencode}');
    const other = (fleet.panels![3] as unknown as { targets: { rawSql: string }[] }).targets[0]!;
    other.rawSql += " AND host IN (${host:singlequote}) AND x = '$host'";
    const problems = lintDashboards(broken).join('\n');
    expect(problems).toContain('overlaps panel');
    expect(problems).toContain('id missing or repeated');
    expect(problems).toContain('no time filter macro');
    expect(problems).toContain('undefined variable hots');
    expect(problems).toContain(`${fleet.uid!} panel ${String(fleet.panels![3]!.id)}`);
    expect(problems.match(/variable host reaches the SQL other than through/g)).toHaveLength(2); // :singlequote and the plugin's raw scalar
    const rules = structuredClone(alertRules('ctpipe').groups);
    rules[0]!.rules[0]!.condition = 'Z';
    (rules[0]!.rules[1]!.data[0]!.model as { rawSql: string }).rawSql += ' AND host IN (${host:singlequote})';
    rules[0]!.rules[2]!.panelId = 999;
    const ruleProblems = lintAlertRules(rules, dashboards('ctpipe')).join('\n');
    expect(ruleProblems).toContain('condition Z is no query');
    expect(ruleProblems).toContain('dashboard-only tokens');
    expect(ruleProblems).toContain('panel 999 does not exist');
    expect(lintProvisioning('providers', { apiVersion: 1, providers: [{ name: 'x', options: { path: '/x', foldersFromFileStructure: true } }] }))
      .toEqual(['providers: unknown key .providers[0].options.foldersFromFileStructure']);
  });
});

describe('macro expansion (the ClickHouse plugin and Grafana)', () => {
  const ctx = { fromMs: 1_795_000_000_000, toMs: 1_795_003_600_500, intervalMs: 15_000 };

  it('expands the backend macros as pkg/macros/macros.go does', () => {
    expect(expand('SELECT $__timeInterval(ts) AS time, count() / $__interval_s FROM t WHERE $__timeFilter(ts)', ctx))
      .toBe('SELECT toStartOfInterval(toDateTime(ts), INTERVAL 15 second) AS time, count() / 15 FROM t WHERE ts >= toDateTime(1795000000) AND ts <= toDateTime(1795003600)');
    expect(expand('$__fromTime $__toTime $__timeFilter_ms(t) $__interval_ms', { ...ctx, intervalMs: 500 }))
      .toBe('toDateTime(1795000000) toDateTime(1795003600) t >= fromUnixTimestamp64Milli(1795000000000) AND t <= fromUnixTimestamp64Milli(1795003600500) 500');
    expect(expand('$__interval_s', { ...ctx, intervalMs: 200 })).toBe('1'); // at least one second
    expect(() => expand('$__timeGroup(ts, 5m)', ctx)).toThrow(MacroError);
    expect(() => expand('$__timeFilter(a, b)', ctx)).toThrow('takes 1 argument');
  });

  it('applies $__conditionalAll and the variables as the browser does, and leaves both alone in alert rules', () => {
    const sql = "SELECT 1 FROM t WHERE $__conditionalAll(host IN (${host:singlequote}), $host) AND x = ${x:sqlstring} AND p IN (${p:csv})";
    const vars = { host: { values: ["fw-1", "o'brien"] }, x: { values: ["it's"] }, p: { values: [], all: true, options: ['6', '17'] } };
    expect(expand(sql, { ...ctx, vars })).toBe("SELECT 1 FROM t WHERE host IN ('fw-1','o\\'brien') AND x = 'it''s' AND p IN (6,17)");
    expect(expand(sql, { ...ctx, vars: { ...vars, host: { values: [], all: true, options: ['a'] } } })).toBe("SELECT 1 FROM t WHERE 1=1 AND x = 'it''s' AND p IN (6,17)");
    expect(expand('SELECT $host', { ...ctx, vars: { host: { values: ['a', 'b'] } } })).toBe("SELECT 'a','b'"); // the plugin's default format for lists
    expect(expand('SELECT ${unknown} FROM t WHERE $__timeFilter(ts)', { ...ctx, alert: true, vars })).toContain('${unknown}');
  });

  it('formats :percentencode as Grafana does (RFC 3986, a list as {a,b}), and leaves nothing ClickHouse reads as syntax', () => {
    const evil = "!\\' OR 0 IN (SELECT count() FROM url('http://x/', CSV)) --";
    const one = expand("SELECT decodeURLComponent('${h:percentencode}')", { ...ctx, vars: { h: { values: [evil] } } });
    expect(one).toBe("SELECT decodeURLComponent('%21%5C%27%20OR%200%20IN%20%28SELECT%20count%28%29%20FROM%20url%28%27http%3A%2F%2Fx%2F%27%2C%20CSV%29%29%20--')");
    expect(expand('${h:percentencode}', { ...ctx, vars: { h: { values: ['a', 'b,c'] } } })).toBe('%7Ba%2Cb%2Cc%7D');
    expect(expand('${h:percentencode}', { ...ctx, vars: { h: { values: ['a'], multi: true } } })).toBe('%7Ba%7D'); // a list even of one
    for (let c = 0; c < 0x800; c++) {
      if (c >= 0xd800 && c < 0xe000) continue;
      expect(expand('${h:percentencode}', { ...ctx, vars: { h: { values: [String.fromCharCode(c)], multi: c % 2 === 0 } } })).toMatch(/^[A-Za-z0-9\-_.~%]*$/);
    }
    // what Grafana's SQL formats leave: \ unescaped, so \' ends a ClickHouse string literal
    expect(expand('${h:singlequote}', { ...ctx, vars: { h: { values: ["\\'"] } } })).toBe("'\\\\''");
  });

  it('finds every variable that reaches the SQL other than through dashboards/selection.ts', () => {
    expect(unsafeVariables("SELECT 1 WHERE $__conditionalAll(has(arrayMap(v -> decodeURLComponent(v), splitByChar(',', trim(BOTH '{}' FROM decodeURLComponent('${h:percentencode}')))), host), $h)")).toEqual([]);
    expect(unsafeVariables("SELECT 1 WHERE $__conditionalAll(host IN (${h:singlequote}), $h) AND x = ${a:sqlstring} AND y = $b AND z = [[c]] AND t = ${d:percentencode}")).toEqual(['h', 'a', 'b', 'c', 'd']);
  });
});

describe('the HTML report', () => {
  it('draws a series of one point, and shows times in tables to the millisecond', () => {
    const one: Result = {
      where: 'x', sql: '', panel: { id: 1, type: 'timeseries', title: 'one point' },
      meta: [{ name: 'time', type: "DateTime('UTC')" }, { name: 'flows', type: 'UInt64' }], rows: [{ time: '2026-11-21 10:00:00', flows: '7' }],
    };
    const table: Result = {
      where: 'x', sql: '', panel: { id: 2, type: 'table', title: 'flows' },
      meta: [{ name: 'first_seen', type: "DateTime64(9, 'UTC')" }, { name: 'host', type: 'String' }], rows: [{ first_seen: '2026-11-21 10:00:00.123456789', host: 'fw-1' }],
    };
    const html = renderReport([{ title: 'T', results: [one, table] }], { fromMs: 0, toMs: 1, store: 'chdb:x' });
    const chart = html.slice(html.indexOf('one point'), html.indexOf('</svg>', html.indexOf('one point')));
    expect(chart).toMatch(/<circle cx="[\d.]+" cy="[\d.]+" r="1.5"/);
    expect(html).toContain('<td>2026-11-21 10:00:00.123</td>');
    expect(html).not.toContain('123456789');
  });
});
