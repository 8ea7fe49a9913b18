/**
 * How a dashboard variable's value reaches the SQL. Values are untrusted: host names, kinds and
 * conn_states come from stored data, text boxes and every `var-x=` from the URL.
 *
 * Grafana's SQL formats do not escape for ClickHouse: `:singlequote` turns ' into \' and leaves \
 * alone, `:sqlstring` doubles ' and leaves \ alone, the plugin's default quotes lists without
 * escaping and puts scalars in raw. A stored host `\' OR 1 IN (SELECT ... FROM url(...)) --` ends
 * the string literal and runs as SQL (ClickHouse reads \' as an escaped quote). Only
 * `:percentencode` leaves nothing ClickHouse reads as syntax: its output is [A-Za-z0-9-_.~%] (it
 * encodes ' ( ) ! * too: Grafana's encodeURIComponentStrict), and `decodeURLComponent` in the SQL
 * gives the value back. Every variable reference in a query goes through `value` or `values`
 * (dashboards/lint.ts refuses any other).
 *
 * A list is encoded whole as `{a,b}`. So that a comma or brace in a value cannot split it, a
 * multi-value variable's query returns each value as `encodeURLComponent(x)` (`listed`), shown
 * by its text, and `values` decodes each element once more.
 */

/** The value of a single-value variable or text box, as a ClickHouse String expression. */
export const value = (name: string) => `decodeURLComponent('\${${name}:percentencode}')`;

/** The values selected in a multi-value variable whose query returns `listed` values, as Array(String). */
export const values = (name: string) => `arrayMap(v -> decodeURLComponent(v), splitByChar(',', trim(BOTH '{}' FROM ${value(name)})))`;

/**
 * `column` is one of the values selected in `name`; everything when "All" is selected. `has`, not
 * `IN`: ClickHouse uses the primary key for `has(constant array, column)`, not for `column IN array`.
 */
export const oneOf = (column: string, name: string) => `$__conditionalAll(has(${values(name)}, ${column}), $${name})`;

/** The value column of a multi-value variable's query over `expr`, with its text (`values` decodes it). */
export const listed = (expr: string) => `encodeURLComponent(${expr}) AS value, ${expr} AS text`;

/** A numeric `column` is one of the values selected in `name` (a value that is no number selects nothing). */
export const oneOfNumbers = (column: string, name: string) =>
  `$__conditionalAll(has(arrayMap(v -> toUInt32OrNull(v), ${values(name)}), ${column}), $${name})`;

/** The time bucket variable (panels.ts bucketVariable) in seconds: at least a minute, whatever the URL says. */
export const BUCKET = `greatest(60, toUInt32OrZero(${value('bucket')}))`;
