/** The saved queries of `ctpipe query --example`: each runs on the current schema; unknown names list the others. */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../cli/query-examples.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { BIN } from '../helpers/procs.js';
import { tempDir } from '../helpers/resources.js';

describe('ctpipe query --example', () => {
  it('runs every saved query, with its default parameters, on the schema', async () => {
    const dir = tempDir('examples');
    const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    try {
      await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 7 });
      for (const [name, e] of Object.entries(EXAMPLES)) {
        const r = await store.queryWithMeta(e.sql('ctpipe'), e.params);
        expect(r.meta.length, name).toBeGreaterThan(1);
      }
    } finally {
      await store.close();
    }
    const run = spawnSync(process.execPath, [BIN, 'query', '--example', 'top-talkers', '--param', 'hours=6', '--clickhouse-url', `chdb:${dir}`, '--format', 'csv'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('"host","source","connections","bytes"');
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists them, and names them when the one asked for does not exist', () => {
    const list = spawnSync(process.execPath, [BIN, 'query', '--examples'], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    for (const name of Object.keys(EXAMPLES)) expect(list.stdout).toContain(name);
    const bad = spawnSync(process.execPath, [BIN, 'query', '--example', 'top-talker'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no saved query "top-talker"[\s\S]*top-talkers/);
  });
});
