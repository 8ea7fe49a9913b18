/**
 * What `ctpipe query` prints when the SQL or the store is wrong (issue 18 item 19), against a real
 * chDB store: a syntax error shows the user's own line with a caret (never the `FORMAT ...` the
 * client appends), and a store chDB cannot open (code 76, CANNOT_OPEN_FILE) gives one ctpipe line
 * naming the file (or the process holding its lock), without chDB's own `Code: 76` line before it. Needs root (a read-only bind mount).
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { BIN } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';

const ctpipe = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CTPIPE_CONFIG: '' } });
let dir: string;
const store = () => path.join(dir, 'store');
/** A copy of the migrated store, damaged by `damage`. */
function copy(name: string, damage: (d: string) => void): string {
  const d = path.join(dir, name);
  cpSync(store(), d, { recursive: true, verbatimSymlinks: true });
  damage(d);
  return d;
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('these tests need root (a read-only bind mount)');
  dir = tempDir('query-errors');
  const m = ctpipe(['migrate', '--clickhouse-url', `chdb:${store()}`]);
  expect(m.status, m.stderr).toBe(0);
});
afterAll(() => release(dir));

describe('ctpipe query: invalid SQL', () => {
  it('points at the user\'s own text with a caret, whatever FORMAT the client appends', () => {
    for (const format of ['table', 'json', 'csv']) {
      const r = ctpipe(['query', '--clickhouse-url', `chdb:${store()}`, '--format', format, 'SELECT count( FROM ctpipe.flows']);
      expect(r.status, format).toBe(1);
      expect(r.stderr, format).toBe('ctpipe: invalid SQL at line 1, column 13:\n  SELECT count( FROM ctpipe.flows\n              ^\nUnmatched parentheses: ( [QUERY_FAILED]\n');
      expect(r.stderr).not.toMatch(/FORMAT|position/);
    }
  });

  it('finds the line and column in multi-line and non-ASCII SQL, and shortens the list of what was expected', () => {
    const multi = ctpipe(['query', '--clickhouse-url', `chdb:${store()}`, "SELECT 'é',\n  count()\nFROM ctpipe.flows WHERE ("]);
    expect(multi.stderr).toContain('invalid SQL at line 3, column 25:\n  FROM ctpipe.flows WHERE (\n                          ^\n');
    const typo = ctpipe(['query', '--clickhouse-url', `chdb:${store()}`, 'SELECT 1 FORM ctpipe.flows']);
    expect(typo.stderr).toMatch(/^ctpipe: invalid SQL at line 1, column \d+:\n {2}SELECT 1 FORM ctpipe\.flows\n {2}\s*\^\nExpected one of: .* \(and \d+ more\) \[QUERY_FAILED\]\n$/);
  });
});

describe('ctpipe query: a store chDB cannot open (code 76)', () => {
  it('names the file when the lock file is a directory, without chDB\'s own line', () => {
    const d = copy('status-dir', (x) => {
      rmSync(path.join(x, 'status'), { force: true });
      mkdirSync(path.join(x, 'status'));
    });
    const r = ctpipe(['query', '--clickhouse-url', `chdb:${d}`, 'SELECT 1']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`ctpipe: cannot open the embedded ClickHouse at ${d}: ${d}/status: a directory where chDB keeps its lock file (remove it) [STORE_UNAVAILABLE]\n`);
  });

  it('names the process holding the store\'s lock, without chDB\'s own "Cannot lock file" line', async () => {
    const d = copy('locked', () => undefined);
    const holder = spawn(process.execPath, ['--input-type=module', '-e',
      `import { openStore } from '${path.join(packageRoot(), 'dist', 'processor', 'clickhouse', 'store.js')}';
       const s = await openStore({ url: 'chdb:' + process.argv[1], database: 'ctpipe' }); await s.query('SELECT 1'); console.log('open'); setInterval(() => {}, 1000);`, d],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (b: Buffer) => b.toString().includes('open') && resolve());
        holder.on('exit', (c) => reject(new Error(`the holder exited ${String(c)}`)));
      });
      const r = ctpipe(['query', '--clickhouse-url', `chdb:${d}`, 'SELECT 1']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^ctpipe: cannot open the embedded ClickHouse at ${d}: the directory is in use by process ${String(holder.pid)} \\(node \\.\\.\\.\\); [^\\n]* \\[STORE_UNAVAILABLE\\]\\n$`));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('says the file system is read-only, without chDB\'s own line', () => {
    const d = copy('read-only', () => undefined);
    const mount = spawnSync('mount', ['--bind', '-o', 'ro', d, d], { encoding: 'utf8' });
    expect(mount.status, mount.stderr).toBe(0);
    try {
      const r = ctpipe(['query', '--clickhouse-url', `chdb:${d}`, 'SELECT 1']);
      expect(r.status).toBe(1);
      expect(r.stderr).not.toContain('Code: 76');
      expect(r.stderr).toMatch(/^ctpipe: cannot open the embedded ClickHouse at .*: read-only file system \(chDB writes its directory even to read it: copy the store somewhere writable\) \[STORE_UNAVAILABLE\]\n$/);
    } finally {
      spawnSync('umount', [d]);
    }
  });
});
