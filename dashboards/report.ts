/**
 * `ctpipe report --html`: the dashboards' main panels as one self-contained HTML page (inline SVG,
 * no script, no network), for people without Grafana. The data are the panels' own queries, run
 * by run-queries.ts; time series are drawn as Grafana draws a long frame: one line per label value
 * and number column.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { bucketMs, fillZeros, isCountColumn } from './report-fill.js';
import { isNumberType as isNumber, isTimeType as isTime, type Result } from './run-queries.js';

export interface ReportSection {
  title: string;
  results: Result[];
}

const W = 560;
const H = 180;
const PAD = { l: 56, r: 10, t: 10, b: 24 };
const COLORS = ['#3274d9', '#e0752d', '#56a64b', '#d44a3a', '#8f3bb8', '#f2cc0c', '#1f9e99', '#b877d9', '#6e6e6e', '#ff7383'];

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ms = (v: unknown) => Date.parse(`${String(v).replace(' ', 'T').slice(0, 23)}Z`);

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

/** The report's time range. */
interface Range {
  fromMs: number;
  toMs: number;
}

/** Long frame -> series: [name, points]; a count's missing intervals in `range` as zeros (report-fill.ts). */
function toSeries(r: Result, range: Range): [string, [number, number][]][] {
  const labels = r.meta.filter((m, i) => i > 0 && !isNumber(m.type) && !isTime(m.type)).map((m) => m.name);
  const values = r.meta.filter((m) => isNumber(m.type)).map((m) => m.name);
  const series = new Map<string, [number, number][]>();
  const columnOf = new Map<string, string>();
  for (const row of r.rows) {
    const t = ms(row.time);
    const prefix = labels.map((l) => String(row[l])).join(' ');
    for (const v of values) {
      if (row[v] === null) continue;
      const name = [prefix, values.length > 1 || !prefix ? v : ''].filter(Boolean).join(' ');
      let s = series.get(name);
      if (!s) series.set(name, (s = []));
      columnOf.set(name, v);
      s.push([t, Number(row[v])]);
    }
  }
  const step = bucketMs(r.sql);
  const counts = new Set(values.filter((v) => step !== undefined && isCountColumn(r.sql, v)));
  return [...series].map(([name, p]) => [name, counts.has(columnOf.get(name)!) ? fillZeros(p.sort((a, b) => a[0] - b[0]), step!, range.fromMs, range.toMs) : p]);
}

/** [min, max] of `i`th values, by a loop: a fleet's points are too many to spread into Math.min's arguments. */
function extent(points: [number, number][], i: 0 | 1): [number, number] {
  let [lo, hi] = [Infinity, -Infinity];
  for (const p of points) {
    lo = Math.min(lo, p[i]);
    hi = Math.max(hi, p[i]);
  }
  return [lo, hi];
}

/** One chart for all the panel's queries (A, B, ...): their series together, as Grafana draws them (the first ten). */
function timeSeriesSvg(results: Result[], points: boolean, range: Range): string {
  const series = results.flatMap((r) => toSeries(r, range)).slice(0, COLORS.length);
  const all = series.flatMap(([, p]) => p);
  if (all.length === 0) return '<p class="empty">no data</p>';
  const [t0, t1] = extent(all, 0);
  const [lo, v1] = extent(all, 1);
  const v0 = Math.min(0, lo);
  const x = (t: number) => PAD.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - ((v - v0) / Math.max(1e-9, v1 - v0)) * (H - PAD.t - PAD.b);
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  // a series of one point has no line to draw: it is drawn as its point
  const marks = series.map(([, p], i) => points || p.length === 1
    ? p.map(([t, v]) => `<circle cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="1.5" fill="${COLORS[i]}"/>`).join('')
    : `<path class="series" fill="none" stroke="${COLORS[i]}" stroke-width="1.5" d="${p.map(([t, v], k) => `${k ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('')}"/>`).join('');
  const legend = series.map(([name], i) => `<span><i style="background:${COLORS[i]}"></i>${esc(name)}</span>`).join('');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">
<line x1="${PAD.l}" y1="${H - PAD.b}" x2="${W - PAD.r}" y2="${H - PAD.b}" stroke="#999"/><line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${H - PAD.b}" stroke="#999"/>
<text x="${PAD.l - 4}" y="${PAD.t + 8}" text-anchor="end">${fmt(v1)}</text><text x="${PAD.l - 4}" y="${H - PAD.b}" text-anchor="end">${fmt(v0)}</text>
<text x="${PAD.l}" y="${H - 6}">${hhmm(t0)}</text><text x="${W - PAD.r}" y="${H - 6}" text-anchor="end">${hhmm(t1)} UTC</text>
${marks}</svg><div class="legend">${legend}</div>`;
}

function statHtml(r: Result): string {
  const col = r.meta.find((m) => isNumber(m.type));
  const v = col && r.rows[0] ? Number(r.rows[0][col.name]) : NaN;
  return `<div class="stat">${Number.isNaN(v) ? '–' : esc(fmt(v))}</div>`;
}

function tableHtml(r: Result, max = 15): string {
  if (r.rows.length === 0) return '<p class="empty">no rows</p>';
  const cols = r.meta.map((m) => m.name).filter((c) => c !== 'details' || r.meta.length < 6);
  const times = new Set(r.meta.filter((m) => /DateTime64/.test(m.type)).map((m) => m.name));
  const cell = (v: unknown, c: string) => esc(typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v === null ? ''
    : times.has(c) ? String(v).replace(/(\.\d{3})\d+/, '$1') // milliseconds are enough to read; nanoseconds are in the store
      : String(v).slice(0, 80));
  return `<table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${
    r.rows.slice(0, max).map((row) => `<tr>${cols.map((c) => `<td>${cell(row[c], c)}</td>`).join('')}</tr>`).join('')}</tbody></table>${
    r.rows.length > max ? `<p class="more">${r.rows.length - max} more rows</p>` : ''}`;
}

function panelHtml(results: Result[], range: Range): string {
  const p = results[0]!.panel!;
  const wide = (p.gridPos?.w ?? 12) > 12 || p.type === 'table';
  let body: string;
  if (p.type === 'stat') body = statHtml(results[0]!);
  else if (p.type === 'table') body = tableHtml(results[0]!);
  else body = timeSeriesSvg(results, p.type === 'heatmap', range);
  return `<section class="panel ${p.type}${wide ? ' wide' : ''}" data-panel-type="${p.type}"><h3>${esc(p.title)}</h3><p class="desc">${esc(p.description ?? '')}</p>${body}</section>`;
}

export function renderReport(sections: ReportSection[], o: { fromMs: number; toMs: number; store: string }): string {
  const when = (t: number) => new Date(t).toISOString().replace('T', ' ').slice(0, 19);
  const body = sections.map((s) => {
    const byPanel = new Map<number, Result[]>();
    for (const r of s.results) {
      if (!r.panel) continue;
      const list = byPanel.get(r.panel.id!) ?? [];
      list.push(r);
      byPanel.set(r.panel.id!, list);
    }
    return `<h2>${esc(s.title)}</h2><div class="grid">${[...byPanel.values()].map((r) => panelHtml(r, o)).join('')}</div>`;
  }).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ctpipe report</title><style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222;background:#f7f8fa}h1{font-size:20px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ccc}
.grid{display:flex;flex-wrap:wrap;gap:10px}.panel{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;width:${W + 18}px}.panel.wide{width:100%}
.panel.stat{width:200px}h3{font-size:13px;margin:0}.desc{color:#666;font-size:11px;margin:2px 0 6px}.stat{font-size:30px;font-weight:600;color:#3274d9}
svg text{font-size:10px;fill:#555}.legend span{margin-right:10px;font-size:11px}.legend i{display:inline-block;width:10px;height:3px;margin-right:3px;vertical-align:middle}
table{border-collapse:collapse;font-size:11px}th,td{border-bottom:1px solid #eee;padding:2px 6px;text-align:left;white-space:nowrap}.empty,.more{color:#888}
</style></head><body><h1>ctpipe report</h1><p>${esc(when(o.fromMs))} to ${esc(when(o.toMs))} UTC, from ${esc(o.store)}. The panels of the Grafana dashboards, from the same queries.</p>${body}</body></html>\n`;
}

/** The dashboards and panels the report shows. */
export const REPORT_PANELS: Record<string, (p: dashboard.Panel) => boolean> = {
  'ctpipe-fleet': () => true,
  'ctpipe-host': (p) => p.type !== 'heatmap',
  'ctpipe-anomalies': () => true,
  'ctpipe-pipeline': (p) => !/dead letters/i.test(p.title ?? ''),
};
