/**
 * Runs dashboards and alert rules on ClickHouse as Grafana would: query variables first (in order,
 * their own SQL expanded), then every panel and annotation query with the chosen selections, and
 * each alert rule's query followed by its reduce and threshold expressions. The tests run this on
 * lab data; `ctpipe report` draws from the same results.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { Store } from '../processor/store.js';
import type { AlertRule } from './alerts.js';
import { queriesOf } from './lint.js';
import { expand, type ExpandContext, type Variable } from './macros.js';

import { errorMessage } from '../common/errors.js';
type QueryClient = Pick<Store, 'queryWithMeta'>;

export interface Result {
  where: string;
  panel?: dashboard.Panel;
  format?: number;
  sql: string;
  meta: { name: string; type: string }[];
  rows: Record<string, unknown>[];
}

/**
 * Values for a dashboard's variables: a multi-value variable as "All" (`all`) or its first option
 * (`first`); a single-value one its first option; text boxes from `text`.
 */
export async function resolveVariables(ch: QueryClient, d: dashboard.Dashboard, ctx: Omit<ExpandContext, 'vars'>, pick: 'all' | 'first',
  text: Record<string, string> = {}): Promise<Record<string, Variable>> {
  const vars: Record<string, Variable> = {};
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'textbox') vars[v.name] = { values: [text[v.name] ?? ''] };
    if (v.type !== 'query') continue;
    const q = v.query as { rawSql: string };
    const { rows, meta } = await ch.queryWithMeta(expand(q.rawSql, { ...ctx, vars }));
    const first = meta[0]!.name; // one column: value; two: value, then text
    const options = rows.map((r) => String(r[first]));
    vars[v.name] = v.multi && pick === 'all' ? { values: [], all: true, options, multi: true } : { values: options.slice(0, 1), multi: !!v.multi };
  }
  return vars;
}

/** Every panel, annotation and variable query of `d` (or those of the panels `keep` takes), expanded and run. */
export async function runDashboard(ch: QueryClient, d: dashboard.Dashboard, ctx: ExpandContext, keep?: (p: dashboard.Panel) => boolean): Promise<Result[]> {
  const out: Result[] = [];
  for (const q of queriesOf(d)) {
    if (keep && !(q.panel && keep(q.panel))) continue;
    const sql = expand(q.sql, ctx);
    try {
      out.push({ where: q.where, panel: q.panel, format: q.format, sql, ...(await ch.queryWithMeta(sql)) });
    } catch (e) {
      throw new Error(`${q.where}: ${errorMessage(e)}\n${sql}`, { cause: e });
    }
  }
  return out;
}

export interface Evaluation {
  rule: string;
  /** Label sets whose reduced value passed the threshold. */
  firing: { labels: Record<string, string>; value: number }[];
  series: number;
}

/** ClickHouse column types: numbers (values) and times; any other is a label. */
export const isNumberType = (t: string) => /^(Nullable\()?(U?Int|Float|Decimal)/.test(t);
export const isTimeType = (t: string) => /^(Nullable\()?DateTime/.test(t);

/**
 * A rule evaluated at `nowMs`: query A over its relative range (tabular: string columns are labels,
 * the numeric column the value, as Grafana alerting reads a table), reduce `last`, then threshold.
 */
export async function evaluateRule(ch: QueryClient, r: AlertRule, nowMs: number): Promise<Evaluation> {
  const a = r.data.find((q) => q.refId === 'A')!;
  const model = a.model as { rawSql: string; intervalMs?: number };
  const range = a.relativeTimeRange!;
  const sql = expand(model.rawSql, { fromMs: nowMs - range.from * 1000, toMs: nowMs - range.to * 1000, intervalMs: model.intervalMs ?? 1000, alert: true });
  const { meta, rows } = await ch.queryWithMeta(sql);
  const value = meta.filter((m) => isNumberType(m.type));
  if (value.length !== 1) throw new Error(`rule ${r.uid}: a table for alerting needs exactly one numeric column, got ${value.map((m) => m.name).join(', ')}`);
  const labels = meta.filter((m) => !isNumberType(m.type)).map((m) => m.name);
  const threshold = (r.data.find((q) => q.refId === 'C')!.model as { conditions: { evaluator: { type: string; params: number[] } }[] }).conditions[0]!.evaluator;
  const firing: Evaluation['firing'] = [];
  for (const row of rows) {
    const v = Number(row[value[0]!.name]); // reduce(last) of a one-point series is the point
    if (Number.isNaN(v)) continue; // dropNN
    const passes = threshold.type === 'gt' ? v > threshold.params[0]! : v < threshold.params[0]!;
    if (passes) firing.push({ labels: Object.fromEntries(labels.map((l) => [l, String(row[l])])), value: v });
  }
  return { rule: r.uid, firing, series: rows.length };
}
