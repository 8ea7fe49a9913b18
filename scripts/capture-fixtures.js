// Captures ctnetlink fixtures from the lab (needs root): npm run capture-fixtures
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { captureLab } from '../dist/lab/capture.js';

mkdirSync('test/fixtures/netlink', { recursive: true });
const out = `test/fixtures/netlink/lab-${os.release().split('-')[0]}.json`;
const f = await captureLab(out);
console.log(`${out}: ${f.datagrams.length} datagrams from kernel ${f.kernel}`);
process.exit(0);
