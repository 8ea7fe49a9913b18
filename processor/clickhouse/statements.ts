/**
 * The statements in a text of ClickHouse SQL, split as ClickHouse's lexer reads it
 * (src/Parsers/Lexer.cpp): a `;` ends a statement only outside string literals ('...', where \
 * escapes the next character and '' is a quote), quoted identifiers ("..." and `...`, the same
 * escapes), heredocs ($tag$...$tag$) and comments (-- and `# ` to the end of the line, and block
 * comments, which nest). Each statement's bare words come uppercased, for the checks of what a read-only
 * command may run (`readOnlyProblem`).
 */
import { CtpipeError } from '../../common/errors.js';

export interface Statement {
  /** The bare words (keywords, names), uppercased, in order. */
  words: string[];
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const HEREDOC = /\$([A-Za-z0-9_]*)\$/y;

/** The statements of `sql` that hold anything but whitespace and comments; throws on an unterminated literal or comment. */
export function statements(sql: string): Statement[] {
  const out: Statement[] = [];
  let words: string[] = [];
  let tokens = 0;
  const end = () => {
    if (tokens > 0) out.push({ words });
    words = [];
    tokens = 0;
  };
  const unterminated = (what: string, at: number): never => {
    throw new CtpipeError('QUERY_REFUSED', `the SQL has an unterminated ${what} (from character ${at + 1})`);
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-' || c === '#' && (sql[i + 1] === ' ' || sql[i + 1] === '!')) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const from = i;
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) { depth++; i += 2; }
        else if (sql.startsWith('*/', i)) { depth--; i += 2; }
        else if (i >= sql.length) unterminated('comment', from);
        else i++;
      } while (depth > 0);
    } else if (c === "'" || c === '"' || c === '`') {
      const from = i++;
      for (;;) {
        if (i >= sql.length) unterminated(c === "'" ? 'string literal' : 'quoted name', from);
        const d = sql[i]!;
        if (d === '\\') i += 2;
        else if (d === c && sql[i + 1] === c) i += 2;
        else if (d === c) { i++; break; }
        else i++;
      }
      tokens++;
    } else if (c === ';') {
      i++;
      end();
    } else {
      HEREDOC.lastIndex = i;
      const h = c === '$' ? HEREDOC.exec(sql) : null;
      if (h) {
        const close = sql.indexOf(h[0], i + h[0].length);
        if (close < 0) unterminated('heredoc', i);
        i = close + h[0].length;
        tokens++;
        continue;
      }
      WORD.lastIndex = i;
      const w = WORD.exec(sql);
      if (w) {
        words.push(w[0].toUpperCase());
        i += w[0].length;
      } else {
        i++;
      }
      tokens++;
    }
  }
  end();
  return out;
}

/**
 * Why `sql` is not one statement a read-only command may run, or undefined. ClickHouse's
 * `readonly = 1` refuses writes, settings, and table functions (file(), url(), ...) itself; what it
 * does not cover is checked here: more than one statement (chDB runs each in turn, so a
 * `SELECT 1; DROP ...` would go as far as readonly lets it), and `INTO OUTFILE`, which the
 * embedded ClickHouse carries out in this process, writing a local file, whatever `readonly` says.
 */
export function readOnlyProblem(sql: string, write = false): string | undefined {
  const list = statements(sql);
  if (list.length === 0) return 'there is no statement to run';
  if (list.length > 1) return `only one statement at a time (this text holds ${list.length})`;
  const w = list[0]!.words;
  if (!write && w.some((x, i) => x === 'INTO' && w[i + 1] === 'OUTFILE')) return 'INTO OUTFILE writes a file';
  return undefined;
}
