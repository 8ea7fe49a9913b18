// Two (or more) builds measured in ONE process, their rounds interleaved, so each sees the same
// machine load (on a shared 2-core machine at load 6 to 8, alternating processes of bench-cpu.js
// varied by 20% and more from run to run). CPU from process.cpuUsage, main thread only, JS only:
//   node --expose-gc --max-semi-space-size=64 scripts/bench-ab.js WHAT ROOT_A ROOT_B [...]
// WHAT: run (ctpipe run's JS path: netlink chunks of bench/e2e-netlink.ts -> decodeChunk -> engine
// -> rows -> RowBinary; no chDB, no threads) | kafka (the same events as protobuf Batches of 1,000
// -> decodeBatch -> engine -> rows) | decode (bench-cpu.js's decode) | js (bench-cpu.js's js, plain).
// Each ROOT a checkout with its dist/ built (the first one that is a checkout makes the input).
// Prints per build the best and the median of the rounds, and every round.
import path from 'node:path';
import { stormRecord } from './storm-records.js';

const [what, ...roots] = process.argv.slice(2);
if (!['run', 'kafka', 'decode', 'js'].includes(what) || roots.length < 2) throw new Error('usage: bench-ab.js run|kafka|decode|js ROOT_A ROOT_B [...]');
const load = async (r) => {
  const m = (p) => import(path.join(path.resolve(r), 'dist', p));
  return {
    r, pb: await m('contract/proto/batch.js'), dec: await m('collector/conntrack/decode.js'), eng: await m('processor/lifecycle/engine.js'),
    tr: await m('processor/clickhouse/table-rows.js'), addr: await m('contract/addr.js'),
    lab: what === 'run' || what === 'kafka' ? await m('bench/e2e-netlink.js') : undefined, lc: what === 'decode' ? await m('bench/lifecycle.js') : undefined,
  };
};
const mods = [];
for (const r of roots) mods.push(await load(r));
const gen = mods[0];
const noop = () => {};
const handler = (ct) => ({ ct, exp: noop, cpuStats: noop, globalStats: noop, expStats: noop, done: noop, kernelError: noop, reject: (x) => { throw x; } });
const engine = (m, onRow) => new m.eng.LifecycleEngine({ maxOpen: 2_000_000, refreshMs: 60_000, graceMs: 30_000, onHealth: noop, onRow });
const cpu = (f) => {
  globalThis.gc?.();
  const u = process.cpuUsage();
  f();
  const c = process.cpuUsage(u);
  return c.user + c.system;
};

let round;
let rounds = 15;
let unit = 'us/event';
const conns = 50_000;
if (what === 'run' || what === 'kafka') {
  const chunks = [...gen.lab.netlinkChunks(gen.lab.labConnection(), conns, 1_795_000_000)];
  let bufs = [];
  if (what === 'kafka') {
    const recs = [];
    let seq = 0;
    for (const c of chunks) gen.dec.decodeChunk(c, handler((r) => { r.host = 'h'; r.run = 'r'; r.seq = ++seq; recs.push(r); }));
    for (let i = 0; i < recs.length; i += 1000) bufs.push(gen.pb.encodeBatch(recs.slice(i, i + 1000)));
    chunks.length = 0;
  }
  round = (m) => {
    let batch = m.tr.TableRows.empty('flows');
    let rows = 0;
    let seq = 0;
    const e = engine(m, (r) => { batch.push(r); rows++; });
    const h = handler((r) => { r.host = 'h'; r.run = 'r'; r.seq = ++seq; e.apply(r); });
    const us = cpu(() => {
      if (what === 'run') {
        for (const c of chunks) {
          m.dec.decodeChunk(c, h);
          if (batch.length >= 16_384) batch = m.tr.TableRows.empty('flows');
        }
      } else {
        for (const b of bufs) {
          for (const r of m.pb.decodeBatch(b).records) e.apply(r);
          if (batch.length >= 16_384) batch = m.tr.TableRows.empty('flows');
        }
      }
    });
    if (rows !== conns) throw new Error(`guard: ${rows} rows`);
    return us / (conns * 8);
  };
} else if (what === 'decode') {
  const v4 = [...gen.lc.recordChunks(20_000, 'bench', 1000)];
  const v6 = v4.slice(0, 40).map((c) => c.map((r) => {
    const a = `2001:db8::${(r.id & 0xffff).toString(16)}`;
    return { ...r, family: 'ipv6', orig: { ...r.orig, src: a, dst: '2001:db8:1::2' }, reply: { ...r.reply, src: '2001:db8:1::2', dst: a } };
  }));
  const bufs = [...v4, ...v6].map((c) => gen.pb.encodeBatch(c));
  rounds = 25;
  unit = 'ns/record';
  round = (m) => {
    let k = 0;
    const us = cpu(() => { for (const b of bufs) k += m.pb.decodeBatch(b).records.length; });
    if (k !== bufs.length * 1000) throw new Error('guard: records lost');
    return (us * 1000) / k;
  };
} else {
  // records built by hand, their addresses as the decoder's cache makes them (bench-cpu.js js)
  const n = 200_000;
  rounds = 7;
  unit = 'us/row';
  round = (m) => {
    const record = stormRecord(m.addr.ipv4);
    let batch = m.tr.TableRows.empty('flows');
    let rows = 0;
    const e = engine(m, (r) => { batch.push(r); rows++; });
    for (let c = 0; c < n; c++) e.apply(record(c, 'new', c + 1));
    const destroys = Array.from({ length: n }, (_, c) => record(c, 'destroy', n + c + 1));
    rows = 0;
    const us = cpu(() => {
      for (let c = 0; c < n; c += 16_384) {
        for (let k = c; k < Math.min(n, c + 16_384); k++) e.apply(destroys[k]);
        batch = m.tr.TableRows.empty('flows');
      }
    });
    if (rows !== n) throw new Error('guard: rows');
    return us / n;
  };
}

const all = mods.map(() => []);
for (let i = 0; i < rounds; i++) mods.forEach((m, k) => all[k].push(round(m)));
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [k, m] of mods.entries()) {
  console.log(JSON.stringify({ root: m.r, what, unit, best: +Math.min(...all[k]).toFixed(3), median: +med(all[k]).toFixed(3), rounds: all[k].map((x) => +x.toFixed(3)) }));
}
process.exit(0);
