import { runStorms } from '../dist/bench/storm.js';
const r = await runStorms(Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 61000));
console.table(r);
process.exit(0);
