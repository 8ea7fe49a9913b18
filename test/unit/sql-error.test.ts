/** ctpipe query's syntax errors as a ClickHouse server words them (the chDB wording: test/integration/query-errors.test.ts). */
import { describe, expect, it } from 'vitest';
import { syntaxErrorText } from '../../cli/sql-error.js';

describe('syntax errors of ctpipe query', () => {
  it('drops the server\'s code, the quoted FORMAT line and its version, and keeps the reason', () => {
    const sql = 'SELECT host,\n\tcount( FROM ctpipe.flows';
    const server = 'Code: 62. DB::Exception: Syntax error: failed at position 20 (() (line 2, col 7): ( FROM ctpipe.flows\nFORMAT JSONEachRow. ' +
      'Unmatched parentheses: (. (SYNTAX_ERROR) (version 24.8.4.13 (official build))\n';
    expect(syntaxErrorText(sql, server)).toBe('invalid SQL at line 2, column 7:\n  \tcount( FROM ctpipe.flows\n  \t     ^\nUnmatched parentheses: (');
  });

  it('says "at the end" when the position is past the user\'s text (in the appended FORMAT line)', () => {
    const text = syntaxErrorText('SELECT 1 +', 'Syntax error: failed at position 11 (end of query) (line 2, col 1): \nFORMAT CSVWithNames. Expected one of: a, b, c.');
    expect(text).toBe('invalid SQL at the end:\n  SELECT 1 +\n            ^\nExpected one of: a, b, c');
  });

  it('leaves other errors as they are', () => {
    expect(syntaxErrorText('SELECT x', 'Unknown expression identifier `x` in scope SELECT x.')).toBeUndefined();
  });
});
