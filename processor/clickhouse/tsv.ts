/**
 * ClickHouse's TabSeparated input, for the `flows` insert (the end-to-end bottleneck: ClickHouse
 * parses it about twice as fast as JSON, and it is cheaper to build). rows.ts writes the lines.
 *
 *   row    = field *( TAB field ) LF
 *   field  = "\N"                               ; NULL
 *          / "true" / "false" / number / text   ; text with \\ \t \n \r \0 \b \f \' escaped
 *          / "[" [ item *( "," item ) ] "]"     ; arrays; string items single-quoted, same escapes
 *
 * https://clickhouse.com/docs/interfaces/formats/TabSeparated
 */
const SPECIAL = /[\\\t\n\r\0\b\f']/;
const SPECIALS = /[\\\t\n\r\0\b\f']/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0', '\b': '\\b', '\f': '\\f', "'": "\\'" };

export function tsvText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIALS, (c) => ESCAPES[c]!) : s;
}

