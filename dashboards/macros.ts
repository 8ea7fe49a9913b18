/**
 * What Grafana and the ClickHouse data source do to a panel's SQL before ClickHouse sees it, so the
 * queries can be run and checked without Grafana (grafana.md §2.3, from the plugin's
 * src/data/CHDatasource.ts and pkg/macros/macros.go, and Grafana's templateSrv):
 *   1. `$__conditionalAll(condition, $var)`, last first: `1=1` when $var is All or empty;
 *   2. dashboard variables (`$v`, `${v}`, `${v:format}`, `[[v]]`): unknown names stay as they are;
 *   3. the backend macros (`$__timeFilter(col)`, `$__timeInterval(col)`, `$__interval_s`, ...).
 * Alert rules skip 1 and 2 (no browser), which `expand(..., { alert: true })` mirrors.
 */

export interface Variable {
  /** The selected values; `all` when "All" is selected (`options` are then what it stands for). */
  values: string[];
  /** A multi-value variable: Grafana formats its value as a list even when one value is selected. */
  multi?: boolean;
  all?: boolean;
  options?: string[];
  allValue?: string;
}

export interface ExpandContext {
  /** The dashboard's time range, epoch ms. */
  fromMs: number;
  toMs: number;
  /** The query interval, ms. */
  intervalMs: number;
  vars?: Record<string, Variable>;
  /** Alert rules: no conditionalAll, no variables. */
  alert?: boolean;
}

export class MacroError extends Error {}

// ------------------------------------------------------------------------ 1. $__conditionalAll

/** The arguments of the macro call whose '(' is at `open`: split on top-level commas (not quote-aware, as the plugin). */
function callArgs(sql: string, open: number): { args: string[]; end: number } | undefined {
  let depth = 0;
  let start = open + 1;
  const args: string[] = [];
  for (let i = open; i < sql.length; i++) {
    const c = sql[i];
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) {
      args.push(sql.slice(start, i));
      return { args, end: i + 1 };
    } else if (c === ',' && depth === 1) {
      args.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  return undefined;
}

function conditionalAll(sql: string, vars: Record<string, Variable>): string {
  const name = '$__conditionalAll(';
  for (let at = sql.lastIndexOf(name); at >= 0; at = sql.lastIndexOf(name, at - 1)) {
    const call = callArgs(sql, at + name.length - 1);
    if (!call || call.args.length !== 2) throw new MacroError(`$__conditionalAll needs two arguments: ${sql.slice(at, at + 80)}`);
    const m = /^\s*\$\{?(\w+)\}?\s*$/.exec(call.args[1]!);
    if (!m) throw new MacroError(`$__conditionalAll's second argument must be a plain $variable: ${call.args[1]!}`);
    const v = vars[m[1]!];
    const everything = !v || v.all || v.values.length === 0 || (v.values.length === 1 && v.values[0] === '');
    sql = sql.slice(0, at) + (everything ? '1=1' : call.args[0]!) + sql.slice(call.end);
  }
  return sql;
}

// ------------------------------------------------------------------------ 2. dashboard variables

const VARIABLE = /\$(\w+)|\[\[([\s\S]+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

/** encodeURIComponent, and ! ' ( ) * too (RFC 3986): Grafana's encodeURIComponentStrict. */
const encodeStrict = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

// Grafana's formats (grafana/scenes formatRegistry.ts). Note what :singlequote and :sqlstring do
// not escape (\): dashboards/selection.ts says why the dashboards use :percentencode only.
function format(values: string[], fmt: string | undefined, multi: boolean): string {
  switch (fmt) {
    case undefined: // the data source's own formatter: lists quoted (not escaped), scalars raw
      return multi ? values.map((v) => `'${v}'`).join(',') : values[0] ?? '';
    case 'singlequote':
      return values.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
    case 'sqlstring':
      return values.map((v) => `'${v.replace(/['"]/g, (c) => (c === "'" ? "''" : '\\"'))}'`).join(',');
    case 'percentencode': // a list like glob's {a,b}, then encoded whole
      return encodeStrict(multi ? `{${values.join(',')}}` : values[0] ?? '');
    case 'doublequote':
      return values.map((v) => `"${v.replace(/"/g, '\\"')}"`).join(',');
    case 'csv':
      return values.join(',');
    case 'raw':
      return values.join(',');
    case 'pipe':
      return values.join('|');
    default:
      throw new MacroError(`variable format :${fmt} is not supported here`);
  }
}

function variables(sql: string, vars: Record<string, Variable>): string {
  return sql.replace(VARIABLE, (whole, a?: string, b?: string, bFmt?: string, c?: string, _path?: string, cFmt?: string) => {
    const name = a ?? b ?? c!;
    const v = vars[name];
    if (!v) return whole; // Grafana leaves unknown names (and the data source's macros) alone
    const fmt = bFmt ?? cFmt;
    // a custom all value goes in raw, unless the format is text or percentencode
    if (v.all && v.allValue !== undefined) return fmt === 'percentencode' ? encodeStrict(v.allValue) : v.allValue;
    const values = v.all ? (v.options ?? []) : v.values;
    return format(values, fmt, values.length > 1 || !!v.all || !!v.multi);
  });
}

// ------------------------------------------------------------------------ 3. backend macros

const MACRO = /\$__(\w+)\b(\()?/g;

export function backendMacros(sql: string, ctx: ExpandContext): string {
  const F = Math.floor(ctx.fromMs / 1000);
  const T = Math.floor(ctx.toMs / 1000);
  const intervalS = Math.max(Math.floor(ctx.intervalMs / 1000), 1);
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  let out = '';
  let last = 0;
  MACRO.lastIndex = 0;
  for (let m = MACRO.exec(sql); m; m = MACRO.exec(sql)) {
    const name = m[1]!;
    let args: string[] = [];
    let end = m.index + m[0].length;
    if (m[2]) {
      const call = callArgs(sql, end - 1);
      if (!call) throw new MacroError(`unclosed $__${name}(`);
      args = call.args.map((s) => s.trim());
      end = call.end;
    }
    const need = (n: number) => {
      if (args.length !== n) throw new MacroError(`$__${name} takes ${n} argument(s), got ${args.length}`);
    };
    let r: string;
    switch (name) {
      case 'timeFilter': need(1); r = `${args[0]} >= toDateTime(${F}) AND ${args[0]} <= toDateTime(${T})`; break;
      case 'timeFilter_ms': need(1); r = `${args[0]} >= fromUnixTimestamp64Milli(${ctx.fromMs}) AND ${args[0]} <= fromUnixTimestamp64Milli(${ctx.toMs})`; break;
      case 'dateFilter': need(1); r = `${args[0]} >= toDate('${day(ctx.fromMs)}') AND ${args[0]} <= toDate('${day(ctx.toMs)}')`; break;
      case 'dateTimeFilter': case 'dt': need(2);
        r = `(${args[0]} >= toDate('${day(ctx.fromMs)}') AND ${args[0]} <= toDate('${day(ctx.toMs)}')) AND (${args[1]} >= toDateTime(${F}) AND ${args[1]} <= toDateTime(${T}))`; break;
      case 'fromTime': need(0); r = `toDateTime(${F})`; break;
      case 'toTime': need(0); r = `toDateTime(${T})`; break;
      case 'fromTime_ms': need(0); r = `fromUnixTimestamp64Milli(${ctx.fromMs})`; break;
      case 'toTime_ms': need(0); r = `fromUnixTimestamp64Milli(${ctx.toMs})`; break;
      case 'timeFrom': need(1); r = `${args[0]} >= toDateTime(${F})`; break;
      case 'timeTo': need(1); r = `${args[0]} <= toDateTime(${T})`; break;
      case 'interval_s': need(0); r = String(intervalS); break;
      case 'interval_ms': need(0); r = String(Math.max(ctx.intervalMs, 1)); break;
      case 'timeInterval': need(1); r = `toStartOfInterval(toDateTime(${args[0]}), INTERVAL ${intervalS} second)`; break;
      case 'timeInterval_ms': need(1); r = `toStartOfInterval(toDateTime64(${args[0]}, 3), INTERVAL ${Math.max(ctx.intervalMs, 1)} millisecond)`; break;
      default: throw new MacroError(`unknown macro $__${name}`);
    }
    out += sql.slice(last, m.index) + r;
    last = end;
    MACRO.lastIndex = end;
  }
  return out + sql.slice(last);
}

/** The SQL ClickHouse receives for a panel (or, with `alert`, an alert rule's query). */
export function expand(sql: string, ctx: ExpandContext): string {
  const vars = ctx.vars ?? {};
  const s = ctx.alert ? sql : variables(conditionalAll(sql, vars), vars);
  return backendMacros(s, ctx);
}

/** Macros the SQL uses, for lint checks. */
export const macrosIn = (sql: string) => [...sql.matchAll(/\$__(\w+)/g)].map((m) => m[1]!);
/**
 * Variables that reach `sql` other than as `decodeURLComponent('${name:percentencode}')` (or as
 * the second argument of `$__conditionalAll`, which is no value): each one can break out of the
 * SQL with a quote or backslash (dashboards/selection.ts).
 */
export function unsafeVariables(sql: string): string[] {
  const selected = new Proxy({}, { get: () => ({ values: ['x'] }) }) as Record<string, Variable>;
  const s = conditionalAll(sql, selected).replace(/decodeURLComponent\('\$\{\w+:percentencode\}'\)/g, '');
  return [...s.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[4]!).filter((n) => !n.startsWith('__'));
}

/** Dashboard variables the SQL refers to. */
export const variablesIn = (sql: string) => [...sql.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[4]!).filter((n) => !n.startsWith('__'));
