/**
 * What `ctpipe run` could not store when it was stopped without waiting for ClickHouse (a second
 * signal while inserts failed): reported as a `loss` row in pipeline_health, so the gap is counted
 * and seen, never silent. The store that refused the rows usually refuses this row too, so it is
 * also kept in a file in the embedded store's directory, and the next start stores it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { healthRow } from './clickhouse/rows.js';
import { TableRows } from './clickhouse/table-rows.js';
import type { HealthEvent } from './lifecycle/engine.js';
import type { Store } from './store.js';

export interface Unstored {
  records: number;
  rows: number;
  first_seq: number;
  last_seq: number;
}

const FILE = 'ctpipe-unreported-loss.json';
const RESERVED = 'ctpipe-loss-report.reserved';
const RESERVED_BYTES = 4096;
const reservedOf = (file: string) => join(file, '..', RESERVED);

/** At start, while there is room: the space a report of this run's stop may need on a full disk. */
export function reserveLossReport(file: string | undefined, log: Logger): void {
  if (!file) return;
  try {
    writeFileSync(reservedOf(file), ' '.repeat(RESERVED_BYTES), { mode: 0o600 });
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'could not reserve the space of a loss report; a stop on a full disk can then report its loss in the log only');
  }
}

/** Writes `text` into the reserved file in place (no new blocks), then gives it the name `file`. */
function writeReserved(file: string, text: string): void {
  const buf = Buffer.from(text.padEnd(RESERVED_BYTES, ' '));
  if (buf.length > RESERVED_BYTES) throw new Error('the report does not fit its reserved space');
  const fd = openSync(reservedOf(file), 'r+');
  try {
    writeSync(fd, buf, 0, buf.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(reservedOf(file), file);
}

/** The file of an embedded store (`chdb:PATH`) that keeps a loss until a start stores it; none for a server. */
export function pendingLossFile(url: string): string | undefined {
  return url.startsWith('chdb:') ? join(url.slice(5) || './data', FILE) : undefined;
}

export function unstoredEvent(host: string, run: string, u: Unstored, why: string): HealthEvent {
  const ms = Date.now();
  return {
    host, run, kind: 'loss', at: { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 }, count: u.records, first_seq: u.first_seq, last_seq: u.last_seq,
    detail: `stop: ${u.records} records (${u.rows} rows) not stored, ${why}`,
  };
}

async function insertHealth(store: Store, events: HealthEvent[], timeoutMs: number): Promise<void> {
  const rows = TableRows.of('pipeline_health', events.map(healthRow));
  const token = `unstored:${events.map((e) => `${e.run}:${e.first_seq}-${e.last_seq}`).join(',')}`;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.insert('pipeline_health', rows, token),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reports a stop's unstored records: the log (always), pipeline_health (one try, bounded), and the
 * pending file when that try fails on an embedded store. Resolves to where it was reported.
 */
export async function reportUnstored(store: Store, event: HealthEvent, file: string | undefined, log: Logger): Promise<'stored' | 'file' | 'log'> {
  log.error({ code: 'STORE_UNAVAILABLE', unstored_records: event.count, first_seq: event.first_seq, last_seq: event.last_seq },
    `stopped with ${event.detail.replace(/^stop: /, '')}: they are lost; the gap is reported as a loss in pipeline_health`);
  try {
    await insertHealth(store, [event], 3000);
    return 'stored';
  } catch (e) {
    if (!file) {
      log.error({ err: errorMessage(e) }, 'the loss could not be written to pipeline_health either: this log is its only report');
      return 'log';
    }
    try {
      const pending = readPending(file) ?? [];
      const text = JSON.stringify([...pending, event]);
      if (existsSync(reservedOf(file))) writeReserved(file, text);
      else writeFileSync(file, text, { mode: 0o600 });
    } catch (w) {
      log.error({ err: errorMessage(e), file, write_err: errorMessage(w) }, 'the loss could not be written to pipeline_health nor kept for the next start: this log is its only report');
      return 'log';
    }
    log.warn({ err: errorMessage(e), file }, 'the loss could not be written to pipeline_health now; the next start stores it');
    return 'file';
  }
}

/** The losses kept in `file` (none when it does not exist); throws when it is not what this module writes. */
function readPending(file: string): HealthEvent[] | undefined {
  if (!existsSync(file)) return undefined;
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed) || !parsed.every(isLossEvent)) throw new Error('not a list of loss events');
  return parsed;
}

function isLossEvent(e: unknown): e is HealthEvent {
  const h = e as Partial<HealthEvent> | null;
  const n = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return !!h && typeof h === 'object' && h.kind === 'loss' && typeof h.host === 'string' && typeof h.run === 'string' && h.host.length < 256 &&
    h.run.length < 256 && typeof h.detail === 'string' && h.detail.length < 1024 && n(h.count) && n(h.first_seq) && n(h.last_seq) &&
    !!h.at && n(h.at.sec) && n(h.at.nsec);
}

/** At start: stores the losses a previous stop could not, and removes their file. */
export async function storePendingLosses(store: Store, file: string | undefined, log: Logger): Promise<number> {
  if (!file || !existsSync(file)) return 0;
  let events: HealthEvent[];
  try {
    events = readPending(file) ?? [];
  } catch (e) {
    log.warn({ file, err: errorMessage(e) }, 'the file of an earlier stop\'s unreported loss is unreadable; it is left for inspection');
    return 0;
  }
  try {
    await insertHealth(store, events, 30_000);
  } catch (e) {
    log.warn({ file, err: errorMessage(e) }, 'the loss an earlier stop could not report is still not stored; the next start tries again');
    return 0;
  }
  rmSync(file);
  log.warn({ losses: events.length, records: events.reduce((n, e) => n + e.count, 0) }, 'stored the loss an earlier stop could not report in pipeline_health');
  return events.length;
}
