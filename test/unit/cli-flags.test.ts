import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../common/suggest.js';
import { BIN } from '../helpers/procs.js';

describe('command-line flags and commands', () => {
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

  it('takes only the settings a command uses: --host names the collecting host, not a processor\'s or a query\'s', () => {
    for (const cmd of ['process', 'replay', 'query', 'top', 'report', 'migrate']) {
      const r = spawnSync(process.execPath, [BIN, cmd, '--host', 'fw-1'], { encoding: 'utf8' });
      expect(r.status, cmd).toBe(2);
      expect(r.stderr, cmd).toContain("Unknown option '--host'");
    }
    expect(spawnSync(process.execPath, [BIN, 'collect', '--help'], { encoding: 'utf8' }).stdout).toContain('--host');
  });
});
