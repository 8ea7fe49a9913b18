/**
 * `ctpipe run` on a lab firewall with a large conntrack table, as a user meets it: running while the
 * table fills (a burst of NEW), Ctrl-C, start again (the state restored, the table dump merged into
 * it), then `conntrack -F` (every entry destroyed at once: a burst of DESTROY). Measures each phase and the peak RSS of each run
 * (VmHWM, the embedded store included), and checks the rows: every kernel flow exactly one row,
 * ended by its DESTROY, none lost, evicted or duplicated. The bounded scale test runs it at CI
 * size; `npm run bench -- scale` at 1,000,000 entries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lab, raiseConntrackMax } from '../lab/lab.js';
import { openStore } from '../processor/clickhouse/store.js';
import { CtpipeProcess, kernelFlows, usPerBy, type KernelUse } from './scale-proc.js';

export interface RunScaleResult {
  entries: number;
  fillS: number;
  /** First run: from the burst of NEW (the table filled while it ran) until every record is processed. */
  firstCaughtUpS: number;
  firstStopS: number;
  firstPeakRssMb: number;
  /** Second start: the state restored (from the log), then until the new dump is processed. */
  restoreMs: number;
  secondCaughtUpS: number;
  /** conntrack -F: from the flush until every DESTROY's row is written. */
  drainS: number;
  /** How long `conntrack -F` itself took (the kernel destroying the entries and sending the events). */
  kernelFlushS: number;
  /** `conntrack -F`'s own CPU per entry (us): the kernel deleting the entries and building their events, on the same cores. */
  kernelFlushCpuUsPerEntry: number;
  drainRowsPerS: number;
  secondStopS: number;
  secondPeakRssMb: number;
  /** CPU microseconds of the ctpipe process (every thread, chDB's included) per entry: the burst of NEW, the start dump's merge, the flush. */
  cpuUsPerEntry: { burst: number; dump: number; flush: number };
  /** The flush's CPU microseconds per entry by thread (ScaleProcess.threadCpu's groups). */
  flushByThread: Record<string, number>;
  /** Of it, the kernel's microseconds and the page faults per entry by thread. */
  flushKernel: Record<string, KernelUse>;
  kernelDrops: number;
  rows: { flows: number; destroyed: number; lost: number; evicted: number; duplicates: number; notInKernel: number; kernelWithoutRow: number };
}

interface Health { detail: { seq: number; processed: number; backlog: number; held_bytes: number; open_flows: number } }

export async function runScaleRun(entries: number, say: (line: string) => void = () => {}): Promise<RunScaleResult> {
  const undoMax = raiseConntrackMax(Math.ceil(entries * 1.3) + 65_536);
  const lab = await Lab.create({ accounting: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-scale-'));
  let proc: CtpipeProcess<Health> | undefined;
  try {
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_events', '1');
    const args = ['--netns', lab.netnsPath('fw'), '--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`, '--host', 'scale', '--stats-interval', '5s', ...(process.env.SCALE_ARGS?.split(' ').filter(Boolean) ?? [])];
    let filled = 0;
    const caughtUp = (h: Health['detail']) => h.seq > 0 && h.processed >= h.seq && h.backlog === 0 && h.held_bytes === 0 && h.open_flows >= filled;

    // 1. a burst of NEW: the table filled while ctpipe run watches it
    proc = new CtpipeProcess('run', args);
    await proc.until('the start', (h) => h.seq > 0, 60_000);
    const t0 = performance.now();
    const cpuBurst = proc.cpuSeconds();
    filled = await lab.fillUdp(entries);
    const fillS = (performance.now() - t0) / 1000;
    say(`filled ${filled.toLocaleString()} entries in ${fillS.toFixed(1)} s while running`);
    const firstCaughtUpS = fillS + await proc.until('the burst of NEW processed', caughtUp, 600_000, say);
    const burstCpuS = proc.cpuSeconds() - cpuBurst;
    const burstDrops = await proc.metric('ctpipe_collector_netlink_drops_total');
    say(`burst: ${filled.toLocaleString()} NEW processed ${firstCaughtUpS.toFixed(1)} s after the burst began; kernel drops ${Number.isNaN(burstDrops) ? 0 : burstDrops}`);
    const firstStopS = await proc.stop();
    if (process.env.SCALE_LOG_FIRST) writeFileSync(process.env.SCALE_LOG_FIRST, proc.log); // the burst's checkpoints
    const firstPeakRssMb = proc.peakKb / 1024;
    say(`first stop: ${firstStopS.toFixed(2)} s; peak RSS ${firstPeakRssMb.toFixed(0)} MB`);

    // 2. a restart: the state restored, the table dump merged into it
    proc = new CtpipeProcess('run', args);
    const secondCaughtUpS = await proc.until('the dump processed', caughtUp, 600_000, say);
    const dumpCpuS = proc.cpuSeconds(); // the restore included: from the process's start
    const restoreMs = Number(/"ms":(\d+)[^\n]*state restored/.exec(proc.log)?.[1] ?? NaN);
    say(`second start: state restored in ${restoreMs} ms, caught up in ${secondCaughtUpS.toFixed(1)} s`);
    const ids = await kernelFlows(lab);
    const rowsBefore = await proc.metric('ctpipe_processor_rows_total', 'table="flows"');
    const insertsBefore = [await proc.metric('ctpipe_processor_insert_seconds_count'), await proc.metric('ctpipe_processor_insert_seconds_sum')];
    const tFlush = performance.now();
    const cpuFlush = proc.cpuSeconds();
    const threadsFlush = proc.threads();
    const kernelFlushCpuUsPerEntry = ((await lab.flushTable()) * 1e6) / filled;
    const kernelFlushS = (performance.now() - tFlush) / 1000;
    say(`conntrack -F returned after ${kernelFlushS.toFixed(1)} s, its CPU (the kernel's) ${kernelFlushCpuUsPerEntry.toFixed(1)} us an entry`);
    // drained: every DESTROY decoded, processed and its row written
    await proc.until('the flush drained', (h) => h.held_bytes === 0 && h.backlog === 0 && h.processed >= h.seq && h.open_flows === 0, 600_000, say);
    while ((await proc.metric('ctpipe_processor_rows_total', 'table="flows"')) < (rowsBefore || 0) + ids.size) {
      if (performance.now() - tFlush > 600_000) throw new Error(`the flush's rows were not all written\n${proc.log.slice(-4000)}`);
      await sleep(100);
    }
    const drainS = (performance.now() - tFlush) / 1000;
    const flushCpuS = proc.cpuSeconds() - cpuFlush;
    const us = (s: number) => (s * 1e6) / filled;
    const cpuUsPerEntry = { burst: us(burstCpuS), dump: us(dumpCpuS), flush: us(flushCpuS) };
    const after = proc.threads();
    const flushByThread = usPerBy(threadsFlush, after, filled);
    const flushKernel: Record<string, KernelUse> = Object.fromEntries([...after].map(([name, t]): [string, KernelUse] => {
      const b = threadsFlush.get(name) ?? { systemS: 0, faults: 0 };
      return [name, { systemS: us(t.systemS - b.systemS), faults: (t.faults - b.faults) / filled }];
    }).filter(([, k]) => k.faults >= 0.005 || k.systemS >= 0.05));
    say(`  the flush's CPU per entry by thread: ${Object.entries(flushByThread).map(([n, v]) => `${n} ${v.toFixed(1)} us`).join(', ')}`);
    say(`  of it in the kernel (us) and page faults per entry: ${Object.entries(flushKernel).map(([n, k]) => `${n} ${k.systemS.toFixed(1)} us ${k.faults.toFixed(3)}`).join(', ')}`);
    say(`CPU of the ctpipe process per entry: burst ${cpuUsPerEntry.burst.toFixed(1)} us, start (restore and dump) ${cpuUsPerEntry.dump.toFixed(1)} us, flush ${cpuUsPerEntry.flush.toFixed(1)} us`);
    say(`conntrack -F: ${ids.size.toLocaleString()} rows written ${drainS.toFixed(1)} s after the flush began (${Math.round(ids.size / drainS).toLocaleString()} rows/s)`);
    const inserts = (await proc.metric('ctpipe_processor_insert_seconds_count')) - insertsBefore[0]!;
    const insertS = (await proc.metric('ctpipe_processor_insert_seconds_sum')) - insertsBefore[1]!;
    say(`  the drain's inserts: ${inserts} (every table), ${insertS.toFixed(1)} s in all, ${(insertS / inserts).toFixed(2)} s each`);
    const flushDrops = await proc.metric('ctpipe_collector_netlink_drops_total');
    const secondStopS = await proc.stop();
    if (process.env.SCALE_LOG) writeFileSync(process.env.SCALE_LOG, proc.log);
    const secondPeakRssMb = proc.peakKb / 1024;
    say(`second stop: ${secondStopS.toFixed(2)} s; peak RSS ${secondPeakRssMb.toFixed(0)} MB`);
    proc = undefined;

    const store = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: 'ctpipe' });
    try {
      const [r] = await store.query<Record<string, string>>(`
        SELECT count() flows, countIf(end_reason = 'destroy') destroyed, countIf(end_reason = 'lost') lost, countIf(lost_by = 'evicted') evicted
        FROM ctpipe.flows FINAL WHERE host = 'scale'`);
      const [d] = await store.query<{ n: string; u: string }>("SELECT count() n, uniqExact(flow_id) u FROM ctpipe.flows WHERE host = 'scale' AND end_reason != 'open'");
      const stored = new Set((await store.query<{ k: string }>(
        "SELECT concat(toString(ct_id), '|', orig_src_text, '|', toString(orig_sport)) k FROM ctpipe.flows FINAL WHERE host = 'scale'")).map((x) => x.k));
      let notInKernel = 0;
      for (const id of stored) if (!ids.has(id)) notInKernel++;
      let kernelWithoutRow = 0;
      for (const id of ids) if (!stored.has(id)) kernelWithoutRow++;
      return {
        entries: filled, fillS, firstCaughtUpS, firstStopS, firstPeakRssMb, restoreMs, secondCaughtUpS, drainS, kernelFlushS, kernelFlushCpuUsPerEntry, drainRowsPerS: ids.size / drainS,
        secondStopS, secondPeakRssMb, cpuUsPerEntry, flushByThread, flushKernel, kernelDrops: (Number.isNaN(burstDrops) ? 0 : burstDrops) + (Number.isNaN(flushDrops) ? 0 : flushDrops),
        rows: {
          flows: Number(r!.flows), destroyed: Number(r!.destroyed), lost: Number(r!.lost), evicted: Number(r!.evicted),
          duplicates: Number(d!.n) - Number(d!.u), notInKernel, kernelWithoutRow,
        },
      };
    } finally {
      await store.close();
    }
  } finally {
    proc?.kill();
    await lab.destroy();
    undoMax();
    rmSync(dir, { recursive: true, force: true });
  }
}
