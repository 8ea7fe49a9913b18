// CPU per row (process.cpuUsage: less load-sensitive than rates) of one build, for before/after
// comparisons in alternating runs: node --expose-gc --max-semi-space-size=64 scripts/bench-cpu.js ROOT WHAT
// (node's flags as ctpipe starts, common/node-flags.ts; a build from before them ran without)
// ROOT: a checkout with its dist/ built (another commit's: git archive + npm run build there);
// WHAT: e2e-run (bench/e2e-netlink.ts, ctpipe run's path) | e2e-old (bench/e2e.ts runE2e) | storm | storm-detect | storm-100k | storm-1m | storm-detect-1m (bench/e2e.ts runDestroyStorm into chDB, every thread's CPU over the
// DESTROY phase) | js (lifecycle close -> row -> RowBinary, and with the scan detector, no store) |
// decode (protobuf batches, 1,000 records each, 20% IPv6) | scans (the scan detector alone).
// Prints one JSON line with the 1-minute load average before and after.
import os from 'node:os';
import path from 'node:path';
import { stormRecord } from './storm-records.js';

const [rootArg, what] = process.argv.slice(2);
if (!rootArg || !what) throw new Error('usage: node --expose-gc scripts/bench-cpu.js ROOT e2e-run|e2e-old|storm|storm-detect|storm-1m|storm-detect-1m|storm-100k|js|decode|scans');
const root = path.resolve(rootArg);
const load = [os.loadavg()[0]];
const mod = (p) => import(path.join(root, 'dist', p));
const gc = () => globalThis.gc?.();
const usOf = (c) => c.user + c.system;
let out;

if (what === 'e2e-run') {
  // issue 19: netlink bytes through ctpipe run's collector, sink and pipeline into chDB (bench/e2e-netlink.ts)
  const { runE2eNetlink } = await mod('bench/e2e-netlink.js');
  out = await runE2eNetlink(200_000);
} else if (what === 'e2e-old') {
  const { runE2e } = await mod('bench/e2e.js');
  out = await runE2e();
} else if (/^storm(-detect)?(-1m)?$/.test(what) || what === 'storm-100k') {
  // storm-100k: a 60 s flush, so every insert is the sink's 100,000 (needs a build whose runDestroyStorm takes flushMs);
  // -1m: 1,000,000 rows, what a storm sustains (200,000 rows take 2 s, the last insert's alone a third of it)
  const { runDestroyStorm } = await mod('bench/e2e.js');
  out = await runDestroyStorm(what.endsWith('-1m') ? 1_000_000 : 200_000, what.startsWith('storm-detect'), what === 'storm-100k' ? 60_000 : 1000);
} else if (what === 'js') {
  const { LifecycleEngine } = await mod('processor/lifecycle/engine.js');
  const { TableRows } = await mod('processor/clickhouse/table-rows.js');
  const { ScanDetector } = await mod('processor/anomaly/scans.js');
  const { detectOptions } = await mod('processor/options.js');
  const { loadConfig } = await mod('cli/config.js');
  const { ipv4 } = await mod('contract/addr.js');
  const o = detectOptions(loadConfig({}).detect, 30_000).scans;
  const conns = 200_000;
  const record = stormRecord(ipv4);
  out = {};
  for (const detect of [false, true]) {
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      let batch = TableRows.empty('flows');
      let rows = 0;
      const scans = new ScanDetector(o);
      const e = new LifecycleEngine({
        maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onHealth: () => {},
        onRow: (r) => { batch.push(r); rows++; if (detect) scans.onFlow(r); },
      });
      for (let c = 0; c < conns; c++) e.apply(record(c, 'new', c + 1));
      const destroys = Array.from({ length: conns }, (_, c) => record(c, 'destroy', conns + c + 1));
      rows = 0;
      gc();
      const u = process.cpuUsage();
      for (let c = 0; c < conns; c += 16_384) {
        for (let k = c; k < Math.min(conns, c + 16_384); k++) e.apply(destroys[k]);
        batch = TableRows.empty('flows'); // a chunk's insert
      }
      const cu = process.cpuUsage(u);
      if (rows !== conns) throw new Error(`guard: ${rows} rows of ${conns}`);
      best = Math.min(best, usOf(cu) / conns);
    }
    out[detect ? 'withScansUsPerRow' : 'plainUsPerRow'] = +best.toFixed(3);
  }
} else if (what === 'decode') {
  const { encodeBatch, decodeBatch } = await mod('contract/proto/batch.js');
  const { recordChunks } = await mod('bench/lifecycle.js');
  const v4 = [...recordChunks(20_000, 'bench', 1000)];
  const v6 = v4.slice(0, 40).map((c) => c.map((r) => {
    const a = `2001:db8::${(r.id & 0xffff).toString(16)}`;
    return { ...r, family: 'ipv6', orig: { ...r.orig, src: a, dst: '2001:db8:1::2' }, reply: { ...r.reply, src: '2001:db8:1::2', dst: a } };
  }));
  const bufs = [...v4, ...v6].map((c) => encodeBatch(c));
  const n = bufs.length * 1000;
  let best = Infinity;
  for (let round = 0; round < 7; round++) {
    gc();
    const u = process.cpuUsage();
    let k = 0;
    for (const buf of bufs) k += decodeBatch(buf).records.length;
    const cu = process.cpuUsage(u);
    if (k !== n) throw new Error('guard: records lost');
    best = Math.min(best, (usOf(cu) * 1000) / n);
  }
  out = { records: n, nsPerRecord: +best.toFixed(1) };
} else if (what === 'scans') {
  const { ScanDetector } = await mod('processor/anomaly/scans.js');
  const { detectOptions } = await mod('processor/options.js');
  const { loadConfig } = await mod('cli/config.js');
  const o = detectOptions(loadConfig({}).detect, 30_000).scans;
  const row = (i, srcs) => {
    const s = i % srcs;
    return {
      host: 'h', flow_id: `f${i}`, orig_src: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, orig_dst: '203.0.113.9', orig_dport: 53,
      conn_state: 'S0', end_reason: 'destroy', first_seen: { sec: 1_795_000_000, nsec: 0 }, ended_at: { sec: 1_795_000_001 + Math.floor(i / 20_000), nsec: 0 },
    };
  };
  out = {};
  for (const [name, srcs] of [['newSourcePerRowNs', 1e9], ['thousandSourcesNs', 1000]]) {
    const rows = Array.from({ length: 200_000 }, (_, i) => row(i, srcs));
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const d = new ScanDetector(o);
      gc();
      const u = process.cpuUsage();
      for (const r of rows) d.onFlow(r);
      best = Math.min(best, (usOf(process.cpuUsage(u)) * 1000) / rows.length);
    }
    out[name] = Math.round(best);
  }
} else throw new Error(`unknown: ${what}`);

load.push(os.loadavg()[0]);
console.log(JSON.stringify({ root: rootArg, what, at: new Date().toISOString(), load: load.map((l) => +l.toFixed(2)), ...out }));
process.exit(0);
