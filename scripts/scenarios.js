// The labelled anomaly scenario set in the lab (needs root): npm run scenarios [-- OUT_DIR]
// Writes OUT_DIR/ground-truth.json, anomalies.json and report.md (default scenarios-out/), and
// the run as `ctpipe report --html` shows it: report.html, report.png (with Debian chromium).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runScenarioSet } from '../dist/lab/scenarios.js';

// Ctrl-C: exit through process.exit, so the lab's exit hook removes its namespaces
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const out = process.argv[2] ?? 'scenarios-out';
const r = await runScenarioSet(out, (line) => console.log(line));

// The same data as a report (ctpipe report --html), and its picture when Chromium is installed
const from = new Date(r.labels[0].start).toISOString();
const to = new Date(r.labels[r.labels.length - 1].until).toISOString();
execFileSync(process.execPath, ['bin/ctpipe.js', 'report', '--html', `${out}/report.html`, '--clickhouse-url', `chdb:${out}/chdb`, '--from', from, '--to', to], { stdio: 'inherit' });
if (existsSync('/usr/bin/chromium')) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  await page.goto(`file://${path.resolve(out, 'report.html')}`);
  await page.screenshot({ path: `${out}/report.png` });
  await browser.close();
}
console.log(`\n${r.anomalies.length} anomalies; the report: ${out}/report.md\n`);
for (const k of r.score.kinds) console.log(`${k.kind.padEnd(26)} recall ${k.recall === null ? 'n/a' : k.recall.toFixed(2)}  precision ${k.precision === null ? 'n/a' : k.precision.toFixed(2)}`);
process.exit(0);
