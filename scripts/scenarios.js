// The labelled anomaly scenario set in the lab (needs root): npm run scenarios [-- OUT_DIR]
// Writes OUT_DIR/ground-truth.json, anomalies.json and report.md (default scenarios-out/).
import { runScenarioSet } from '../dist/test/lab/scenarios.js';

// Ctrl-C: exit through process.exit, so the lab's exit hook removes its namespaces
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const out = process.argv[2] ?? 'scenarios-out';
const r = await runScenarioSet(out, (line) => console.log(line));
console.log(`\n${r.anomalies.length} anomalies; the report: ${out}/report.md\n`);
for (const k of r.score.kinds) console.log(`${k.kind.padEnd(26)} recall ${k.recall === null ? 'n/a' : k.recall.toFixed(2)}  precision ${k.precision === null ? 'n/a' : k.precision.toFixed(2)}`);
process.exit(0);
