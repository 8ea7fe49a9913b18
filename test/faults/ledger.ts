/**
 * The reliability suite's record of each fault: what was injected and the counts that prove the
 * promise (sent, received, stored, duplicated, lost) with the recovery time. Each test writes its
 * row to $FAULT_SUITE_OUT (default: the OS temp dir) as fault-NAME.json;
 * `node scripts/reliability-table.js DIR` turns a full run's rows into docs/RELIABILITY.md's table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** `npm run test:faults` sets FAULT_SUITE=full: longer outages, more load; `npm test` runs the bounded form. */
export const FULL = process.env.FAULT_SUITE === 'full';
export const scale = <T>(bounded: T, full: T): T => (FULL ? full : bounded);

export interface LedgerRow {
  fault: string;
  injected: string;
  sent: number;
  received: number;
  stored: number | null;
  duplicated: number;
  lost: number;
  /** Lost and reported as lost (a loss record), as the promise allows where a bound is hit. */
  reported_lost?: number;
  recovery_s: number | null;
  notes?: string;
}

export function writeLedger(row: LedgerRow): string {
  const dir = process.env.FAULT_SUITE_OUT ?? path.join(tmpdir(), 'ctpipe-faults');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fault-${row.fault.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.json`);
  writeFileSync(file, `${JSON.stringify({ ...row, mode: FULL ? 'full' : 'bounded', at: new Date().toISOString() }, null, 2)}\n`);
  return file;
}
