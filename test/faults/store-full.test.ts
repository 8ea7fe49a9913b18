/**
 * Fault: the embedded store's writes fail (15 s bounded, 60 s in the full run). `ctpipe run` on
 * the lab firewall keeps its chDB data on a small tmpfs; a file fills it, so chDB refuses every
 * insert ("Cannot reserve ..., not enough space") while connections keep coming. The run keeps
 * collecting, stops consuming (its lag grows, /healthz says 503), and once the file is gone writes
 * everything: every connection one row, none twice, no loss or gap in pipeline_health.
 * With a small backlog bound (`--process-max-backlog`) and a burst of new flows during the outage,
 * the records past the bound are dropped, and exactly those are reported: every sequence number
 * is processed or inside a `buffer_full` loss (and gap) in pipeline_health.
 */
import { rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exited, Procs } from '../helpers/procs.js';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../helpers/disk.js';
import { tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';
import { waitWhile } from '../helpers/wait.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { Endpoint, metric } from './harness.js';
import { scale, writeLedger } from './ledger.js';

const OUTAGE_S = scale(15, 60);
let lab: Lab;
let dir: string;
let data: string;
const procs = new Procs();

beforeAll(async () => {
  expect(process.getuid?.(), 'the fault suite needs root').toBe(0);
  lab = await Lab.create();
  // TIME_WAIT and CLOSE end in 5 s, so each connection's DESTROY comes within the test
  for (const t of ['tcp_timeout_time_wait', 'tcp_timeout_close']) await lab.sysctl('fw', `net.netfilter.nf_conntrack_${t}`, '5');
  await lab.tcpServer(8080);
  dir = tempDir('store-full');
  data = path.join(dir, 'chdb');
  mountSmallDisk(data, 'ctpipe-store-full');
});

// a failed test leaves no process holding the store, and the store's disk free
afterEach(async () => {
  await procs.killAll();
  rmSync(path.join(data, 'filler'), { force: true });
});

afterAll(async () => {
  await lab?.destroy();
  if (data) unmountSmallDisk(data);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Until the run at `ops` (log `i`) has stored its first row. */
const firstRow = (ops: Endpoint, i: number) => waitWhile(async () => metric(await ops.metrics(), 'ctpipe_processor_rows_total') < 1,
  { within: 30_000, every: 250, why: () => procs.logs[i]!.slice(-2000) });

describe('fault: the embedded store refuses writes (its disk is full)', () => {
  it('keeps collecting, pauses, and stores every connection once when it can write again', { timeout: (OUTAGE_S + 150) * 1000 }, async () => {
    const ops = new Endpoint();
    const [p, i] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--host', 'store-full', '--clickhouse-url', `chdb:${data}`,
      '--metrics-listen', ops.listen, '--process-flush', '300ms', '--stats-interval', '1s']); // the seq gauge moves with each statistics poll
    await procs.waitLog(i, 'running: collector and processor');
    const made: number[] = []; // client ports of the connections to 8080
    const connect = async (n: number) => {
      for (let k = 0; k < n; k++) made.push((await lab.tcpConnect(ADDR.server4, 8080, 200)).local);
    };

    await connect(20);
    await firstRow(ops, i);

    const filler = path.join(data, 'filler');
    fillDisk(filler);
    const downAt = Date.now();
    const before = made.length;
    // connections keep coming for the whole outage, two at a time
    while (Date.now() - downAt < OUTAGE_S * 1000) await Promise.all([connect(1), connect(1)]);
    const during = await ops.metrics();
    expect(metric(during, 'ctpipe_processor_store_up')).toBe(0);
    expect(metric(during, 'ctpipe_processor_insert_errors_total')).toBeGreaterThan(0);
    const lagDuring = metric(during, 'ctpipe_collector_seq') - metric(during, 'ctpipe_processor_records_total');
    expect(lagDuring, 'consumption pauses: records wait for the store').toBeGreaterThan(0);
    expect(await ops.health()).toBe(503);
    expect(procs.logs[i]).toMatch(/"err":"Cannot reserve [^"]*not enough space.*"msg":"ClickHouse insert failed/);
    expect(p.exitCode).toBe(null);

    unlinkSync(filler);
    const upAt = Date.now();
    let text = '';
    // until caught up: the store takes writes and every record emitted so far went through
    await waitWhile(async () => {
      text = await ops.metrics();
      return !(metric(text, 'ctpipe_processor_store_up') === 1 && metric(text, 'ctpipe_processor_records_total') >= metric(text, 'ctpipe_collector_seq'));
    }, { within: 120_000, every: 250, why: () => `not caught up: ${text.split('\n').filter((l) => /store_up|records_total|collector_seq/.test(l)).join('; ')}` });
    const recoveryS = (Date.now() - upAt) / 1000;
    expect(await ops.health()).toBe(200);
    expect(procs.logs[i]).toContain('ClickHouse accepts inserts again');
    // the last connections' DESTROY: TIME_WAIT is 5 s, and listing the table makes the kernel
    // evict expired entries now rather than at its next garbage collection
    await sleep(6000);
    await lab.conntrack(['-L'], { allowFail: true });
    await sleep(2000);
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);

    const where = "host = 'store-full' AND orig_dport = 8080 AND end_reason = 'destroy'";
    const [final] = await queryStore<{ n: string; ports: string }>(data, `SELECT count() AS n, uniqExact(orig_sport) AS ports FROM ctpipe.flows FINAL WHERE ${where}`);
    const [raw] = await queryStore<{ n: string }>(data, `SELECT count() AS n FROM ctpipe.flows WHERE ${where}`);
    const health = await queryStore<{ kind: string }>(data, "SELECT kind FROM ctpipe.pipeline_health WHERE host = 'store-full' AND kind IN ('loss', 'gap')");
    const stored = Number(final!.n);
    expect(health).toEqual([]);
    const byEnd = await queryStore(data, "SELECT end_reason, orig_dport, count() AS n FROM ctpipe.flows FINAL WHERE host = 'store-full' GROUP BY ALL");
    expect(stored, `flows of the run by end and port: ${JSON.stringify(byEnd)}`).toBe(made.length);
    expect(Number(final!.ports)).toBe(new Set(made).size);
    expect(Number(raw!.n)).toBe(stored);
    writeLedger({
      fault: 'embedded store full', injected: `chDB's disk filled ${((upAt - downAt) / 1000).toFixed(0)} s (every insert refused) while ${made.length - before} more connections arrived`,
      sent: made.length, received: made.length, stored, duplicated: Number(raw!.n) - stored, lost: made.length - stored, recovery_s: recoveryS,
      notes: `ctpipe run: store_up 0, /healthz 503 and ${lagDuring} records waiting at the outage's end; caught up after the disk was freed`,
    });
  });

  it('past the backlog bound drops records, and reports exactly those as a loss', { timeout: 180_000 }, async () => {
    const ops = new Endpoint();
    const [p, i] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--host', 'store-bound', '--clickhouse-url', `chdb:${data}`,
      '--metrics-listen', ops.listen, '--process-flush', '300ms', '--process-max-backlog', '1000', '--stats-interval', '1s']);
    await procs.waitLog(i, 'running: collector and processor');
    await lab.tcpConnect(ADDR.server4, 8080, 200);
    await firstRow(ops, i);
    const filler = path.join(data, 'filler');
    fillDisk(filler);
    const downAt = Date.now();
    const flows = scale(8000, 30_000);
    // one new UDP flow per destination port: a NEW record each, far past the bound of 1,000 (and
    // the batches taken before the inserts stalled)
    await lab.exec('client', 'hping3', ['-q', '--udp', '-c', String(flows), '-i', 'u300', '-p', '++2000', ADDR.server4], { allowFail: true, timeoutMs: 120_000 });
    await procs.waitLog(i, 'the backlog is full: dropping records', 30_000);
    expect(p.exitCode).toBe(null);
    unlinkSync(filler);
    const upAt = Date.now();
    // the statistics records arriving every second find room and carry the loss in behind them
    await procs.waitLog(i, 'reporting the dropped records as a loss', 60_000);
    const recoveryS = (Date.now() - upAt) / 1000;
    p.kill('SIGTERM');
    expect(await exited(p), procs.logs[i]).toBe(0);
    const stopped = procs.logLine<{ seq: number; records: number; dropped: number }>(i, '"msg":"stopped"');
    expect(stopped.dropped).toBeGreaterThan(0);
    expect(stopped.records + stopped.dropped, 'every record processed or dropped').toBe(stopped.seq);

    const health = await queryStore<{ kind: string; count: string; first_seq: string; last_seq: string; detail: string }>(data,
      "SELECT kind, count, first_seq, last_seq, detail FROM ctpipe.pipeline_health WHERE host = 'store-bound' AND kind IN ('loss', 'gap') ORDER BY kind, first_seq");
    const ranges = (kind: string) => health.filter((h) => h.kind === kind).map((h) => [Number(h.first_seq), Number(h.last_seq), Number(h.count)]);
    const losses = ranges('loss');
    expect(health.filter((h) => h.kind === 'loss').map((h) => h.detail)).toEqual(losses.map(() => 'publish: buffer_full'));
    expect(losses.reduce((n, [, , c]) => n + c!, 0)).toBe(stopped.dropped);
    for (const [first, last, count] of losses) expect(last! - first! + 1).toBe(count);
    expect(ranges('gap'), 'the gaps are the reported losses').toEqual(losses);
    writeLedger({
      fault: 'embedded store full, backlog bound', injected: `chDB's disk filled ${((upAt - downAt) / 1000).toFixed(0)} s, ${flows} new UDP flows, --process-max-backlog 1000`,
      sent: stopped.seq, received: stopped.records, stored: null, duplicated: 0, lost: stopped.seq - stopped.records - stopped.dropped,
      reported_lost: stopped.dropped, recovery_s: recoveryS, notes: 'records past the bound dropped and reported as buffer_full loss (and gap) rows in pipeline_health',
    });
  });
});
