/**
 * Credentials in URLs never printed (issue 18 item 9): the helper (common/redact.ts), the logger
 * that applies it to every string and error it writes, `ctpipe config`, the errors of a store that
 * cannot be reached or a URL ctpipe does not take, the report's header, and the message naming the
 * process that holds an embedded store (its arguments left out).
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../dashboards/report.js';
import { createLogger } from '../../common/log.js';
import { packageRoot } from '../../common/paths.js';
import { describeCommandLine, redactDeep, redactUrls } from '../../common/redact.js';
import { BIN } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';

const SECRET = 'hunter2-s3cret';

describe('redactUrls', () => {
  it('replaces the password of every URL in a text, keeping the user, host and the rest', () => {
    expect(redactUrls(`http://ctpipe:${SECRET}@ch.example:8123/?x=1`)).toBe('http://ctpipe:[redacted]@ch.example:8123/?x=1');
    expect(redactUrls(`ClickHouse at https://u:${SECRET}@h:8443 and kafka://a:b@k:9092 failed`)).toBe('ClickHouse at https://u:[redacted]@h:8443 and kafka://a:[redacted]@k:9092 failed');
    expect(redactUrls(`http://u:p@ss${SECRET}@h/x`)).toBe('http://u:[redacted]@h/x'); // an @ in the password
    expect(redactUrls(`https://${SECRET}@github.com/x`)).toBe('https://[redacted]@github.com/x'); // a token as the user
    expect(redactUrls(`{"store":"http://u:${SECRET}@h:1"}`)).toBe('{"store":"http://u:[redacted]@h:1"}');
    for (const plain of ['chdb:./data', 'http://h:8123', 'mail me at a@b.c', 'http://h/path@x', 'ratio 1:2@3']) expect(redactUrls(plain)).toBe(plain);
  });

  it('walks objects and arrays', () => {
    expect(redactDeep({ a: [`http://u:${SECRET}@h`, 1, null], b: { c: `x https://u:${SECRET}@h` } })).toEqual({ a: ['http://u:[redacted]@h', 1, null], b: { c: 'x https://u:[redacted]@h' } });
  });

  it('names another process by its program and subcommand only', () => {
    expect(describeCommandLine(['/usr/bin/node', '/opt/ctpipe/bin/ctpipe.js', 'run', '--clickhouse-password', SECRET])).toBe('node ctpipe.js run ...');
    expect(describeCommandLine(['/usr/local/bin/ctpipe', 'query', `SELECT '${SECRET}'`])).toBe('ctpipe query ...');
    expect(describeCommandLine(['/usr/bin/node', '-e', `open('${SECRET}')`])).toBe('node ...');
    expect(describeCommandLine(['clickhouse-local'])).toBe('clickhouse-local');
  });
});

describe('what ctpipe prints', () => {
  it('the logger redacts fields, nested values, messages and errors', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = createLogger('info', 't', out);
    log.info({ store: `http://u:${SECRET}@h:1`, nested: { list: [`https://u:${SECRET}@h`] } }, `processing into http://u:${SECRET}@h`);
    log.warn(`plain message http://u:${SECRET}@h`);
    log.error({ err: new Error(`connect to http://u:${SECRET}@h failed`) }, 'failed');
    await sleep(50);
    expect(text.split('\n').filter(Boolean)).toHaveLength(3);
    expect(text).not.toContain(SECRET);
    expect(text.match(/u:\[redacted\]@h/g)).toHaveLength(6); // the error twice: message and stack
  });

  it('ctpipe config shows no password, from a flag, a URL or the environment', () => {
    const r = spawnSync(process.execPath, [BIN, 'config', '--clickhouse-url', `http://ctpipe:${SECRET}@ch:8123`, '--clickhouse-password', SECRET],
      { encoding: 'utf8', env: { ...process.env, CTPIPE_KAFKA_SASL_PASSWORD: SECRET } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('url: http://ctpipe:[redacted]@ch:8123');
    expect(r.stdout).not.toContain(SECRET);
  });

  it('errors that quote the URL: a store that cannot be reached, a URL ctpipe does not take', () => {
    const unreachable = spawnSync(process.execPath, [BIN, 'query', '--clickhouse-url', `http://u:${SECRET}@127.0.0.1:1`, 'SELECT 1'], { encoding: 'utf8' });
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(/ClickHouse at http:\/\/u:\[redacted\]@127\.0\.0\.1:1 cannot be reached.*\[STORE_UNAVAILABLE\]/);
    const wrong = spawnSync(process.execPath, [BIN, 'top', '--iterations', '1', '--clickhouse-url', `ftp://u:${SECRET}@h`], { encoding: 'utf8', env: { ...process.env, CTPIPE_DEBUG: '1' } });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('got "ftp://u:[redacted]@h" [CONFIG_INVALID]');
    for (const r of [unreachable, wrong]) expect(r.stderr + r.stdout).not.toContain(SECRET);
  });

  it('the report names its store without the password', () => {
    const html = renderReport([], { fromMs: 0, toMs: 1, store: redactUrls(`http://u:${SECRET}@h:8123`) });
    expect(html).toContain('from http://u:[redacted]@h:8123');
  });

  it('the message naming the process that holds an embedded store leaves out its arguments', async () => {
    const dir = tempDir('held');
    // a process holding the store, with a password among its arguments
    const holder = spawn(process.execPath, ['--input-type=module', '-e',
      `import { openStore } from '${path.join(packageRoot(), 'dist', 'processor', 'clickhouse', 'store.js')}';
       const s = await openStore({ url: 'chdb:' + process.argv[1], database: 'ctpipe' }); await s.query('SELECT 1'); console.log('open'); setInterval(() => {}, 1000);`,
      dir, '--clickhouse-password', SECRET, `http://u:${SECRET}@h`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        holder.on('exit', (c) => reject(new Error(`the holder exited ${String(c)}`)));
      });
      const r = spawnSync(process.execPath, [BIN, 'query', '--clickhouse-url', `chdb:${dir}`, 'SELECT 1'], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`in use by process ${String(holder.pid)} (node ...)`);
      expect(r.stderr).not.toContain(SECRET);
    } finally {
      holder.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
