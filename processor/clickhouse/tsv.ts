/**
 * ClickHouse's TabSeparated input, for the `flows` insert (the end-to-end bottleneck: ClickHouse
 * parses it about twice as fast as JSON, and it is cheaper to build).
 *
 *   row    = field *( TAB field ) LF
 *   field  = "\N"                               ; NULL
 *          / "true" / "false" / number / text   ; text with \\ \t \n \r \0 \b \f \' escaped
 *          / "[" [ item *( "," item ) ] "]"     ; arrays; string items single-quoted, same escapes
 *   item   = "NULL" / number / "'" text "'"     ; times and addresses quoted like strings
 *
 * https://clickhouse.com/docs/interfaces/formats/TabSeparated
 */
import { generate, ident } from '../codegen.js';
import { chTime, type ChType, type ColumnDef } from './ch-type.js';

const SPECIAL = /[\\\t\n\r\0\b\f']/;
const SPECIALS = /[\\\t\n\r\0\b\f']/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0', '\b': '\\b', '\f': '\\f', "'": "\\'" };

export function tsvText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIALS, (c) => ESCAPES[c]!) : s;
}

/** A string as a ClickHouse SQL literal: single quotes, the same backslash escapes (docs: Syntax, String). */
export function sqlString(s: string): string {
  return `'${tsvText(s)}'`;
}

function list<T>(a: readonly T[], item: (x: T) => string): string {
  let s = '[';
  for (let i = 0; i < a.length; i++) s += (i === 0 ? '' : ',') + item(a[i]!);
  return `${s}]`;
}

const lit = (s: string) => JSON.stringify(s);

/**
 * The line writer of rows of `columns`, in list order. Generated once per list (codegen.ts): the
 * `flows` line is the hottest code after the engine, and a loop calling a writer per column took
 * about a third longer than the hand-written line it replaced (2.8 against 2.1 us per row of the
 * lifecycle bench); the generated one takes 1.7. Only strings that may hold free text (neither
 * `plain` nor closed by `values`) pay for escaping.
 */
export function tsvEncoder<R>(columns: readonly ColumnDef[]): (row: R) => string {
  const env: Record<string, unknown> = { tsvText, chTime, list };
  /** JS source giving the text of value `v` of type `c` (`quoted`: as an array item). */
  const text = (c: ChType, v: string, plain: boolean, quoted: boolean): string => {
    const q = (s: string) => (quoted ? `("'" + ${s} + "'")` : s);
    switch (c.t) {
      case 'Nullable':
        return `(${v} === null ? ${lit(quoted ? 'NULL' : '\\N')} : ${text(c.of, v, plain, quoted)})`;
      case 'LowCardinality':
        return text(c.of, v, plain, quoted);
      case 'Array': {
        const item = `item${Object.keys(env).length}`;
        env[item] = generate(['x'], `return ${text(c.of, 'x', plain, true)};`, env);
        return `list(${v}, ${item})`;
      }
      case 'String':
        return q(plain ? v : `tsvText(${v})`);
      case 'IPv6': case 'Enum8':
        return q(v);
      case 'DateTime64':
        return q(c.precision === 9 ? `chTime(${v})` : `chTime(${v}, ${Math.trunc(c.precision)})`);
      case 'Bool':
        return `(${v} ? 'true' : 'false')`;
      default:
        return v; // numbers
    }
  };
  const fields = columns.map((c) => `\${${text(c.type, `r.${ident(c.name)}`, c.plain === true || c.values !== undefined, false)}}`);
  return generate(['r'], `return \`${fields.join('\\t')}\`;`, env);
}
