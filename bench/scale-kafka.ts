/**
 * A large conntrack table through Kafka, as a fleet deployment runs it: `ctpipe collect` on a lab
 * firewall -> the mock Kafka cluster -> `ctpipe process` -> chDB. The table fills while both run
 * (the flood held whenever the processor is more than `maxLag` records behind: the mock cluster
 * keeps only 5 MiB a partition, shared/notes/environment.md); the processor is SIGKILLed once it
 * holds every flow; while it is down the first entries end; it restarts from its checkpoint; then
 * every entry ends, a /8 of source addresses at a time (`conntrack -D --mask-src`, paced the same
 * way). Measures the processor's peak RSS with the table held, its restore and catch-up, what its
 * lag metric and /healthz said while it was behind, and checks every row against the kernel's list:
 * each flow exactly one row, ended by its DESTROY, none lost or duplicated, no gap.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaMock } from '../lab/kafka-mock.js';
import { Lab, raiseConntrackMax } from '../lab/lab.js';
import { openStore } from '../processor/clickhouse/store.js';
import { CtpipeProcess, kernelFlows } from './scale-proc.js';

export interface KafkaScaleResult {
  entries: number;
  fillS: number;
  /** The processor's peak RSS (VmHWM) with every flow open. */
  processorPeakRssMb: number;
  collectorPeakRssMb: number;
  /** Restart after SIGKILL: until the processor's state is restored (its log), then until caught up. */
  restoreMs: number;
  caughtUpS: number;
  /** The processor's lag metric and /healthz status at their first answer after the restart. */
  lagAfterRestart: number;
  healthAfterRestart: number;
  endS: number;
  rows: { flows: number; destroyed: number; lost: number; duplicates: number; notInKernel: number; kernelWithoutRow: number; gaps: number };
}

interface ProcessHealth { detail: { partitions: number[]; lag: Record<string, number>; store_up: boolean } }

const HOST = 'scale-kafka';

/**
 * `maxLag`: Kafka messages (batches of up to 1,000 records) the processor may be behind before the
 * flood or the deletions wait for it.
 */
export async function runScaleKafka(entries: number, say: (line: string) => void = () => {}, maxLag = 40): Promise<KafkaScaleResult> {
  const undoMax = raiseConntrackMax(Math.ceil(entries * 1.3) + 65_536);
  const lab = await Lab.create({ accounting: true });
  const kafka = await KafkaMock.start(1);
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-scale-kafka-'));
  const topic = `scale-${Date.now()}`;
  const env = { CTPIPE_KAFKA_BROKERS: kafka.brokers.join(','), CTPIPE_KAFKA_TOPIC: topic };
  const procArgs = ['--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`, '--process-checkpoint', '10s'];
  let collector: CtpipeProcess<{ detail: object }> | undefined;
  let processor: CtpipeProcess<ProcessHealth> | undefined;
  try {
    await lab.sysctl('fw', 'net.netfilter.nf_conntrack_events', '1');
    collector = new CtpipeProcess('collect', ['--netns', lab.netnsPath('fw'), '--host', HOST, '--stats-interval', '10s'], env);
    processor = new CtpipeProcess<ProcessHealth>('process', procArgs, env);
    await collector.waitFor('collecting', async () => (await collector!.metric('ctpipe_collector_seq')) > 0, 120_000);
    await processor.waitFor('processing', async () => (await processor!.metric('ctpipe_processor_records_total')) > 0, 120_000);
    // behind: records the collector made and the processor has not (its counter restarts with it);
    // lag: Kafka messages the processor has not applied, from the brokers' end offsets
    const behind = async () => (await collector!.metric('ctpipe_collector_seq')) - (await processor!.metric('ctpipe_processor_records_total'));
    const lag = () => processor!.metric('ctpipe_processor_lag_records');
    const caughtUp = async (open: number) => (await behind()) <= 0 && (await processor!.metric('ctpipe_processor_open_flows')) >= open;

    // 1. the table fills, at the pace the processor follows
    const t0 = performance.now();
    const filled = await lab.fillUdp(entries, 5000, { hold: async () => (await lag()) > maxLag });
    const fillS = (performance.now() - t0) / 1000;
    say(`filled ${filled.toLocaleString()} entries in ${fillS.toFixed(1)} s, paced by the processor`);
    await processor.waitFor('every NEW processed', () => caughtUp(filled), 600_000, say);
    await sleep(12_000); // a checkpoint (every 10 s) holds them
    const processorPeakRssMb = processor.peakKb / 1024;
    say(`the processor holds ${(await processor.metric('ctpipe_processor_open_flows')).toLocaleString()} open flows; peak RSS ${processorPeakRssMb.toFixed(0)} MB`);
    const ids = await kernelFlows(lab);

    // 2. SIGKILL; while it is down the first /8 of sources ends; restart from the checkpoint
    processor.kill();
    await lab.conntrack(['-D', '-s', '0.0.0.0', '--mask-src', '255.0.0.0'], { allowFail: true });
    await sleep(2000);
    const t1 = performance.now();
    processor = new CtpipeProcess<ProcessHealth>('process', procArgs, env);
    let lagAfterRestart = NaN;
    let healthAfterRestart = 0;
    await processor.waitFor('its first answer', async () => {
      lagAfterRestart = await lag();
      healthAfterRestart = await processor!.status();
      return !Number.isNaN(lagAfterRestart) && healthAfterRestart > 0;
    }, 120_000);
    await processor.waitFor('caught up after the restart', async () => (await lag()) === 0, 600_000, say);
    const caughtUpS = (performance.now() - t1) / 1000;
    const restoreMs = Number(/"open":[1-9]\d*,"restoreMs":(\d+)[^\n]*state restored from its checkpoint/.exec(processor.log)?.[1] ?? NaN);
    say(`restart: lag ${lagAfterRestart} and /healthz ${healthAfterRestart} at first answer; state restored in ${restoreMs} ms; caught up ${caughtUpS.toFixed(1)} s after the start`);

    // 3. every entry ends, a /8 at a time, paced
    const t2 = performance.now();
    for (let a = 1; a < 256; a++) {
      while ((await lag()) > maxLag) await sleep(100);
      await lab.conntrack(['-D', '-s', `${a}.0.0.0`, '--mask-src', '255.0.0.0'], { allowFail: true });
    }
    await processor.waitFor('every flow ended', async () => (await lag()) === 0 && (await processor!.metric('ctpipe_processor_open_flows')) === 0, 600_000, say);
    const endS = (performance.now() - t2) / 1000;
    say(`every entry ended and was processed in ${endS.toFixed(1)} s`);
    await sleep(12_000); // the last rows written and checkpointed
    await collector.stop('SIGTERM');
    await processor.stop('SIGTERM');
    const collectorPeakRssMb = collector.peakKb / 1024;

    const store = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: 'ctpipe' });
    try {
      const [r] = await store.query<Record<string, string>>(`
        SELECT count() flows, countIf(end_reason = 'destroy') destroyed, countIf(end_reason = 'lost') lost FROM ctpipe.flows FINAL WHERE host = {h:String}`, { h: HOST });
      const [d] = await store.query<{ n: string; u: string }>("SELECT count() n, uniqExact(flow_id) u FROM ctpipe.flows WHERE host = {h:String} AND end_reason != 'open'", { h: HOST });
      const [g] = await store.query<{ n: string }>("SELECT sum(count) n FROM ctpipe.pipeline_health WHERE host = {h:String} AND kind IN ('gap', 'loss')", { h: HOST });
      const stored = new Set((await store.query<{ k: string }>(
        "SELECT concat(toString(ct_id), '|', orig_src_text, '|', toString(orig_sport)) k FROM ctpipe.flows FINAL WHERE host = {h:String}", { h: HOST })).map((x) => x.k));
      let notInKernel = 0;
      for (const k of stored) if (!ids.has(k)) notInKernel++;
      let kernelWithoutRow = 0;
      for (const k of ids) if (!stored.has(k)) kernelWithoutRow++;
      return {
        entries: filled, fillS, processorPeakRssMb, collectorPeakRssMb, restoreMs, caughtUpS, lagAfterRestart, healthAfterRestart, endS,
        rows: {
          flows: Number(r!.flows), destroyed: Number(r!.destroyed), lost: Number(r!.lost), duplicates: Number(d!.n) - Number(d!.u),
          notInKernel, kernelWithoutRow, gaps: Number(g?.n ?? 0),
        },
      };
    } finally {
      await store.close();
    }
  } finally {
    collector?.kill();
    processor?.kill();
    await kafka.stop();
    await lab.destroy();
    undoMax();
    rmSync(dir, { recursive: true, force: true });
  }
}
