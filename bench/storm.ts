/**
 * Storm completeness: about 60,000 UDP flows created at flood rate through the lab firewall, then
 * one `conntrack -F`: about 120,000 events (NEW + DESTROY) in two bursts. Counts what the collector
 * received against what the kernel generated (flows created, from the firewall's `ct state new`
 * counter, times two: one NEW and one DESTROY each), and the socket's own drop counter. Three storms back to back.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Collector } from '../collector/collector.js';
import { collectorMetrics } from '../collector/metrics.js';
import type { RecordSink } from '../contract/sink.js';
import { Stamper } from '../contract/stamper.js';
import { openNetfilterSocket } from '../collector/socket.js';
import { silentLogger } from '../common/log.js';
import type { CtpipeRecord } from '../contract/records.js';
import { ADDR, Lab } from '../lab/lab.js';

export interface StormResult {
  storm: number;
  flows: number;
  expected: number;
  received: number;
  lost: number;
  kernelDrops: number;
  enobufs: number;
  seconds: number;
}

class CountingSink implements RecordSink {
  counts = { new: 0, destroy: 0, update: 0, other: 0, loss: 0 };
  write(r: CtpipeRecord): void {
    if (r.type === 'new' || r.type === 'destroy' || r.type === 'update') this.counts[r.type]++;
    else if (r.type === 'loss') this.counts.loss++;
    else this.counts.other++;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/**
 * `storms` storms back to back; each is `floods` hping3 floods at once (one destination port each,
 * `flows` new UDP connections each), then a table flush that destroys them all.
 */
export async function runStorms(storms = 3, flows = 61_000, floods = 1, rcvbuf = 64 << 20): Promise<StormResult[]> {
  const lab = await Lab.create({ accounting: false });
  const results: StormResult[] = [];
  try {
    // The server drops the flood silently, so no ICMP errors come back.
    await lab.exec('server', 'nft', ['add', 'table', 'inet', 'sink']);
    await lab.exec('server', 'nft', ['add', 'chain', 'inet', 'sink', 'in', '{ type filter hook input priority 0; policy accept; }']);
    await lab.exec('server', 'nft', ['add', 'rule', 'inet', 'sink', 'in', 'udp', 'dport', `5000-${5000 + floods - 1}`, 'drop']);
    const sink = new CountingSink();
    const metrics = collectorMetrics();
    const collector = new Collector({
      stamper: new Stamper('storm'), events: ['new', 'update', 'destroy'], rcvbuf, rcvbufMax: rcvbuf, netns: lab.netnsPath('fw'),
      dump: false, statsIntervalMs: 3_600_000, resyncMinIntervalMs: 3_600_000, sink, sockets: openNetfilterSocket, metrics, log: silentLogger,
    });
    await collector.start();
    for (let s = 1; s <= storms; s++) {
      const before = { ...sink.counts };
      const insBefore = await lab.newFlowsCounter();
      const t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: floods }, (_, f) => lab.exec('client', 'hping3',
        ['-q', '--udp', '-p', String(5000 + f), '-s', '1024', '-c', String(flows), '-i', 'u1', ADDR.server4], { allowFail: true, timeoutMs: 300_000 })));
      const made = (await lab.newFlowsCounter()) - insBefore;
      await lab.conntrack(['-F'], { allowFail: true });
      const expected = made * 2;
      // wait until the counts stop moving
      let last = -1;
      for (let i = 0; i < 100; i++) {
        await sleep(200);
        const now = sink.counts.new + sink.counts.destroy;
        if (now === last) break;
        last = now;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const received = sink.counts.new - before.new + sink.counts.destroy - before.destroy;
      const st = await collector.pollStats();
      results.push({ storm: s, flows: made, expected, received, lost: expected - received, kernelDrops: st.collector.drops, enobufs: st.collector.enobufs, seconds });
    }
    await collector.stop();
  } finally {
    await lab.destroy();
  }
  return results;
}
