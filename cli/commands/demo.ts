/**
 * `ctpipe demo`: the whole pipeline on real kernel traffic in a minute and a half. It builds the
 * lab's three network namespaces (client, firewall, server; lab/lab.ts), runs `ctpipe run`'s
 * collector and processor in this process on the firewall's conntrack into an embedded store
 * under --out, plays a scripted mix of traffic (lab/demo-script.ts), prints what the store
 * then holds and writes the HTML report. The namespaces are removed whatever happens: on return,
 * on error, on Ctrl-C (the lab's exit hook).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CtpipeError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { DEMO_NFLOG_GROUP, DEMO_STEPS, demoBackground, prepareDemoLab } from '../../lab/demo-script.js';
import { which } from '../../lab/exec.js';
import { Lab } from '../../lab/lab.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { summarize, summaryText } from '../demo-summary.js';
import { connectStore } from '../store.js';
import { runReport } from './report.js';
import { startRun, type LocalRun } from './run.js';

export const demoSpec: CommandSpec = {
  name: 'demo',
  summary: 'real traffic through a lab of network namespaces into the embedded store: a summary and an HTML report (root)',
  usage: 'ctpipe demo [--out ctpipe-demo]',
  parts: ['log'],
  own: {
    out: { type: 'string', description: 'directory for the embedded store (DIR/chdb), summary.json and report.html (default ctpipe-demo)' },
  },
};

const HOST = 'demo-fw';
const TOOLS: [string, string][] = [['ip', 'iproute2'], ['nft', 'nftables'], ['conntrack', 'conntrack'], ['hping3', 'hping3'], ['ping', 'iputils-ping']];

/** Root and the lab's programs, checked before anything is built. */
export function demoPrerequisites(uid = process.getuid?.(), find: (tool: string) => string | undefined = which): void {
  if (uid !== 0) {
    throw new CtpipeError('NEEDS_ROOT', 'ctpipe demo builds network namespaces, veth links and an nftables ruleset, which needs root. ' +
      'Run it as root: sudo ./bin/ctpipe.js demo (nothing outside the namespaces it creates is changed).');
  }
  const missing = TOOLS.filter(([t]) => !find(t));
  if (missing.length) {
    throw new CtpipeError('TOOL_MISSING', `ctpipe demo needs ${missing.map(([t]) => t).join(', ')}: ` +
      `apt-get install ${missing.map(([, p]) => p).join(' ')} python3-pyftpdlib`);
  }
}

export async function runDemo(cfg: Config, own: Record<string, unknown>): Promise<number> {
  demoPrerequisites();
  const out = path.resolve((own.out as string | undefined) ?? 'ctpipe-demo');
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  const say = (line: string) => process.stderr.write(`[${String(Math.round((Date.now() - t0) / 1000)).padStart(3)}s] ${line}\n`);
  // Ctrl-C or kill: leave through process.exit so the lab's exit hook removes the namespaces.
  const bye = () => process.exit(130);
  process.once('SIGINT', bye).once('SIGTERM', bye);

  say('building the lab: client, firewall and server network namespaces with veth links');
  const lab = await Lab.create({ nflogGroup: DEMO_NFLOG_GROUP });
  const demoCfg: Config = structuredClone(cfg);
  Object.assign(demoCfg, { host: HOST, log_level: cfg.log_level === 'info' ? 'warn' : cfg.log_level });
  Object.assign(demoCfg.collect, { netns: lab.netnsPath('fw'), stats_interval: 1000, nflog_group: DEMO_NFLOG_GROUP, set_sysctls: true, restore_sysctls: true });
  Object.assign(demoCfg.clickhouse, { url: `chdb:${path.join(out, 'chdb')}` });
  // the lab's timeouts are 5 s and the table is dumped every 5 s: DESTROYs come within 10 s of them
  Object.assign(demoCfg.process, { flush: 300, grace: 10_000 });
  Object.assign(demoCfg.detect, { scan_window: 5000, cooldown: 30_000, related_quiet: 15_000 });
  Object.assign(demoCfg.metrics, { enabled: false });
  let local: LocalRun | undefined;
  const stop = { now: false };
  let background: Promise<void> | undefined;
  let startMs: number;
  try {
    await prepareDemoLab(lab);
    say(`starting the pipeline: collector on the firewall's conntrack, processor, embedded ClickHouse at ${out}/chdb`);
    local = await startRun(demoCfg, createLogger(demoCfg.log_level, 'ctpipe-demo'), false); // rows for what is still open: the lab goes away
    startMs = Date.now();
    background = demoBackground(lab, stop);
    for (const [i, step] of DEMO_STEPS.entries()) {
      say(`${i + 1}/${DEMO_STEPS.length} ${step.title}`);
      await step.run(lab);
      const p = local.progress();
      say(`     ${p.events.toLocaleString('en')} events collected, ${p.rows.toLocaleString('en')} rows written, ${p.open} flows open`);
    }
    stop.now = true;
    await background;
    say('stopping the pipeline: writing what is left');
    await local.stop('demo finished');
  } finally {
    stop.now = true;
    await background?.catch(() => undefined);
    await local?.stop('demo stopped').catch(() => undefined);
    await lab.destroy();
    say(`lab namespaces removed: ${Object.values(lab.ns).join(', ')}`);
  }

  const endMs = Date.now();
  const store = await connectStore(demoCfg);
  let summary;
  try {
    summary = await summarize(store, demoCfg.clickhouse.database, HOST, startMs, endMs);
  } finally {
    await store.close();
  }
  writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const html = path.join(out, 'report.html');
  process.stdout.write(summaryText(summary));
  process.stdout.write('\n');
  await runReport(demoCfg, { html, from: new Date(startMs).toISOString(), to: new Date(endMs).toISOString(), 'report-host': HOST });
  process.stdout.write(`\nOpen ${html} in a browser. Query the demo's data with:\n` +
    `  ctpipe query --clickhouse-url chdb:${path.join(out, 'chdb')} --example related-flows\n`);
  return 0;
}
