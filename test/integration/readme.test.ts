/**
 * The README, followed literally in a fresh clone: its first command (the main job on the embedded
 * store) runs until Ctrl-C, which it gets once its pipeline has seen a little loopback traffic, and
 * leaves that traffic in ./data; its second command (install, `npm ci`, `npm test`) passes, which
 * runs every other test file once more in the clone (this one is left out there: vitest.config.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { tempDir } from '../helpers/resources.js';
import { waitWhile } from '../helpers/wait.js';

const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
const [mainJob, testCommand] = [...readme.matchAll(/```sh\n([^\n]+)\n```/g)].map((m) => m[1]!);
let clone: string;
// what a user's shell has: not the variables of the vitest run around this test
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|NODE_ENV$|TEST$)/.test(k))) as Record<string, string>;

beforeAll(() => {
  expect(process.getuid?.(), 'the README commands run as root').toBe(0);
  clone = tempDir('readme');
  chmodSync(clone, 0o755); // as a clone in a home or /opt is: the suite runs ctpipe as an unprivileged user too
  const r = spawnSync('git', ['clone', '-q', packageRoot(), clone], { encoding: 'utf8' });
  expect(r.status, `a fresh clone of ${packageRoot()}: ${r.stderr}`).toBe(0);
});

afterAll(() => {
  if (clone) rmSync(clone, { recursive: true, force: true });
});

describe('the README, literally, in a fresh clone', () => {
  it('the first command runs the main job until Ctrl-C and stores what it saw', async () => {
    expect(mainJob).toMatch(/^npm ci && \.\/bin\/ctpipe\.js run /);
    // its own process group, as in a terminal, so Ctrl-C (SIGINT to the group) reaches npm, bash and ctpipe alike
    const p = spawn('bash', ['-c', mainJob!], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-50_000)));
    p.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-50_000)));
    const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    await waitWhile(() => !log.includes('running: collector and processor'), { within: 900_000, every: 500, alive: p, why: () => log.slice(-5000) });
    spawnSync('ping', ['-c', '3', '-i', '0.2', '127.0.0.1']);
    spawnSync('curl', ['-s', '-m', '2', 'http://127.0.0.1:1/']); // refused: a REJ connection
    await sleep(12_000); // past one statistics interval (10 s): host_stats gets its first row
    process.kill(-p.pid!, 'SIGINT');
    const timer = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), 60_000);
    expect(await exit, log.slice(-5000)).toBe(0);
    clearTimeout(timer);
    expect(log).toMatch(/"why":"SIGINT".*"msg":"stopping: writing what is left/);
    const q = spawnSync(process.execPath, ['bin/ctpipe.js', 'query', '--clickhouse-url', 'chdb:./data', '--format', 'json',
      "SELECT countIf(proto = 1 AND orig_dst_text = '127.0.0.1') AS pings, countIf(proto = 6 AND orig_dport = 1 AND conn_state = 'REJ') AS refused, " +
      '(SELECT count() FROM ctpipe.host_stats) AS stats FROM ctpipe.flows FINAL'], { cwd: clone, encoding: 'utf8' });
    expect(q.status, q.stderr).toBe(0);
    const row = JSON.parse(q.stdout) as { pings: string; refused: string; stats: string };
    expect(Number(row.pings)).toBeGreaterThanOrEqual(1);
    expect(Number(row.refused)).toBeGreaterThanOrEqual(1);
    expect(Number(row.stats)).toBeGreaterThanOrEqual(1);
  }, 1_000_000);

  it('the second command installs what the tests need and passes every other test file', () => {
    expect(testCommand).toMatch(/&& npm ci && npm test$/);
    const logFile = path.join(tmpdir(), `ctpipe-readme-suite-${process.pid}.log`);
    const r = spawnSync('bash', ['-c', testCommand!], { cwd: clone, env: { ...env, README_TEST_INNER: '1', NO_COLOR: '1' }, encoding: 'utf8', maxBuffer: 1 << 30 });
    writeFileSync(logFile, `${r.stdout}\n${r.stderr}`);
    // vitest writes the failures' details to stderr (failed suites, then tests): they lead the
    // message, which CI's log may cut short
    const at = r.stderr.search(/Failed (Suites|Tests) \d/);
    const failed = at < 0 ? r.stderr.slice(-4000) : r.stderr.slice(at, at + 6000);
    expect(r.status, `the suite failed in the clone (its output: ${logFile}):\n${failed}\n${r.stdout.slice(-2000)}`).toBe(0);
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.test.ts') ? [path.join(dir, e.name)] : []));
    const others = files(path.join(clone, 'test')).length - 1;
    expect(r.stdout).toMatch(new RegExp(`Test Files\\s+${others} passed \\(${others}\\)`));
    rmSync(logFile);
  }, 3_000_000);
});
