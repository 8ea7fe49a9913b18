import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../common/suggest.js';
import { BIN } from '../helpers/procs.js';

describe('did you mean', () => {
  it('measures edits and names the closest candidate only when it is close', () => {
    expect(editDistance('', 'run')).toBe(3);
    expect(editDistance('rnu', 'run')).toBe(2);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(closest('rnu', ['run', 'report', 'replay'])).toBe('run');
    expect(closest('--clickhose-url', ['--clickhouse-url', '--clickhouse-user'])).toBe('--clickhouse-url');
    expect(closest('frobnicate', ['run', 'report', 'replay'])).toBeUndefined();
  });

  it('suggests a command and a flag on the command line, exit code 2', () => {
    const cmd = spawnSync(process.execPath, [BIN, 'raport'], { encoding: 'utf8' });
    expect(cmd.status).toBe(2);
    expect(cmd.stderr).toMatch(/^ctpipe: unknown command "raport" \(did you mean report\?\)/);
    const flag = spawnSync(process.execPath, [BIN, 'query', '--clickhose-url', 'chdb:x', 'SELECT 1'], { encoding: 'utf8' });
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain("Unknown option '--clickhose-url' (did you mean --clickhouse-url?)");
    const far = spawnSync(process.execPath, [BIN, 'query', '--zzzzzzzzzz', 'SELECT 1'], { encoding: 'utf8' });
    expect(far.stderr).not.toContain('did you mean');
  });
});
