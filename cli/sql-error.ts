/**
 * ClickHouse's syntax errors quote the statement it received: the user's SQL with the client's
 * `FORMAT ...` line appended, from the failing position on. Shown instead: the user's own line
 * with a caret under that position, and ClickHouse's reason.
 */

const SHOWN_ALTERNATIVES = 8;

/**
 * `message` of a failed `sql`, or undefined when it is not a syntax error with a position (those
 * messages quote nothing the user did not write, and are shown as they are).
 */
export function syntaxErrorText(sql: string, message: string): string | undefined {
  const m = /Syntax error[^:]*: failed at position (\d+)/.exec(message);
  if (!m) return undefined;
  // a byte position in the UTF-8 text ClickHouse received, 1-based; the user's text comes first
  const bytes = Buffer.from(sql, 'utf8');
  const at = Math.min(Number(m[1]) - 1, bytes.length);
  const offset = bytes.subarray(0, at).toString('utf8').length;
  const before = sql.slice(0, offset);
  const lineNo = before.split('\n').length;
  const col = offset - (before.lastIndexOf('\n') + 1);
  const line = sql.split('\n')[lineNo - 1]!;
  const where = offset >= sql.length ? 'at the end' : `at line ${lineNo}, column ${col + 1}`;
  return `invalid SQL ${where}:\n  ${line}\n  ${line.slice(0, col).replace(/[^\t]/g, ' ')}^\n${reason(message)}`; // tabs kept: the caret lines up
}

/** What ClickHouse says is wrong, without the quoted statement and with a short list of what it expected. */
function reason(message: string): string {
  const r = (/\b(Expected .*|Unmatched .*|Unrecognized .*|Multi-statements .*)$/s.exec(message)?.[1] ?? 'ClickHouse could not parse it')
    .replace(/\s*\(version .*$/s, '').replace(/\s*\(SYNTAX_ERROR\)/, '').trim().replace(/\.$/, '');
  const alts = /^Expected one of: (.*)$/s.exec(r)?.[1]?.split(', ');
  if (!alts || alts.length <= SHOWN_ALTERNATIVES) return r;
  return `Expected one of: ${alts.slice(0, SHOWN_ALTERNATIVES).join(', ')} (and ${alts.length - SHOWN_ALTERNATIVES} more)`;
}
