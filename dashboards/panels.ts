/**
 * Panel and variable helpers shared by the dashboards: every panel gets a title, a description, a
 * unit and (where a level means something) thresholds; every variable is a ClickHouse query.
 * `finish` turns a builder into the JSON Grafana's file provisioning reads: panel ids assigned
 * (the SDK leaves them out), no dashboard `id`, a pinned schemaVersion.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as HeatmapBuilder } from '@grafana/grafana-foundation-sdk/heatmap';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { ClickHouseQueryBuilder, DS_VAR, Format, PLUGIN, series, table } from './query.js';

export const SCHEMA_VERSION = 41;

interface Common {
  title: string;
  description: string;
  unit: string;
  w: number;
  h: number;
  /** Threshold steps: [from value (null = base), color]. */
  steps?: [number | null, string][];
}

const thresholds = (steps: [number | null, string][]) =>
  new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));

const DEFAULT_STEPS: [number | null, string][] = [[null, 'green']];

function decorate<T extends TimeseriesBuilder | StatBuilder | TableBuilder | HeatmapBuilder>(b: T, c: Common): T {
  b.title(c.title).description(c.description).unit(c.unit).span(c.w).height(c.h).datasource(DS_VAR).thresholds(thresholds(c.steps ?? DEFAULT_STEPS));
  return b;
}

/** A time series panel; each SQL is one query (refId A, B, ...), time first and ascending. */
export function timeseries(c: Common & { sql: string[]; stack?: boolean }): TimeseriesBuilder {
  const b = decorate(new TimeseriesBuilder(), c).fillOpacity(c.stack ? 40 : 10).lineWidth(1)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).calcs([]));
  if (c.stack) b.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  c.sql.forEach((s, i) => b.withTarget(series(s, refId(i))));
  return b;
}

export function stat(c: Common & { sql: string }): StatBuilder {
  return decorate(new StatBuilder(), c).withTarget(table(c.sql));
}

export function tablePanel(c: Common & { sql: string; links?: { column: string; title: string; url: string }[] }): TableBuilder {
  const b = decorate(new TableBuilder(), c).withTarget(table(c.sql));
  for (const l of c.links ?? []) b.overrideByName(l.column, [{ id: 'links', value: [{ title: l.title, url: l.url }] }]);
  return b;
}

/** A heatmap Grafana buckets itself from raw values (time, value rows). */
export function heatmap(c: Common & { sql: string }): HeatmapBuilder {
  return decorate(new HeatmapBuilder(), c).calculate(true).withTarget(series(c.sql));
}

const refId = (i: number) => String.fromCharCode(65 + i);

// ------------------------------------------------------------------------------------ variables

export const datasourceVariable = () => new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type(PLUGIN);

/** A query variable over ClickHouse, refreshed with the time range. */
export function queryVariable(name: string, label: string, sql: string,
  o: { multi?: boolean; description: string; sort?: dashboard.VariableSort }): dashboard.QueryVariableBuilder {
  const rawSql = sql.replace(/\s+/g, ' ').trim();
  const v = new dashboard.QueryVariableBuilder(name).label(label).description(o.description).datasource(DS_VAR)
    .query({ editorType: 'sql', rawSql }).definition(rawSql)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged).sort(o.sort ?? dashboard.VariableSort.AlphabeticalAsc);
  if (o.multi) v.multi(true).includeAll(true);
  return v;
}

/**
 * The time bucket of the rollup panels (flows_1m): the sizes that give at most 1,000 points over
 * the range, finest first (so the default), from ClickHouse as the other variables.
 */
export const bucketVariable = () => queryVariable('bucket', 'Bucket', `
  SELECT b AS value, formatReadableTimeDelta(b) AS text FROM (SELECT arrayJoin([60, 300, 900, 3600, 21600, 86400]) AS b)
  WHERE b * 1000 >= dateDiff('second', $__fromTime, $__toTime) OR b = 86400 ORDER BY value`,
{ description: 'Time bucket of the panels drawn from the per-minute rollup (seconds)', sort: dashboard.VariableSort.Disabled });

export const textVariable = (name: string, label: string, description: string) =>
  new dashboard.TextBoxVariableBuilder(name).label(label).description(description).defaultValue('');

// ------------------------------------------------------------------------------------ assembly

export function newDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title).uid(uid).description(description).tags(['ctpipe', 'conntrack'])
    .time({ from: 'now-6h', to: 'now' }).refresh('1m').timezone('utc').readonly().tooltip(dashboard.DashboardCursorSync.Crosshair);
}

export function annotation(name: string, sql: string): dashboard.AnnotationQueryBuilder {
  return new dashboard.AnnotationQueryBuilder().name(name).datasource(DS_VAR).enable(true).iconColor('red')
    .target(new ClickHouseQueryBuilder(sql, Format.Table).refId('Anno'));
}

/** The provisioning JSON: panel ids 1..n in layout order (rows before their panels), no `id`. */
export function finish(b: dashboard.DashboardBuilder): dashboard.Dashboard {
  const d = b.build();
  let id = 0;
  const number = (panels: (dashboard.Panel | dashboard.RowPanel)[] | undefined) => {
    for (const p of panels ?? []) {
      p.id = ++id;
      if (p.type === 'row') number((p as dashboard.RowPanel).panels);
    }
  };
  number(d.panels);
  delete d.id;
  d.schemaVersion = SCHEMA_VERSION;
  return d;
}
