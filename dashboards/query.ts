/**
 * The ClickHouse data source's query model (grafana-clickhouse-datasource), which the foundation
 * SDK has no builder for: its custom-query extension point (a `cog.Builder<cog.Dataquery>`), as in
 * grafana/grafana-foundation-sdk examples/typescript/custom-query. Fields from the plugin's
 * src/types/sql.ts: `format` 0 is a time series (long frames become wide), 1 a table.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';

export const PLUGIN = 'grafana-clickhouse-datasource';
/** Panels follow the dashboard's `datasource` variable; alert rules need the provisioned uid. */
export const DS_VAR: DataSourceRef = { type: PLUGIN, uid: '${datasource}' };
export const DS_UID = 'ctpipe-clickhouse';

export enum Format {
  TimeSeries = 0,
  Table = 1,
}

export interface ClickHouseQuery extends cog.Dataquery {
  refId?: string;
  datasource?: DataSourceRef;
  editorType: 'sql';
  rawSql: string;
  format: Format;
  queryType: 'timeseries' | 'table';
  /** Alert models: the interval `$__interval_s` stands for (Grafana's default there is 1 s). */
  intervalMs?: number;
  maxDataPoints?: number;
}

export class ClickHouseQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly q: ClickHouseQuery;

  constructor(rawSql: string, format: Format, ds: DataSourceRef = DS_VAR) {
    this.q = {
      editorType: 'sql', rawSql: rawSql.replace(/\s+/g, ' ').trim(), format,
      queryType: format === Format.Table ? 'table' : 'timeseries', datasource: ds, _implementsDataqueryVariant() {},
    };
  }

  refId(r: string): this {
    this.q.refId = r;
    return this;
  }

  intervalMs(ms: number): this {
    this.q.intervalMs = ms;
    this.q.maxDataPoints = 43_200;
    return this;
  }

  build(): ClickHouseQuery {
    return this.q;
  }
}

export const series = (sql: string, refId = 'A') => new ClickHouseQueryBuilder(sql, Format.TimeSeries).refId(refId);
export const table = (sql: string, refId = 'A') => new ClickHouseQueryBuilder(sql, Format.Table).refId(refId);
