// The fault suite's ledger rows (test/faults/ledger.ts) as the table in docs/RELIABILITY.md:
//   node scripts/reliability-table.js DIR     (npm run test:faults writes DIR = faults-out)
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'faults-out';
const rows = readdirSync(dir).filter((f) => /^fault-.*\.json$/.test(f)).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')));
const cell = (v) => (v === null || v === undefined ? 'n/a' : String(v));
console.log('| fault | injected | sent | received | stored | duplicated | lost | recovery (s) | notes |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows.sort((a, b) => a.fault.localeCompare(b.fault))) {
  const lost = r.reported_lost ? `${r.lost} silently; ${r.reported_lost} reported` : String(r.lost);
  console.log(`| ${r.fault} | ${r.injected} | ${r.sent} | ${r.received} | ${cell(r.stored)} | ${r.duplicated} | ${lost} | ${r.recovery_s === null ? 'n/a' : r.recovery_s.toFixed(1)} | ${cell(r.notes)} (${r.mode}, ${r.at.slice(0, 10)}) |`);
}
