/**
 * The HTML report fills a count series' empty intervals with zeros and leaves a gauge's alone
 * (issue 18 item 19): decided from each panel's own SQL, checked here on every panel the report draws.
 */
import { describe, expect, it } from 'vitest';
import { dashboards } from '../../dashboards/generate.js';
import { queriesOf } from '../../dashboards/lint.js';
import { expand } from '../../dashboards/macros.js';
import { bucketMs, fillZeros, isCountColumn } from '../../dashboards/report-fill.js';
import { REPORT_PANELS, renderReport } from '../../dashboards/report.js';
import type { Result } from '../../dashboards/run-queries.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 21, 10, 0);
const at = (m: number) => new Date(T0 + m * MIN).toISOString().replace('T', ' ').slice(0, 19);

describe('zeros in the report\'s count series', () => {
  it('takes every count of the report\'s panels for a count, and no gauge, ratio or quantile', () => {
    const counts: string[] = [];
    const others: string[] = [];
    const ctx = { fromMs: T0, toMs: T0 + 6 * 3600_000, intervalMs: 108_000, vars: { host: { values: ['fw-1'] }, bucket: { values: ['300'] } } };
    for (const d of dashboards('ctpipe')) {
      const keep = REPORT_PANELS[d.uid!];
      for (const q of queriesOf(d)) {
        if (!keep || !q.panel || !keep(q.panel) || !['timeseries', 'barchart'].includes(q.panel.type!)) continue;
        const sql = expand(q.sql, ctx);
        expect(bucketMs(sql), q.where).toBe(/greatest\(60/.test(sql) ? 300_000 : 108_000);
        for (const [, col] of sql.matchAll(/\bAS (\w+)(?=,|\s+FROM)/g)) (isCountColumn(sql, col!) ? counts : others).push(col!);
      }
    }
    expect(new Set(counts)).toEqual(new Set(['new_per_s', 'invalid_per_s', 'destroy_per_s', 'early_drop_per_s', 'drop_per_s', 'insert_failed_per_s',
      'connections', 'related', 'open', 'events_per_s', 'records', 'records_per_s']));
    expect(others).toEqual(expect.arrayContaining(['fill', 'entries', 'maximum', 'p50', 'p99', 'lag', 'mean_s', 'max_s']));
    expect(others.filter((c) => counts.includes(c))).toEqual([]);
  });

  it('puts a zero at every interval of the range without a point, on the points\' grid', () => {
    expect(fillZeros([[T0 + 2 * MIN, 5], [T0 + 4 * MIN, 7]], MIN, T0 + 30_000, T0 + 5 * MIN + 1)).toEqual([
      [T0, 0], [T0 + MIN, 0], [T0 + 2 * MIN, 5], [T0 + 3 * MIN, 0], [T0 + 4 * MIN, 7], [T0 + 5 * MIN, 0]]);
  });

  it('draws a sparse count down to zero between its points, and a sparse gauge as its points', () => {
    const result = (title: string, id: number, expr: string, name: string): Result => ({
      where: title, panel: { id, type: 'timeseries', title },
      sql: `SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) AS time, ${expr} AS ${name} FROM ctpipe.host_stats GROUP BY time ORDER BY time`,
      meta: [{ name: 'time', type: "DateTime('UTC')" }, { name, type: 'Float64' }],
      rows: [{ time: at(1), [name]: 4 }, { time: at(5), [name]: 8 }],
    });
    const html = renderReport([{ title: 'T', results: [result('count', 1, 'sum(invalid) / 60', 'invalid_per_s'), result('gauge', 2, 'max(entries)', 'entries')] }],
      { fromMs: T0, toMs: T0 + 10 * MIN, store: 'chdb:x' });
    const path = (title: string) => {
      const svg = html.slice(html.indexOf(`<h3>${title}</h3>`));
      return [...svg.slice(0, svg.indexOf('</svg>')).match(/ d="([^"]+)"/)![1]!.matchAll(/[ML]([\d.]+),([\d.]+)/g)].map((m) => Number(m[2]));
    };
    const zero = 180 - 24; // the x axis: v0 is 0
    const count = path('count');
    expect(count).toHaveLength(11); // 10:00 to 10:10, one a minute
    expect(count.filter((y) => y === zero)).toHaveLength(9);
    expect(path('gauge')).toHaveLength(2);
  });
});
