/**
 * `ctpipe query SQL`: ad hoc SQL on the configured store, with bound parameters. Read-only unless
 * `--write`: ClickHouse's readonly = 1 and one statement without INTO OUTFILE (processor/clickhouse/
 * statements.ts); with `--write`, still one statement.
 */
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { clickhouseCode } from '../../processor/clickhouse/errors.js';
import { readOnlyProblem } from '../../processor/clickhouse/statements.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { EXAMPLES, examplesText } from '../query-examples.js';
import { syntaxErrorText } from '../sql-error.js';
import { connectStore } from '../store.js';

export const querySpec: CommandSpec = {
  name: 'query',
  summary: 'run SQL on the store (read-only unless --write); bind values with --param name=value and {name:Type} in the SQL',
  usage: "ctpipe query 'SELECT conn_state, count() FROM ctpipe.flows FINAL WHERE host = {host:String} GROUP BY 1' --param host=fw-1 [--format table|json|csv]\n       ctpipe query --example top-talkers [--param hours=6]   (ctpipe query --examples lists them)\n       ctpipe query --write 'OPTIMIZE TABLE ctpipe.flows FINAL'   (one statement that changes the store; without --write a query only reads)",
  parts: ['store', 'database'],
  own: {
    example: { type: 'string', description: 'run a saved query by name (see --examples)' },
    examples: { type: 'boolean', description: 'list the saved queries' },
    format: { type: 'string', description: 'table (default), json (one object per line) or csv' },
    param: { type: 'string', description: 'name=value for a {name:Type} placeholder (repeat the flag for more)', multiple: true },
    write: { type: 'boolean', description: 'let the statement change the store (DDL, INSERT, ALTER, settings, table functions such as file() and url()); without it the query only reads' },
  },
};

export async function runQuery(cfg: Config, own: Record<string, unknown>, positionals: string[]): Promise<number> {
  if (own.examples) {
    process.stdout.write(`saved queries (ctpipe query --example NAME):\n${examplesText()}`);
    return 0;
  }
  const example = own.example === undefined ? undefined : EXAMPLES[String(own.example)];
  if (own.example !== undefined && !example) {
    throw new CtpipeError('CONFIG_INVALID', `no saved query "${String(own.example)}"; these exist:\n${examplesText()}`);
  }
  const sql = example ? example.sql(cfg.clickhouse.database) : positionals.join(' ').trim();
  if (!sql) throw new CtpipeError('CONFIG_INVALID', 'usage: ctpipe query SQL, or ctpipe query --example NAME (see ctpipe query --help)');
  const format = (own.format as string | undefined) ?? 'table';
  if (!['table', 'json', 'csv'].includes(format)) throw new CtpipeError('CONFIG_INVALID', `--format must be table, json or csv, not "${format}"`);
  const params: Record<string, string> = { ...example?.params };
  for (const p of (own.param as string[] | undefined) ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CtpipeError('CONFIG_INVALID', `--param takes name=value, got "${p}"`);
    params[p.slice(0, i)] = p.slice(i + 1);
  }
  const write = !!own.write;
  const problem = readOnlyProblem(sql, write);
  if (problem) throw new CtpipeError('QUERY_REFUSED', `ctpipe query runs one statement${write ? '' : ' and only reads'}: ${problem}`);
  const store = await connectStore(cfg, { readonly: !write });
  try {
    if (format === 'csv') {
      process.stdout.write(await store.queryCsv(sql, params));
      return 0;
    }
    const rows = await store.query(sql, params);
    if (format === 'json') for (const row of rows) process.stdout.write(JSON.stringify(row) + '\n');
    else process.stdout.write(table(rows));
    return 0;
  } catch (e) {
    if (e instanceof CtpipeError) throw e;
    if (clickhouseCode(e) === READONLY) {
      throw new CtpipeError('QUERY_REFUSED', `ctpipe query only reads unless --write is given (ClickHouse: ${errorMessage(e).split('\n')[0]!.trim()})`);
    }
    throw new CtpipeError('QUERY_FAILED', syntaxErrorText(sql, errorMessage(e)) ?? `the query failed: ${errorMessage(e)}`);
  } finally {
    await store.close();
  }
}

/** ClickHouse's code for a statement refused in readonly mode. */
const READONLY = 164;

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => v.slice(0, 60).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + `\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
