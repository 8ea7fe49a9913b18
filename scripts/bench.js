// npm run bench: every benchmark, printed as a table and saved to bench/results/<date>.json.
// Needs root (the storm runs in the lab) and kcat (the publish benchmark's Kafka).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { runDecode } from '../dist/bench/decode.js';
import { runPublish } from '../dist/bench/publish.js';
import { runStorms } from '../dist/bench/storm.js';
import { runLifecycle } from '../dist/bench/lifecycle.js';
import { runDestroyStorm, runE2e } from '../dist/bench/e2e.js';
import { runE2eNetlink } from '../dist/bench/e2e-netlink.js';
import { runIngest, runIngestBreakdown } from '../dist/bench/ingest.js';
import { runIngestVariants } from '../dist/bench/ingest-variants.js';
import { runFreshness } from '../dist/bench/freshness.js';
import { runProcessDrain } from '../dist/bench/process-drain.js';
import { runScaling } from '../dist/bench/scaling.js';
import { runDashboardsScale } from '../dist/bench/dashboards-scale.js';
import { runScaleRun } from '../dist/bench/scale-run.js';
import { runScaleKafka } from '../dist/bench/scale-kafka.js';
import { runSnapshot } from '../dist/bench/snapshot.js';
import { runFleet } from '../dist/bench/fleet.js';

const only = process.argv[2]; // decode | publish | lifecycle | ingest | e2e | e2e-run | freshness | process-drain | storm | scaling | scale | scale-kafka | dashboards-scale | fleet
const out = { date: new Date().toISOString(), machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`, node: process.version };
if (!only || only === 'decode') {
  out.decode = runDecode();
  console.log(`decode: ${Math.round(out.decode.eventsPerSecond).toLocaleString()} events/s on one core (${out.decode.bytesPerEvent.toFixed(0)} B/event)`);
}
if (!only || only === 'publish') {
  out.publish = await runPublish();
  console.log(`publish: ${Math.round(out.publish.eventsPerSecond).toLocaleString()} events/s to Kafka (gzip), encode alone ${Math.round(out.publish.encodeEventsPerSecond).toLocaleString()} events/s, ${out.publish.bytesPerEvent.toFixed(1)} B/event encoded`);
}
if (!only || only === 'lifecycle') {
  out.lifecycle = runLifecycle();
  console.log(`lifecycle: ${Math.round(out.lifecycle.eventsPerSecond).toLocaleString()} events/s on one core; ${Math.round(out.lifecycle.bytesPerOpenFlow)} B per open flow (${out.lifecycle.openFlows.toLocaleString()} open)`);
}
if (!only || only === 'ingest') {
  out.ingest = await runIngest(200_000, 50_000, 3, (line) => process.stderr.write(`${line}\r`));
  const i = out.ingest;
  console.log(`ingest per table and path, old and new side by side (median of 3 rounds; load average ${i.loadavg.map((l) => l.toFixed(1)).join(' -> ')} on ${i.cpus} cores):`);
  console.table(i.rows.map((r) => ({
    table: r.table, path: r.path, format: r.format, 'rows/s': Math.round(r.rowsPerSecond), 'JS us/row': +r.jsUsPerRow.toFixed(2),
    'ClickHouse us/row': +r.chUsPerRow.toFixed(2), 'client us/row': +r.clientUsPerRow.toFixed(2), 'B/row': Math.round(r.bytesPerRow),
  })));
  out.ingestBreakdown = await runIngestBreakdown();
  console.log('ClickHouse CPU per flow row by what the insert does, embedded (us, median of 3 rounds; each line adds to the one above):');
  console.table(out.ingestBreakdown.map((r) => ({ target: r.target, format: r.format, 'us/row': +r.chUsPerRow.toFixed(2) })));
}
if (!only || only === 'e2e' || only === 'e2e-run') {
  out.e2eRun = await runE2eNetlink();
  const n = out.e2eRun;
  console.log(`end to end on ctpipe run's path (netlink bytes -> collector -> run's sink and pipeline, detectors and checkpoints on -> rows in chDB): ${Math.round(n.eventsPerSecond).toLocaleString()} events/s, ${n.cpuUsPerEvent.toFixed(2)} us CPU/event (every thread), ${n.mainUsPerEvent.toFixed(2)} us/event on the main thread (+ ${n.feedUsPerEvent.toFixed(2)} making the netlink chunks), ${n.rowsStored}/${n.conns} flows stored (load ${n.loadavg.map((l) => l.toFixed(1)).join(' -> ')})`);
}
// Named only: the flows table's insert cost, one thing changed at a time (bench/ingest-variants.ts; ~5 minutes)
if (only === 'ingest-variants') {
  out.ingestVariants = await runIngestVariants(undefined, 200_000, 50_000, Number(process.argv[3] ?? 5), (line) => process.stderr.write(`${line}\r`));
  const v = out.ingestVariants;
  console.log(`flows insert cost by variant, embedded (ClickHouse us/row, median of ${v.rounds} rounds; load average ${v.loadavg.map((l) => l.toFixed(1)).join(' -> ')}):`);
  console.table(v.variants.map((r) => ({ variant: r.name, batch: r.batch, 'us/row': +r.chUsPerRow.toFixed(2), min: +r.chUsMin.toFixed(2), max: +r.chUsMax.toFixed(2), 'rows/s': Math.round(r.rowsPerSecond) })));
}
if (!only || only === 'e2e') {
  out.e2e = await runE2e();
  const e = out.e2e;
  console.log(`OLD end to end (bench-made records -> rows in chDB; kept one release for comparison): ${Math.round(e.eventsPerSecond).toLocaleString()} events/s, ${e.rowsStored}/${e.flows} flows stored, ${e.bytesPerFlowRow.toFixed(1)} B per flow row on disk, freshness at ${e.freshnessRate.toLocaleString()} events/s: p50 ${e.freshnessP50ms.toFixed(0)} ms, p99 ${e.freshnessP99ms.toFixed(0)} ms`);
  // 200,000 rows: 1.5 to 2 s, of which the last insert alone (the main thread idle) is about 0.8 s
  // and a fresh process's first touch of its memory a third of the kernel time; 1,000,000 rows
  // (5 s, the 1M lab table's size): the rate a storm sustains (docs/PERFORMANCE.md)
  const storms = [['destroyStorm', 200_000, false, 'DESTROY storm (one event per row)'], ['destroyStormDetect', 200_000, true, "DESTROY storm with ctpipe run's detectors"],
    ['destroyStorm1M', 1_000_000, false, 'DESTROY storm of 1,000,000 rows'], ['destroyStorm1MDetect', 1_000_000, true, "DESTROY storm of 1,000,000 rows with ctpipe run's detectors"]];
  for (const [key, rows, detect, what] of storms) {
    const d = (out[key] = await runDestroyStorm(rows, detect));
    console.log(`${what}: ${Math.round(d.rowsPerSecond).toLocaleString()} rows/s, ${d.cpuUsPerRow.toFixed(2)} us CPU/row (${d.systemUsPerRow.toFixed(2)} in the kernel, ${d.faultsPerRow.toFixed(2)} page faults; by thread ${JSON.stringify(d.byThread, (_, v) => (typeof v === 'number' ? +v.toFixed(2) : v))}; load ${d.loadavg.map((l) => l.toFixed(1)).join(' -> ')}), ${d.rowsStored}/${d.flows} flows stored`);
  }
}
if (!only || only === 'freshness') {
  out.freshness = [];
  // 25,000 connections (200,000 events) at the high rates: the mock broker keeps 5 MiB a partition, and a consumer further behind finds a gap
  for (const [conns, rate] of [[40_000, 50_000], [25_000, 200_000], [25_000, 300_000]]) {
    const f = await runFreshness(conns, rate);
    out.freshness.push(f);
    console.log(`freshness through Kafka and ctpipe process at ${f.rate.toLocaleString()} events/s: ${f.stored}/${f.flows} flows stored, ${Math.round(f.eventsPerSecond).toLocaleString()} events/s through, DESTROY published to row visible p50 ${f.p50ms.toFixed(0)} ms, p99 ${f.p99ms.toFixed(0)} ms, max ${f.maxMs.toFixed(0)} ms`);
  }
}
if (!only || only === 'storm') {
  out.storm = await runStorms(3, 61000);
  console.table(out.storm);
}
if (!only || only === 'scaling') {
  out.scaling = await runScaling((line) => console.log(line));
  console.table(out.scaling);
}
// Named only: a lab table of 1,000,000 entries (or the size after the name) through ctpipe run:
// the global nf_conntrack_max is raised for it and restored after (bench/scale-run.ts).
if (only === 'scale') {
  out.snapshot = await runSnapshot();
  const c = out.snapshot;
  console.log(`checkpoint of ${c.openFlows.toLocaleString()} open flows: saved in ${c.saveMs.toFixed(0)} ms (longest event-loop stall ${c.maxLoopDelayMs.toFixed(0)} ms), ${c.bytesPerFlow.toFixed(1)} B a flow in ${c.chunks} chunks, restored in ${c.restoreMs.toFixed(0)} ms`);
  out.scale = await runScaleRun(Number(process.argv[3] ?? 1_000_000), (line) => console.log(line));
  console.log(JSON.stringify(out.scale, null, 1));
}
// Named only: `ctpipe process` draining 360,000 pre-published events, this build and the roots
// after the name alternately (e.g. `npm run bench -- process-drain /work/wt-base`; bench/process-drain.ts)
if (only === 'process-drain') {
  const others = process.argv.slice(3);
  out.processDrain = {};
  // backlog: a collector draining its queue (32 Batches a produce request); live: one keeping up (one a request)
  for (const [mode, perSend] of [['backlog', 32], ['live', 1]]) {
    console.log(`${mode}: ${perSend} Batch(es) of 1,000 records per produce request`);
    out.processDrain[mode] = await runProcessDrain(45_000, [...others, '.'], 3, (line) => console.log(line), perSend);
  }
}
if (only === 'scale-kafka') {
  out.scaleKafka = await runScaleKafka(Number(process.argv[3] ?? 1_000_000), (line) => console.log(line));
  console.log(JSON.stringify(out.scaleKafka, null, 1));
}
// Named only: 100M rows take most of an hour to generate and about 15 GB (options after the name,
// e.g. `npm run bench -- dashboards-scale --scale 0.01`; bench/dashboards-scale.ts).
if (only === 'dashboards-scale') {
  out.dashboardsScale = await runDashboardsScale(process.argv.slice(3));
}
// Named only: 1,000 hosts through Kafka into two processors, one stopped twice (SIGTERM, SIGKILL)
// while each holds about 500 hosts; about 15 minutes on 2 cores (options after the name, e.g.
// `npm run bench -- fleet --hosts 100 --kills SIGTERM`; bench/fleet.ts).
if (only === 'fleet') {
  const opts = {};
  const a = process.argv.slice(3);
  for (let i = 0; i < a.length; i += 2) {
    const k = a[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    opts[k] = k === 'kills' ? a[i + 1].split(',') : /^\d+$/.test(a[i + 1]) ? Number(a[i + 1]) : a[i + 1];
  }
  out.command = `npm run bench -- fleet ${a.join(' ')}`.trim();
  out.fleet = await runFleet(opts, (line) => console.log(line));
  const f = out.fleet;
  console.log(`fleet: ${f.hosts} hosts, ${f.flows.toLocaleString()} connections, ${f.events.toLocaleString()} events in ${f.seconds.toFixed(0)} s (${f.eventsPerSecond.toLocaleString()}/s; load average ${f.loadavg.start.join(' ')} -> ${f.loadavg.end.join(' ')})`);
  console.log(`stored: ${f.store.finalRows.toLocaleString()} final rows (${f.store.rawFinalRows.toLocaleString()} before FINAL), ${f.store.uniqFlowIds.toLocaleString()} flow ids, ${f.store.lost} lost, ${f.store.gaps} gaps, ${f.store.hostsWrong.length} hosts with a wrong count; scan on ${f.scan.host}: ${f.scan.kinds.join(', ')}; anomalies on other hosts: ${f.scan.wrongHosts.length}`);
  console.table(f.memory.flat());
  console.table(f.takeovers.map(({ restoreMsEach, firstBatchMsEach, readMsEach, openMsEach, applyMsEach, victimStop, ...t }) => ({ ...t, ...victimStop, loadavg: t.loadavg.join(" "), restoreMsMax: Math.max(...restoreMsEach), readMsMax: Math.max(...(readMsEach ?? [-1])), openMsMax: Math.max(...(openMsEach ?? [-1])), applyMsSum: (applyMsEach ?? []).reduce((a, b) => a + b, 0) })));
}
mkdirSync('bench/results', { recursive: true });
const label = out.dashboardsScale?.label ? `-${out.dashboardsScale.label}` : '';
const file = `bench/results/${out.date.slice(0, 10)}${only ? `-${only}` : ''}${label}.json`;
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log(`saved ${file}`);
process.exit(0);
