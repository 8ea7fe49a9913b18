/**
 * What a counter dump costs (collector/counter-dumps.ts): the lab firewall's table filled with UDP
 * entries (hping3, as scale-run.ts does), then dumped through the collector's query client, each
 * entry decoded into a record as the collector emits it. Measures the dump's wall time and this
 * process's CPU (user: decoding; system: the kernel walking the table and copying it out, which
 * runs in the reader thread's recv). The processor's share (the engine applying each record) is
 * the lifecycle benchmark's. Run: `node dist/bench/counter-dump.js 100000 1000000` (root; raises
 * the global nf_conntrack_max for the fill and puts it back).
 */
import { silentLogger } from '../common/log.js';
import { ctDump } from '../collector/netlink/requests.js';
import { QueryClient } from '../collector/query.js';
import { openNetfilterSocket } from '../collector/socket.js';
import { Lab, raiseConntrackMax } from '../lab/lab.js';

export interface CounterDumpCost {
  entries: number;
  records: number;
  wallMs: number;
  userMs: number;
  systemMs: number;
  /** CPU (user + system) per entry, microseconds. */
  cpuUsPerEntry: number;
}

/** Fills the table step by step to each size in `sizes` (ascending) and dumps it `rounds` times at each. */
export async function runCounterDump(sizes: number[], rounds = 3, say: (line: string) => void = () => {}): Promise<CounterDumpCost[]> {
  const undoMax = raiseConntrackMax(Math.ceil(Math.max(...sizes) * 1.3) + 65_536);
  const lab = await Lab.create({ accounting: true });
  const out: CounterDumpCost[] = [];
  try {
    const q = new QueryClient(openNetfilterSocket({ rcvbuf: 4 << 20, netns: lab.netnsPath('fw') }), () => {});
    try {
      let have = await lab.conntrackCount();
      for (const size of sizes) {
        if (have < size) await lab.fillUdp(size - have);
        have = await lab.conntrackCount();
        for (let i = 0; i < rounds; i++) {
          let records = 0;
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          await q.request(ctDump, { ct: () => { records++; } });
          await q.drained();
          const wallMs = performance.now() - t0;
          const cpu = process.cpuUsage(cpu0);
          const r = { entries: have, records, wallMs, userMs: cpu.user / 1000, systemMs: cpu.system / 1000, cpuUsPerEntry: (cpu.user + cpu.system) / Math.max(1, records) };
          say(`${have.toLocaleString()} entries: ${records.toLocaleString()} records in ${wallMs.toFixed(0)} ms, user ${r.userMs.toFixed(0)} ms, system ${r.systemMs.toFixed(0)} ms, ${r.cpuUsPerEntry.toFixed(2)} us CPU/entry`);
          out.push(r);
        }
      }
    } finally {
      q.close();
    }
  } finally {
    await lab.destroy();
    undoMax();
  }
  return out;
}

if (process.argv[1]?.endsWith('counter-dump.js')) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  await runCounterDump(sizes.length ? sizes : [100_000, 1_000_000], 3, (l) => console.log(l));
  silentLogger.flush();
}
