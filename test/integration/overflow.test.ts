/**
 * A real receive-buffer overrun, forced on purpose: a tiny socket buffer and a storm. Every event
 * is accounted for: received + counted kernel drops = generated. The loss is in the stream as a
 * `loss` record, and a resync dump follows it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from '../../collector/collector.js';
import { collectorMetrics } from '../../collector/metrics.js';
import { MemorySink } from '../../collector/sinks/sink.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { silentLogger } from '../../common/log.js';
import type { LossRecord } from '../../contract/records.js';
import { ADDR, Lab } from '../lab/lab.js';

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
      host: 'overrun', events: ['new', 'destroy'], rcvbuf: 4096, rcvbufMax: 4096, netns: lab.netnsPath('fw'), dump: false,
      statsIntervalMs: 3_600_000, resyncMinIntervalMs: 500, sink, sockets, metrics: collectorMetrics(), log: silentLogger,
    });
    await collector.start();
    const before = await lab.newFlowsCounter();
    await lab.exec('client', 'hping3', ['-q', '--udp', '-p', '5000', '-s', '1024', '-c', '20000', '-i', 'u1', ADDR.server4], { allowFail: true, timeoutMs: 120_000 });
    const flows = (await lab.newFlowsCounter()) - before;
    await new Promise((r) => setTimeout(r, 1500));
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
  });
});
