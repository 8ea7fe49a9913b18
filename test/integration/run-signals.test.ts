/**
 * `ctpipe run` stopped while its store refuses every insert (the embedded store's disk full, on a
 * small tmpfs): the first signal waits for ClickHouse, as a stop must while the store may come
 * back; a second signal stops it within a bounded time, removes its nft table, and reports what it
 * could not store as a loss: in the log with its count and, since the full store refuses that row
 * too, in pipeline_health at the next start (same count).
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVATION_TABLE } from '../../collector/activation.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { exited, Procs } from '../helpers/procs.js';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../helpers/disk.js';
import { tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let lab: Lab;
let dir: string;
let data: string;
const procs = new Procs(() => ({ CTPIPE_METRICS_ENABLED: 'false' }));

beforeAll(async () => {
  expect(process.getuid?.(), 'this test needs root').toBe(0);
  lab = await Lab.create();
  for (const t of ['tcp_timeout_time_wait', 'tcp_timeout_close']) await lab.sysctl('fw', `net.netfilter.nf_conntrack_${t}`, '2');
  await lab.tcpServer(8080);
  dir = tempDir('signals');
  data = path.join(dir, 'chdb');
  mountSmallDisk(data, 'ctpipe-signals');
}, 60_000);

afterAll(async () => {
  await procs.killAll();
  await lab?.destroy();
  if (data) unmountSmallDisk(data);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const activationTables = async () => (await lab.exec('fw', 'nft', ['list', 'tables'])).stdout.split('\n').filter((l) => l.includes(ACTIVATION_TABLE));

describe('ctpipe run stopped while its store refuses inserts', () => {
  it('a second signal stops it within a bounded time, removes its nft table, and reports the unstored records as a loss', async () => {
    const [p, i] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--enable-conntrack', '--host', 'signals', '--clickhouse-url', `chdb:${data}`,
      '--process-flush', '300ms', '--stats-interval', '1s']);
    await procs.waitLog(i, 'running: collector and processor');
    for (let k = 0; k < 3; k++) await lab.tcpConnect(ADDR.server4, 8080, 200);
    await sleep(4000); // their rows stored
    fillDisk(path.join(data, 'filler'));
    for (let k = 0; k < 10; k++) await lab.tcpConnect(ADDR.server4, 8080, 200);
    await procs.waitLog(i, 'ClickHouse insert failed; holding the input position and retrying', 30_000);

    p.kill('SIGTERM');
    await procs.waitLog(i, 'stopping: writing what is left');
    await sleep(5000);
    expect(p.exitCode, 'the first signal waits for ClickHouse').toBeNull();
    expect(await activationTables()).toHaveLength(1);

    const t0 = Date.now();
    p.kill('SIGTERM');
    const code = await exited(p);
    expect(Date.now() - t0).toBeLessThan(16_000);
    expect(code).toBe(1);
    expect(procs.logs[i]).toContain('second signal: stopping without waiting for ClickHouse');
    const lost = procs.logLine<{ unstored_records: number; msg: string }>(i, '"unstored_records"');
    expect(lost.unstored_records).toBeGreaterThan(0);
    expect(lost.msg).toMatch(/^stopped with \d+ records \(\d+ rows\) not stored, ClickHouse did not take them before the stop \(second signal\): they are lost/);
    expect(procs.logs[i]).toContain('the next start stores it');
    expect(await activationTables()).toEqual([]);

    // room again: the next start stores the loss the full store refused
    rmSync(path.join(data, 'filler'));
    const file = path.join(data, 'ctpipe-unreported-loss.json');
    expect(existsSync(file)).toBe(true);
    const [q, j] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--host', 'signals', '--clickhouse-url', `chdb:${data}`, '--duration', '2s']);
    expect(await exited(q), procs.logs[j]).toBe(0);
    expect(procs.logs[j]).toContain('stored the loss an earlier stop could not report in pipeline_health');
    expect(existsSync(file)).toBe(false);
    const rows = await queryStore<{ count: string; detail: string }>(data,
      "SELECT count, detail FROM ctpipe.pipeline_health WHERE host = 'signals' AND kind = 'loss' AND startsWith(detail, 'stop:')");
    expect(rows.map((r) => Number(r.count))).toEqual([lost.unstored_records]);
  }, 180_000);
});
