/**
 * What ctpipe keeps on disk is its owner's alone: the embedded store (every file chDB writes), the
 * Kafka spool and recordings are created 0700/0600 whatever the umask; an existing store directory
 * loses the bits for others (a group the operator granted stays). `ctpipe record` writes a new file
 * only: a symbolic link planted in its place, or an existing file, is refused with a clear error
 * and left as it was.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';

let dir: string;
const ns = `ctp-modes-${process.pid}`;
// run under the common umask 022, so only ctpipe's own care makes the files private
const ctpipe = (args: string[]) => spawnSync('sh', ['-c', 'umask 022; exec "$@"', 'sh', process.execPath, BIN, ...args],
  { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CTPIPE_METRICS_ENABLED: 'false' } });
const mode = (p: string) => statSync(p).mode & 0o777;

/** Every path under `root` whose mode lets group or others in, with its mode. */
function opened(root: string, allowGroup = false): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.mode & (allowGroup ? 0o007 : 0o077)) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  walk(root);
  return out;
}

beforeAll(() => {
  expect(process.getuid?.(), 'these tests need root').toBe(0);
  dir = tempDir('modes');
  expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
});

afterAll(() => {
  spawnSync('ip', ['netns', 'del', ns]);
  if (dir) spawnSync('rm', ['-rf', dir]);
});

describe('files are private by default', () => {
  it('the embedded store: the directory 0700 and nothing chDB writes open to group or others', () => {
    const store = path.join(dir, 'store');
    const r = ctpipe(['migrate', '--clickhouse-url', `chdb:${store}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(mode(store)).toBe(0o700);
    expect(readdirSync(store).length).toBeGreaterThan(0);
    expect(opened(store)).toEqual([]);
  });

  it('an existing store directory loses the bits for others, keeps its group', () => {
    const store = path.join(dir, 'old-store');
    mkdirSync(store);
    chmodSync(store, 0o755);
    const r = ctpipe(['migrate', '--clickhouse-url', `chdb:${store}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(mode(store)).toBe(0o750);
    expect(opened(store, true)).toEqual([]);
  });

  it('the Kafka spool: the directory 0700, its segments 0600', () => {
    const spool = path.join(dir, 'spool');
    const r = ctpipe(['collect', '--netns', `/run/netns/${ns}`, '--kafka-brokers', '127.0.0.1:1', '--kafka-spool-dir', spool,
      '--kafka-flush-timeout', '1s', '--duration', '2s']);
    expect(r.status, r.stderr).toBe(0);
    expect(mode(spool)).toBe(0o700);
    const segments = readdirSync(spool);
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) expect(mode(path.join(spool, s))).toBe(0o600);
  });

  it('a recording is a new file, 0600', () => {
    const file = path.join(dir, 'rec.ctpr');
    const r = ctpipe(['record', file, '--netns', `/run/netns/${ns}`, '--duration', '1s']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^recorded \d+ records/);
    expect(mode(file)).toBe(0o600);
  });

  it('ctpipe record refuses a symbolic link planted in its place, and an existing file; both are left as they were', () => {
    const precious = path.join(dir, 'precious');
    writeFileSync(precious, 'keep me\n');
    const planted = path.join(dir, 'planted.ctpr');
    symlinkSync(precious, planted);
    const r = ctpipe(['record', planted, '--netns', `/run/netns/${ns}`, '--duration', '1s']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`ctpipe: cannot create the recording ${planted}: it is a symbolic link, which ctpipe never writes through [CONFIG_FILE]\n`);
    expect(readFileSync(precious, 'utf8')).toBe('keep me\n');

    const dangling = path.join(dir, 'dangling.ctpr');
    symlinkSync(path.join(dir, 'would-be-created'), dangling);
    expect(ctpipe(['record', dangling, '--netns', `/run/netns/${ns}`, '--duration', '1s']).status).toBe(2);
    expect(() => statSync(path.join(dir, 'would-be-created'))).toThrow();

    const r2 = ctpipe(['record', precious, '--netns', `/run/netns/${ns}`, '--duration', '1s']);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toBe(`ctpipe: cannot create the recording ${precious}: it exists, and ctpipe does not overwrite it (remove it or choose another name) [CONFIG_FILE]\n`);
    expect(readFileSync(precious, 'utf8')).toBe('keep me\n');
  });
});
