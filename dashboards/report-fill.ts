/**
 * Zeros for the report's count series. A panel's query returns no row for an interval with
 * nothing to count, and a line drawn from one row to the next says there was something in
 * between; for a count (count(), a sum of counters, either per second) the missing intervals are
 * zeros. A gauge or a ratio (max, quantiles, a mean) is not filled: nothing known is not zero.
 * Read from the panel's own SQL as expanded for the report, so the dashboards stay the one source.
 */

/** Aggregates whose value for an interval without rows is 0. */
const COUNTS = /^(count|countIf|sum|sumIf|uniq|uniqExact)\(/;

/** The expression `name` is selected as (`expr AS name`), at its own nesting level. */
function expressionOf(sql: string, name: string): string | undefined {
  const m = new RegExp(`\\bAS\\s+${name.replace(/[^\w]/g, '\\$&')}(?!\\w)`).exec(sql);
  if (!m) return undefined;
  let depth = 0;
  let i = m.index - 1;
  for (; i >= 0; i--) {
    const c = sql[i];
    if (c === ')') depth++;
    else if (c === '(' && depth-- === 0) break;
    else if (depth === 0 && (c === ',' || /\bSELECT\s*$/i.test(sql.slice(Math.max(0, i - 7), i + 1)))) break;
  }
  return sql.slice(i + 1, m.index).trim();
}

/** One call spanning the whole expression: `f(...)` and nothing after its closing parenthesis. */
function wholeCall(expr: string): boolean {
  const open = expr.indexOf('(');
  if (open < 0 || !expr.endsWith(')')) return false;
  let depth = 0;
  for (let i = open; i < expr.length; i++) {
    if (expr[i] === '(') depth++;
    else if (expr[i] === ')' && --depth === 0 && i < expr.length - 1) return false;
  }
  return true;
}

/** Whether column `name` of `sql` is a per-interval count (or a count per second of the interval). */
export function isCountColumn(sql: string, name: string): boolean {
  const expr = expressionOf(sql, name)
    ?.replace(/\s*\/\s*\d+(\.\d+)?$/, '') // per second: divided by the interval's seconds
    .replace(/\s*\/\s*greatest\(\s*60\s*,[\s\S]*\)$/, ''); // per second of the bucket variable's minutes
  return expr !== undefined && COUNTS.test(expr) && wholeCall(expr);
}

/** The query's interval in ms: toStartOfInterval's, the bucket variable's (at least a minute), or intDiv(t, N) * N. */
export function bucketMs(sql: string): number | undefined {
  const fixed = /toStartOfInterval\([^;]*?INTERVAL (\d+) second\)/.exec(sql);
  if (fixed) return Number(fixed[1]) * 1000;
  const bucket = /INTERVAL greatest\(60, toUInt32OrZero\(decodeURLComponent\('([^']*)'\)\)\) second/.exec(sql);
  if (bucket) return Math.max(60, Math.trunc(Number(decodeURIComponent(bucket[1]!))) || 0) * 1000;
  const div = /intDiv\([^;]*?,\s*(\d+)\)\s*\*\s*(\d+)/.exec(sql);
  return div && div[1] === div[2] ? Number(div[1]) * 1000 : undefined;
}

/** The most points one filled series gets (a wrong step must not make a huge page). */
const MAX_POINTS = 5000;

/**
 * `points` (time-ordered) with a zero at every interval of [fromMs, toMs] that has none, on the
 * grid the points lie on (their first point and `stepMs`).
 */
export function fillZeros(points: [number, number][], stepMs: number, fromMs: number, toMs: number): [number, number][] {
  if (points.length === 0 || !(stepMs > 0)) return points;
  const ref = points[0]![0];
  const first = ref + Math.floor((fromMs - ref) / stepMs) * stepMs;
  const last = ref + Math.floor((toMs - ref) / stepMs) * stepMs;
  if ((last - first) / stepMs > MAX_POINTS) return points;
  const have = new Map(points.map(([t, v]) => [t, v]));
  const out: [number, number][] = [];
  for (let t = Math.min(first, ref); t <= Math.max(last, points[points.length - 1]![0]); t += stepMs) out.push([t, have.get(t) ?? 0]);
  // points off the grid (none for the dashboards' queries) are kept where they are
  for (const p of points) if ((p[0] - ref) % stepMs !== 0) out.push(p);
  return out.sort((a, b) => a[0] - b[0]);
}
