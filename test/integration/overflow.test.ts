/**
 * A real receive-buffer overrun, forced on purpose: a tiny socket buffer and a storm. Every event
 * is accounted for: received + counted kernel drops = generated. The loss is in the stream as a
 * `loss` record, and a resync dump follows it. Through the processor into ClickHouse (chDB), every
 * connection has its row (from its events or the dump), those open across the loss are marked
 * resynced, the loss shows on the Pipeline health dashboard and fires the "losing events" alert rule.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertRules } from '../../dashboards/alerts.js';
import { pipelineDashboard } from '../../dashboards/pipeline.js';
import { evaluateRule, runDashboard } from '../../dashboards/run-queries.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { Pipeline } from '../../processor/pipeline.js';
import { Collector } from '../../collector/collector.js';
import { collectorMetrics } from '../../collector/metrics.js';
import { MemorySink } from '../../contract/sink.js';
import { Stamper } from '../../contract/stamper.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { silentLogger } from '../../common/log.js';
import type { LossRecord } from '../../contract/records.js';
import { tempDir } from '../helpers/resources.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { writeLedger } from '../faults/ledger.js';

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.create({ accounting: false });
  await lab.exec('server', 'nft', ['add', 'table', 'inet', 'sink']);
  await lab.exec('server', 'nft', ['add', 'chain', 'inet', 'sink', 'in', '{ type filter hook input priority 0; policy accept; }']);
  await lab.exec('server', 'nft', ['add', 'rule', 'inet', 'sink', 'in', 'udp', 'dport', '5000', 'drop']);
});
afterAll(async () => lab?.destroy());

describe('receive buffer overrun', () => {
  it('counts every lost event exactly, reports it in the stream and resyncs', async () => {
    const sink = new MemorySink();
    // A 4 KiB buffer (a handful of events) and a reader kept from JavaScript by a tiny queue bound:
    // the kernel must drop.
    const sockets = (o: Parameters<typeof openNetfilterSocket>[0]) => openNetfilterSocket(o.groups?.length ? { ...o, maxQueued: 1 } : o);
    const collector = new Collector({
      stamper: new Stamper('overrun'), events: ['new', 'destroy'], rcvbuf: 4096, rcvbufMax: 4096, netns: lab.netnsPath('fw'), dump: false,
      statsIntervalMs: 3_600_000, resyncMinIntervalMs: 500, sink, sockets, metrics: collectorMetrics(), log: silentLogger,
    });
    await collector.start();
    const before = await lab.newFlowsCounter();
    await lab.exec('client', 'hping3', ['-q', '--udp', '-p', '5000', '-s', '1024', '-c', '20000', '-i', 'u1', ADDR.server4], { allowFail: true, timeoutMs: 120_000 });
    const flows = (await lab.newFlowsCounter()) - before;
    await sleep(1500);
    const stats = await collector.pollStats();
    await collector.stop();
    const received = sink.records.filter((r) => r.type === 'new').length;
    const losses = sink.records.filter((r): r is LossRecord => r.type === 'loss');
    const lost = losses.reduce((n, l) => n + l.count, 0);
    console.log(`overrun: ${flows} NEW events generated, ${received} received, ${lost} reported lost in ${losses.length} loss records`);
    expect(flows).toBeGreaterThan(10_000);
    expect(lost).toBeGreaterThan(0);
    expect(received + lost).toBe(flows);
    expect(stats.collector.drops).toBe(lost);
    expect(losses[0]).toMatchObject({ reason: 'enobufs', source: 'events', resync: true });
    // the resync dump came after the first loss record
    const at = sink.records.indexOf(losses[0]!);
    expect(sink.records.slice(at).some((r) => r.type === 'snapshot')).toBe(true);

    // through the processor into ClickHouse: the dashboard panel and the alert rule see the loss
    const dir = tempDir('overrun');
    const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    try {
      await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 7 });
      const p = new Pipeline({ store, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 100_000, refreshMs: 60_000, graceMs: 5000 } });
      p.process(sink.records);
      p.flushOpen(); // the storm's flows are still in the table: rows for them as they stand
      expect(await p.write('overrun')).toBe(true);
      // every connection the kernel made is accounted for: by its events, or by the resync dump after
      // the loss; those open across the loss and confirmed by the dump are marked resynced
      const [f] = await store.query<{ total: string; resynced: string; from_dump: string }>("SELECT count() AS total, countIf(resynced) AS resynced, countIf(snapshot) AS from_dump FROM ctpipe.flows FINAL WHERE host = 'overrun'");
      console.log(`overrun rows: ${f!.total} flows, ${f!.resynced} resynced, ${f!.from_dump} first seen in a dump`);
      expect(Number(f!.total)).toBe(flows);
      expect(Number(f!.resynced)).toBeGreaterThan(0);
      expect(Number(f!.from_dump)).toBeGreaterThan(0);
      writeLedger({
        fault: 'netlink overflow', injected: `4 KiB receive buffer, a storm of ${flows} new UDP connections`, sent: flows, received,
        stored: Number(f!.total), duplicated: 0, lost: flows - Number(f!.total), reported_lost: lost, recovery_s: null,
        notes: `kernel drops counted exactly in ${losses.length} loss records; every connection restored by the resync dumps, ${f!.resynced} marked resynced`,
      });
      const last = sink.records[sink.records.length - 1]!;
      const nowMs = last.sec * 1000 + 5000;
      const panel = (await runDashboard(store, pipelineDashboard('ctpipe'), { fromMs: nowMs - 600_000, toMs: nowMs, intervalMs: 10_000, vars: {} }))
        .find((x) => x.where.includes('"Losses and gaps"'))!;
      expect(panel.rows.filter((x) => x.kind === 'loss').reduce((n, x) => n + Number(x.records), 0)).toBe(lost);
      const rule = alertRules('ctpipe').groups[0]!.rules.find((x) => x.uid === 'ctpipe-collector-losing')!;
      expect((await evaluateRule(store, rule, nowMs)).firing).toEqual([{ labels: { host: 'overrun' }, value: lost }]);
      expect((await evaluateRule(store, rule, nowMs + 3_600_000)).firing).toEqual([]); // an hour later: quiet
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
