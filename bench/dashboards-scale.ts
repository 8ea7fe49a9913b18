/**
 * Dashboards at fleet scale: every variable, panel and annotation query of every dashboard, and
 * `ctpipe report --html`, on a synthetic fleet in chDB (bench/synthetic-fleet.ts; by default 1,000
 * hosts and 100,000,000 lifecycles over 24 h). Goals: each fleet dashboard query <= 1 s, the
 * report <= 10 s.
 *
 * Queries run as the tests and `ctpipe report` run them (dashboards/run-queries.ts), over the last
 * 24 h and 6 h of the data, with the variables at "All" and with the host variable at the busiest
 * host (fw-0001), and for the Flow explorer with an address and with a flow id in its boxes; the
 * interval is the report's (the range over 200 points). Each query: one warm-up
 * (which also counts the rows it read, from chDB's SelectedRows profile event), then the median of
 * `runs` timed runs; a query over 5 s in the warm-up is timed once more only.
 *
 * `--dir DIR` keeps the store (DIR/chdb, with DIR/fleet.json) so that a later run reuses it; the
 * schema's new migrations are then applied to it (and timed) before the measurement.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../common/errors.js';
import { packageRoot } from '../common/paths.js';
import { dashboards } from '../dashboards/generate.js';
import { resolveVariables, runDashboard } from '../dashboards/run-queries.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import type { ColumnMeta, Store } from '../processor/store.js';
import { generateFleet, type Fleet } from './synthetic-fleet.js';

const DB = 'ctpipe';
const GOAL_S = 1;
const REPORT_GOAL_S = 10;
const SLOW_S = 5;
const BUSIEST_HOST = 'fw-0001';

export interface ScaleOptions {
  hosts: number;
  rows: number;
  hours: number;
  dir?: string;
  runs: number;
  reportRuns: number;
  /** Names the results file (e.g. "before"). */
  label?: string;
  /** Only these dashboards (uids), e.g. while working on one. */
  only?: string[];
}

export interface QueryTiming {
  dashboard: string;
  query: string;
  range: string;
  vars: Pick;
  seconds: number;
  runs: number[];
  rowsRead?: number;
  rowsOut: number;
  verdict: string;
  error?: string;
}

export interface TableSize {
  table: string;
  rows: number;
  parts: number;
  bytes: number;
}

export interface DashboardsScaleResult {
  label?: string;
  options: ScaleOptions;
  fleet: Fleet;
  loadBefore: number[];
  loadAfter: number[];
  generationSeconds?: number;
  migrationSeconds: number;
  mergeWaitSeconds: number;
  tables: TableSize[];
  queries: QueryTiming[];
  report?: { seconds: number; runs: number[]; command: string; output: string; verdict: string; error?: string };
}

export function parseScaleArgs(argv: string[]): ScaleOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string' }, hosts: { type: 'string' }, rows: { type: 'string' }, hours: { type: 'string' },
      dir: { type: 'string' }, runs: { type: 'string' }, 'report-runs': { type: 'string' }, label: { type: 'string' }, only: { type: 'string' },
    },
  });
  const scale = Number(values.scale ?? 1);
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v.replace(/_/g, '')));
  return {
    hosts: num(values.hosts, Math.max(10, Math.round(1000 * scale))),
    rows: num(values.rows, Math.round(100_000_000 * scale)),
    hours: num(values.hours, 24),
    dir: values.dir,
    runs: num(values.runs, 3),
    reportRuns: num(values['report-runs'], 3),
    label: values.label,
    only: values.only?.split(','),
  };
}

/**
 * The variables of a run: all at "All"; the host at the busiest; for the Flow explorer also an
 * address (a client of the busiest host) and a flow id (an FTP control connection) in its boxes.
 */
type Pick = 'all' | 'host' | 'address' | 'flow';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

/** Rows chDB has read from tables so far, process-wide (the probe itself reads ~100 rows of system.events). */
async function selectedRows(store: Store): Promise<number> {
  const [r] = await store.query<{ v: string }>("SELECT value AS v FROM system.events WHERE event = 'SelectedRows'");
  return Number(r?.v ?? 0);
}

/** Waits for the merges and mutations under way (a migration's MATERIALIZE INDEX is one). */
async function waitForMerges(store: Store, log: (s: string) => void, maxS = 3600): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const [m] = await store.query<{ merges: string; mutations: string }>(`SELECT
      (SELECT count() FROM system.merges WHERE database = '${DB}') AS merges,
      (SELECT count() FROM system.mutations WHERE database = '${DB}' AND NOT is_done) AS mutations`);
    const s = (performance.now() - t0) / 1000;
    if ((Number(m?.merges) === 0 && Number(m?.mutations) === 0) || s > maxS) return s;
    log(`waiting for ${m?.merges} merges and ${m?.mutations} mutations (${s.toFixed(0)} s)`);
    await new Promise((r) => setTimeout(r, 15_000));
  }
}

async function tableSizes(store: Store): Promise<TableSize[]> {
  const rows = await store.query<{ table: string; rows: string; parts: string; bytes: string }>(
    `SELECT table, sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes FROM system.parts
     WHERE database = '${DB}' AND active GROUP BY table ORDER BY sum(bytes_on_disk) DESC`);
  return rows.map((r) => ({ table: r.table, rows: Number(r.rows), parts: Number(r.parts), bytes: Number(r.bytes) }));
}

/**
 * A client for runDashboard that times each query. In `probe` mode it also counts the rows each
 * query read; afterwards it skips (replays) the queries that were slow in the probe.
 */
class TimingClient {
  readonly times: number[] = [];
  readonly rowsRead: (number | undefined)[] = [];
  readonly rowsOut: number[] = [];
  readonly errors: (string | undefined)[] = [];
  constructor(private readonly store: Store, private readonly probe: boolean, private readonly replay: Map<string, { meta: ColumnMeta[]; rows: Record<string, unknown>[] }>) {}

  async queryWithMeta(sql: string): Promise<{ meta: ColumnMeta[]; rows: Record<string, unknown>[] }> {
    const cached = this.replay.get(sql);
    if (cached && !this.probe) {
      this.times.push(NaN);
      return cached;
    }
    const before = this.probe ? await selectedRows(this.store) : 0;
    const t0 = performance.now();
    let r: { meta: ColumnMeta[]; rows: Record<string, unknown>[] };
    try {
      r = await this.store.queryWithMeta(sql);
      this.errors.push(undefined);
    } catch (e) {
      r = { meta: [{ name: 'error', type: 'String' }], rows: [] };
      this.errors.push(errorMessage(e).slice(0, 300));
    }
    const s = (performance.now() - t0) / 1000;
    this.times.push(s);
    this.rowsOut.push(r.rows.length);
    if (this.probe) {
      this.rowsRead.push(Math.max(0, (await selectedRows(this.store)) - before - 100));
      if (s > SLOW_S) this.replay.set(sql, r);
    }
    return r;
  }
}

async function measure(store: Store, f: Fleet, o: ScaleOptions, log: (s: string) => void): Promise<QueryTiming[]> {
  const out: QueryTiming[] = [];
  // the newest of each kind, so that every run asks for the same ones
  const [text] = await store.query<{ address: string; flow: string }>(`SELECT
      (SELECT orig_src_text FROM ${DB}.flows WHERE host = '${BUSIEST_HOST}' AND first_seen >= fromUnixTimestamp64Milli(${f.toMs - 3_600_000}) ORDER BY first_seen DESC LIMIT 1) AS address,
      (SELECT flow_id FROM ${DB}.flows WHERE helper = 'ftp' AND first_seen >= fromUnixTimestamp64Milli(${f.toMs - 3_600_000}) ORDER BY first_seen DESC LIMIT 1) AS flow`);
  log(`Flow explorer boxes: address ${text!.address}, flow ${text!.flow}`);
  for (const d of dashboards(DB)) {
    if (o.only && !o.only.includes(d.uid!)) continue;
    const names = new Set((d.templating?.list ?? []).map((v) => v.name));
    const picks: Pick[] = d.templating?.list?.some((v) => v.name === 'host' && v.multi) ? ['all', 'host'] : ['all'];
    if (names.has('address') && names.has('flow')) picks.push('address', 'flow');
    for (const hours of [24, 6]) {
      const ctx = { fromMs: f.toMs - hours * 3_600_000, toMs: f.toMs, intervalMs: Math.max(1000, Math.round((hours * 3_600_000) / 200 / 1000) * 1000) };
      for (const pick of picks) {
        const vars = await resolveVariables(store, d, ctx, 'all', { address: pick === 'address' ? text!.address : '', flow: pick === 'flow' ? text!.flow : '' });
        if (pick === 'host') vars.host = { values: [BUSIEST_HOST] };
        const replay = new Map<string, { meta: ColumnMeta[]; rows: Record<string, unknown>[] }>();
        const probe = new TimingClient(store, true, replay);
        const results = await runDashboard(probe, d, { ...ctx, vars });
        const timed: TimingClient[] = [];
        for (let i = 0; i < o.runs; i++) {
          const c = new TimingClient(store, false, replay);
          await runDashboard(c, d, { ...ctx, vars });
          timed.push(c);
        }
        results.forEach((r, i) => {
          const runs = timed.map((c) => c.times[i]!).filter((t) => !Number.isNaN(t));
          const all = runs.length ? runs : [probe.times[i]!];
          const seconds = median(all);
          const error = probe.errors[i];
          const t: QueryTiming = {
            dashboard: d.uid!, query: r.where.replace(`${d.uid!} `, ''), range: `${hours}h`, vars: pick, seconds, runs: all,
            rowsRead: probe.rowsRead[i], rowsOut: probe.rowsOut[i]!, verdict: error ? 'ERROR' : seconds <= GOAL_S ? 'ok' : 'MISS', error,
          };
          out.push(t);
          log(row(t));
        });
      }
    }
  }
  return out;
}

const fmtRows = (n: number | undefined) => (n === undefined ? '' : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(n));
const row = (t: QueryTiming) => `${t.dashboard.padEnd(17)} ${t.query.slice(0, 58).padEnd(58)} ${t.range.padStart(3)} ${t.vars.padEnd(7)} ${t.seconds.toFixed(3).padStart(7)} s ${fmtRows(t.rowsRead).padStart(7)} read ${fmtRows(t.rowsOut).padStart(6)} out  ${t.verdict}${t.error ? `: ${t.error.slice(0, 120)}` : ''}`;

function runReport(dir: string, f: Fleet, runs: number, log: (s: string) => void): DashboardsScaleResult['report'] {
  const file = path.join(dir, 'report.html');
  const args = ['bin/ctpipe.js', 'report', '--html', file, '--clickhouse-url', `chdb:${path.join(dir, 'chdb')}`, '--to', new Date(f.toMs).toISOString(), '--since', `${f.hours}h`];
  const times: number[] = [];
  let output = '';
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: packageRoot(), encoding: 'utf8' });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== 0) {
      const error = `exit ${r.status}: ${r.stderr.trim().slice(0, 2000)}`;
      log(`report run ${i + 1}: failed after ${s.toFixed(2)} s: ${error}`);
      return { seconds: s, runs: [s], command: `node ${args.join(' ')}`, output: r.stdout.trim(), verdict: 'FAILED', error };
    }
    output = r.stdout.trim();
    times.push(s);
    log(`report run ${i + 1}: ${s.toFixed(2)} s, ${statSync(file).size.toLocaleString()} bytes: ${output}`);
  }
  const seconds = median(times);
  return { seconds, runs: times, command: `node ${args.join(' ')}`, output, verdict: seconds <= REPORT_GOAL_S ? 'ok' : 'MISS' };
}

export async function runDashboardsScale(argv: string[], log: (s: string) => void = console.log): Promise<DashboardsScaleResult> {
  const o = parseScaleArgs(argv);
  const loadBefore = os.loadavg();
  log(`dashboards-scale: ${o.hosts.toLocaleString()} hosts, ${o.rows.toLocaleString()} lifecycles over ${o.hours} h; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  const dir = o.dir ?? mkdtempSync(path.join(os.tmpdir(), 'ctpipe-dash-scale-'));
  mkdirSync(dir, { recursive: true });
  const meta = path.join(dir, 'fleet.json');
  let fleet: Fleet | undefined = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as Fleet) : undefined;
  if (fleet && (fleet.hosts !== o.hosts || fleet.rows !== o.rows || fleet.hours !== o.hours)) {
    throw new Error(`${dir} holds another fleet (${JSON.stringify(fleet)}): give the same sizes or another --dir`);
  }
  const store = await openStore({ url: `chdb:${path.join(dir, 'chdb')}`, database: DB });
  let result: DashboardsScaleResult;
  try {
    const ctx = { db: DB, flowsTtlDays: 30, eventsTtlDays: 3 };
    let generationSeconds: number | undefined;
    const m0 = performance.now();
    const m = await migrate(store, ctx);
    const migrationSeconds = (performance.now() - m0) / 1000;
    log(`migrations ${m.applied.join(', ') || 'none'} applied in ${migrationSeconds.toFixed(1)} s`);
    if (!fleet) {
      const g0 = performance.now();
      fleet = await generateFleet(store, { hosts: o.hosts, rows: o.rows, hours: o.hours }, log);
      generationSeconds = (performance.now() - g0) / 1000;
      writeFileSync(meta, `${JSON.stringify(fleet)}\n`);
      log(`generated in ${generationSeconds.toFixed(0)} s`);
    } else {
      log(`reusing the fleet in ${dir} (${new Date(fleet.fromMs).toISOString()} to ${new Date(fleet.toMs).toISOString()})`);
    }
    const mergeWaitSeconds = await waitForMerges(store, log);
    const tables = await tableSizes(store);
    for (const t of tables) log(`${t.table.padEnd(22)} ${t.rows.toLocaleString().padStart(13)} rows ${String(t.parts).padStart(4)} parts ${(t.bytes / 2 ** 20).toFixed(1).padStart(9)} MiB`);
    log(`${'dashboard'.padEnd(17)} ${'query'.padEnd(58)} rng vars    ${'median'.padStart(9)} ${'rows read'.padStart(12)} ${'rows out'.padStart(10)}  verdict (goal ${GOAL_S} s)`);
    const queries = await measure(store, fleet, o, log);
    result = { label: o.label, options: o, fleet, loadBefore, loadAfter: [], generationSeconds, migrationSeconds, mergeWaitSeconds, tables, queries };
  } finally {
    await store.close(); // the report opens the directory in its own process: one process at a time
  }
  if (o.reportRuns > 0) result.report = runReport(dir, fleet, o.reportRuns, log);
  result.loadAfter = os.loadavg();
  const misses = result.queries.filter((q) => q.verdict !== 'ok');
  log(`${result.queries.length} queries, ${misses.length} over ${GOAL_S} s or failed${result.report ? `; report ${result.report.seconds.toFixed(1)} s (${result.report.verdict})` : ''}; load after ${result.loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
  if (!o.dir) rmSync(dir, { recursive: true, force: true });
  return result;
}
