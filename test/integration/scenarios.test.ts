/**
 * The labelled scenario set (lab/scenarios.ts) on real kernel traffic through `ctpipe run`:
 * every anomaly kind opens in the window of the traffic made to cause it, nothing opens in the
 * normal periods (background TCP, UDP, ICMP and FTP through the kernel helper), and each anomaly
 * carries the evidence an operator needs: the INVALID burst's source, port and flags; the
 * scanner; the table's maximum; the master and expected tuples of helper anomalies.
 * Then, on the same data: every dashboard's variable, panel and annotation query, with the data
 * source's macros expanded, returns what its panel needs, and the alert rules fire on the lab's
 * anomalies and stay quiet on its normal traffic.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertRules } from '../../dashboards/alerts.js';
import { dashboards } from '../../dashboards/generate.js';
import { evaluateRule, isNumberType, isTimeType, resolveVariables, runDashboard, type Result } from '../../dashboards/run-queries.js';
import { ANOMALY_KINDS } from '../../processor/anomaly/row.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { chromium } from 'playwright-core';
import { BIN } from '../helpers/procs.js';
import { ADDR } from '../../lab/lab.js';
import { runScenarioSet, THIRD_HOST, type ScenarioRun } from '../../lab/scenarios.js';

let out: string;
let r: ScenarioRun;

beforeAll(async () => {
  out = mkdtempSync(path.join(tmpdir(), 'ctpipe-scenarios-'));
  r = await runScenarioSet(out);
}, 900_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const only = (kind: string) => {
  const found = r.anomalies.filter((a) => a.kind === kind);
  expect(found.length, kind).toBe(1);
  return found[0]!;
};
const evidence = (kind: string) => (only(kind).details.evidence as Record<string, string>[])[0]!;

describe('the labelled scenario set (ctpipe run on the lab)', () => {
  it('detects every kind in its scenario, with nothing in the normal periods or outside every window', () => {
    for (const k of ANOMALY_KINDS) expect(r.score.kinds.find((s) => s.kind === k)?.recall, k).toBe(1);
    expect(r.score.normalFalsePositives).toEqual([]);
    expect(r.score.unattributed).toEqual([]);
    expect(r.labels.filter((l) => l.kinds.length === 0).reduce((s, l) => s + l.until - l.start, 0)).toBeGreaterThan(100_000);
  });

  it('writes the ground truth, the anomalies and the report alongside', () => {
    const truth = JSON.parse(readFileSync(path.join(out, 'ground-truth.json'), 'utf8')) as { scenarios: { name: string; kinds: string[] }[] };
    expect(truth.scenarios.map((s) => s.name)).toEqual(r.labels.map((l) => l.name));
    expect(JSON.parse(readFileSync(path.join(out, 'anomalies.json'), 'utf8'))).toHaveLength(r.anomalies.length);
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toContain('| `nat_slipstreaming` | 1 | 1 |');
  });

  it('the INVALID burst: one invalid_spike, closed after it, with the source, port and flags from NFLOG', () => {
    expect(r.facts.invalidPackets).toBeGreaterThan(3000);
    const s = only('invalid_spike');
    expect(s.ended_at).not.toBeNull();
    expect(s.observed).toBeGreaterThan(300); // INVALID/s at the peak
    const d = s.details as { top_sources: { value: string }[]; top_dports: { value: string }[]; top_tcp_flags: { value: string }[]; likely_cause: string };
    expect(d.top_sources[0]!.value).toBe(ADDR.client4);
    expect(d.top_dports[0]!.value).toBe('80');
    expect(d.top_tcp_flags[0]!.value).toBe('FSR');
    expect(d.likely_cause).toBe('invalid_flags');
  });

  it('scans and unanswered connections name their source', () => {
    for (const kind of ['port_scan', 'rej_storm', 'host_scan']) {
      const a = only(kind);
      expect(a.ended_at, kind).not.toBeNull();
      expect((a.details.sources as { src: string }[]).map((x) => x.src), kind).toEqual([ADDR.client4]);
    }
    expect(only('port_scan').observed).toBeGreaterThanOrEqual(100);
    expect(only('host_scan').observed).toBeGreaterThanOrEqual(50);
    for (const a of r.anomalies.filter((x) => x.kind === 'handshake_failures')) expect((a.details.sources as { src: string }[])[0]!.src).toBe(ADDR.client4);
  });

  it('the table filled: table_pressure critical with the lowered maximum, table_drops from the kernel\'s early drops, both closed', () => {
    const p = only('table_pressure');
    expect(p.severity).toBe('critical');
    expect(p.details).toMatchObject({ max_entries: 3000 });
    expect(p.ended_at).not.toBeNull();
    const d = only('table_drops');
    expect(d.observed).toBeGreaterThan(1);
    expect(d.ended_at).not.toBeNull();
  });

  it('helper anomalies carry their master and expected tuples', () => {
    expect(evidence('related_third_host')).toMatchObject({ master: r.facts.thirdHostMaster, helper: 'ftp' });
    expect(evidence('related_third_host').expected).toContain(`-> ${THIRD_HOST}:`);
    expect(evidence('related_privileged_port')).toMatchObject({ master: r.facts.privilegedPortMaster, helper: 'ftp' });
    expect(evidence('related_privileged_port').expected).toMatch(new RegExp(`-> ${ADDR.client4}:1000/6$`));
    expect(evidence('related_orphan')).toMatchObject({ master: 'cut while open' });
    expect(evidence('related_orphan').related).toContain(`-> ${ADDR.server4}:${r.facts.orphanDataPort}/6`);
    expect(only('related_orphan').flow_ids.length).toBe(1);
    expect(evidence('expectation_flood')).toMatchObject({ helper: 'ftp', per_minute: 601, limit: 600 }); // 700 PASV in a minute
    expect(Number((evidence('expectation_unused_burst') as unknown as { in_minute: number }).in_minute)).toBeGreaterThanOrEqual(20);
    expect(evidence('helper_unexpected_port').master).toContain(`-> ${ADDR.server4}:2121/6`);
    expect(evidence('nat_slipstreaming')).toMatchObject({
      helper: 'sip', master: `${ADDR.client4}:${r.facts.sipSourcePort} -> ${ADDR.server4}:5060/6`, expected: `${ADDR.server4}:0 -> ${ADDR.client4}:3306/6`,
    });
  });
});

/** Panels that may be empty on lab data, and why. */
const MAY_BE_EMPTY = new Set([
  'ctpipe-fleet panel 13 "Active anomalies" A', // every lab anomaly has closed by the end
  'ctpipe-pipeline panel 3 "Losses and gaps" A', // the lab loses nothing (test/integration/overflow.test.ts does)
  'ctpipe-pipeline panel 11 "Latest dead letters" A', // ctpipe run has no Kafka records to reject
]);

describe('every dashboard and alert query on the scenario data (chDB)', () => {
  let store: Store;
  let from = 0;
  let to = 0;
  const label = (name: string) => r.labels.find((l) => l.name === name)!;
  beforeAll(async () => {
    store = await openStore({ url: `chdb:${path.join(out, 'chdb')}`, database: 'ctpipe' });
    from = r.labels[0]!.start;
    to = r.labels[r.labels.length - 1]!.until;
  });
  afterAll(async () => {
    await store?.close();
  });
  /** A control connection that has RELATED flows (the lab's FTP sessions). */
  const anFtpMaster = async () => (await store.query<{ master_flow_id: string }>("SELECT master_flow_id FROM ctpipe.flows FINAL WHERE related AND master_flow_id != '' LIMIT 1"))[0]!.master_flow_id;

  function checkShape(x: Result): void {
    const numeric = x.meta.filter((m) => isNumberType(m.type));
    if (!x.panel) return; // variables and annotations: checked by use
    if (x.format === 0) {
      expect(x.meta[0]?.name, x.where).toBe('time');
      expect(isTimeType(x.meta[0]?.type ?? ''), x.where).toBe(true);
      expect(numeric.length, x.where).toBeGreaterThan(0);
      const times = x.rows.map((row) => String(row.time));
      expect(times, x.where).toEqual([...times].sort());
    } else if (x.panel.type === 'stat') {
      expect(numeric.length, x.where).toBeGreaterThan(0);
      expect(x.rows.length, x.where).toBe(1);
    } else {
      expect(x.meta.length, x.where).toBeGreaterThan(0);
    }
  }

  it('runs every variable, panel and annotation query, All or one value selected, at two intervals: each returns what its panel needs', async () => {
    const ftpMaster = await anFtpMaster();
    let checked = 0;
    for (const d of dashboards('ctpipe')) {
      for (const pick of ['all', 'first'] as const) {
        for (const intervalMs of [10_000, 60_000]) {
          const ctx = { fromMs: from, toMs: to, intervalMs };
          const vars = await resolveVariables(store, d, ctx, pick, { flow: ftpMaster });
          const results = await runDashboard(store, d, { ...ctx, vars });
          for (const x of results) {
            checkShape(x);
            if (pick === 'all' && x.panel && !MAY_BE_EMPTY.has(x.where)) expect(x.rows.length, `${x.where} is empty`).toBeGreaterThan(0);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(150);
  });

  it('shows the lab: one host, the INVALID burst, the full table, every anomaly kind, an FTP master with its data flows, the processor', async () => {
    const ctx = { fromMs: from, toMs: to, intervalMs: 10_000 };
    const ftpMaster = await anFtpMaster();
    const all = new Map<string, Result>();
    for (const d of dashboards('ctpipe')) {
      const vars = await resolveVariables(store, d, ctx, 'all', { flow: ftpMaster });
      for (const x of await runDashboard(store, d, { ...ctx, vars })) all.set(x.where, x);
    }
    const get = (where: string) => {
      const x = all.get(where);
      expect(x, where).toBeDefined();
      return x!.rows;
    };
    expect(Number(get('ctpipe-fleet panel 2 "Hosts" A')[0]!.hosts)).toBe(1);
    expect(Math.max(...get('ctpipe-fleet panel 9 "INVALID/s by host" A').map((x) => Number(x.invalid_per_s)))).toBeGreaterThan(300);
    expect(Math.max(...get('ctpipe-fleet panel 10 "Table fill by host" A').map((x) => Number(x.fill)))).toBeGreaterThan(0.9);
    expect(get('ctpipe-fleet panel 12 "Top hosts" A')[0]).toMatchObject({ host: 'lab-fw' });
    expect(get('ctpipe-anomalies panel 9 "By kind" A').map((x) => x.kind).sort()).toEqual([...ANOMALY_KINDS].sort());
    expect(get('ctpipe-host annotation Anomalies').length).toBe(r.anomalies.length);
    const linked = get('ctpipe-flows panel 4 "Selected flow and its related flows" A');
    expect(linked.filter((x) => x.flow_id === ftpMaster).length).toBe(1);
    expect(linked.filter((x) => x.master_flow_id === ftpMaster && x.related).length).toBeGreaterThan(0);
    expect(Math.max(...get('ctpipe-pipeline panel 7 "Processor throughput" A').map((x) => Number(x.records_per_s)))).toBeGreaterThan(0);
    expect(Math.max(...get('ctpipe-pipeline panel 2 "Collector events/s by host" A').map((x) => Number(x.events_per_s)))).toBeGreaterThan(0);
    expect(Number(get('ctpipe-pipeline panel 4 "Data completeness by host" A')[0]!.complete)).toBe(1);
  });

  it('fires each alert rule on its lab anomaly, and not on normal traffic', async () => {
    const rules = Object.fromEntries(alertRules('ctpipe').groups[0]!.rules.map((x) => [x.uid, x]));
    const at = async (uid: string, nowMs: number) => (await evaluateRule(store, rules[uid]!, nowMs)).firing.map((f) => f.labels);
    const normal = label('normal-warmup').until;
    const host = [{ host: 'lab-fw' }];
    expect(await at('ctpipe-invalid-spike', label('invalid-burst').end + 2000)).toEqual(host);
    expect(await at('ctpipe-invalid-spike', normal)).toEqual([]);
    // the table alert fires per network namespace: '' for a collector of one
    expect(await at('ctpipe-table-full', label('table-fill').end)).toEqual([{ host: 'lab-fw', netns: '' }]);
    expect(await at('ctpipe-table-full', normal)).toEqual([]);
    expect(await at('ctpipe-related-flow', label('expect-third-host').end + 2000)).toEqual(host);
    expect(await at('ctpipe-related-flow', normal)).toEqual([]);
    expect(await at('ctpipe-collector-silent', to + 600_000)).toEqual(host);
    expect(await at('ctpipe-collector-silent', to)).toEqual([]);
    for (const t of [normal, label('table-fill').end, to]) {
      expect(await at('ctpipe-collector-losing', t)).toEqual([]);
      expect(await at('ctpipe-processor-lag', t)).toEqual([]);
    }
  });
});

describe('ctpipe report --html on the scenario data, opened in headless Chromium', () => {
  it('renders every chart with the lab\'s data, self-contained, without errors', async () => {
    const chromiumPath = '/usr/bin/chromium';
    expect(existsSync(chromiumPath), 'Debian chromium is needed (apt-get install chromium)').toBe(true);
    const file = path.join(out, 'report.html');
    const from = new Date(r.labels[0]!.start).toISOString();
    const to = new Date(r.labels[r.labels.length - 1]!.until).toISOString();
    const run = spawnSync(process.execPath, [BIN, 'report', '--html', file, '--clickhouse-url', `chdb:${path.join(out, 'chdb')}`, '--from', from, '--to', to], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/panels from 4 dashboards/);
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script|src="http|href="http|@import/); // nothing to fetch, nothing to run
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      await page.goto(`file://${file}`);
      const charts = page.locator('section[data-panel-type="timeseries"]');
      expect(await charts.count()).toBeGreaterThan(10);
      // every time series panel drew at least one line through several points, and its box has a size
      const mayBeEmpty = [...MAY_BE_EMPTY].map((w) => /"(.+)"/.exec(w)![1]);
      for (const section of await charts.all()) {
        const title = await section.locator('h3').innerText();
        if (mayBeEmpty.includes(title)) continue;
        const lines = await section.locator('path.series').evaluateAll((ps) => ps.map((p) => (p.getAttribute('d') ?? '').split('L').length));
        expect(Math.max(0, ...lines), title).toBeGreaterThan(1);
        const box = await section.locator('svg.chart').first().boundingBox();
        expect(box?.width, title).toBeGreaterThan(300);
      }
      const hosts = page.locator('section[data-panel-type="stat"]', { hasText: 'Hosts' }).first().locator('.stat');
      expect(await hosts.innerText()).toBe('1');
      expect(await page.locator('section', { hasText: 'By kind' }).locator('tbody tr').count()).toBe(ANOMALY_KINDS.length);
      expect(errors).toEqual([]);
      await page.screenshot({ path: path.join(out, 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
