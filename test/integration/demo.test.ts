/**
 * `ctpipe demo` end to end, as a user runs it (root): its summary names the lab's FTP data flows as
 * related to their control connection and the INVALID burst as an anomaly, its HTML report renders
 * in headless Chromium, and it leaves no network namespace behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoSummary } from '../../cli/demo-summary.js';
import { INVALID_PACKETS, SCAN_PORTS } from '../../lab/demo-script.js';
import { ADDR } from '../../lab/lab.js';
import { BIN } from '../helpers/procs.js';

const netns = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith('ctp-')).map((l) => l.split(' ')[0]!);

let out: string;
let stdout = '';
let stderr = '';
let code: number | null;
let before: string[];

beforeAll(async () => {
  expect(process.getuid?.(), 'ctpipe demo needs root').toBe(0);
  out = mkdtempSync(path.join(tmpdir(), 'ctpipe-demo-'));
  before = netns();
  const p = spawn(process.execPath, [BIN, 'demo', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  code = await new Promise((r) => p.on('exit', r));
}, 300_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('ctpipe demo', () => {
  it('shows its progress step by step and removes its namespaces', () => {
    expect(code, `${stderr}\n${stdout}`).toBe(0);
    expect(stderr).toMatch(/building the lab/);
    for (let i = 1; i <= 9; i++) expect(stderr).toMatch(new RegExp(`\\] ${i}/9 `));
    // its own, by name: other test files make and remove namespaces meanwhile
    const mine = /lab namespaces removed: (.+)/.exec(stderr)?.[1]?.trim().split(', ') ?? [];
    expect(mine).toHaveLength(3);
    expect(mine.every((n) => n.startsWith('ctp-') && !before.includes(n))).toBe(true);
    expect(netns().filter((n) => mine.includes(n))).toEqual([]);
  });

  it('lists the FTP data flows as related to their control connection', () => {
    const related = stdout.slice(stdout.indexOf('Related flows and their master connection')).split('\n\n')[0]!.split('\n').slice(1);
    const ftp = related.filter((l) => new RegExp(`related to  ${ADDR.client4}:\\d+ -> ${ADDR.server4}:21 \\(helper ftp\\)$`).test(l));
    expect(ftp.length).toBe(4); // two passive (client -> server), two active (server -> client) transfers
    expect(ftp.filter((l) => l.trim().startsWith(`${ADDR.client4}:`)).length).toBe(2);
    expect(ftp.filter((l) => l.trim().startsWith(`${ADDR.server4}:`)).length).toBe(2);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as DemoSummary;
    // each data connection points at its own control connection
    expect(new Set(summary.related.map((r) => r.master)).size).toBe(4);
  });

  it('reports the INVALID burst and the scan as anomalies, with their evidence', () => {
    const anomalies = stdout.slice(stdout.indexOf('\nAnomalies\n')).split('\n').slice(2).filter((l) => l.startsWith('  '));
    const spike = anomalies.filter((l) => l.trim().startsWith('invalid_spike'));
    expect(spike.length).toBe(1);
    expect(spike[0]).toMatch(new RegExp(`top source ${ADDR.client4.replace(/\./g, '\\.')} \\(\\d+ packets\\), top port 80 .*flags FSR`));
    expect(anomalies.some((l) => l.trim().startsWith('port_scan') && l.includes(`source ${ADDR.client4}`))).toBe(true);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as DemoSummary;
    expect(summary.invalidPackets).toBeGreaterThanOrEqual(INVALID_PACKETS);
    expect(summary.byConnState.find((r) => r.proto === 'tcp' && r.conn_state === 'REJ')?.flows).toBeGreaterThanOrEqual(SCAN_PORTS + 5);
    for (const proto of ['tcp', 'udp', 'icmp', 'icmpv6']) expect(summary.byConnState.some((r) => r.proto === proto), proto).toBe(true);
    expect(summary.talkers[0]?.source).toBe(ADDR.client4);
  });

  it('writes an HTML report that renders in headless Chromium', async () => {
    expect(stdout).toMatch(/report\.html: \d+ panels from 4 dashboards/);
    const chromiumPath = '/usr/bin/chromium';
    expect(existsSync(chromiumPath), 'Debian chromium is needed (apt-get install chromium)').toBe(true);
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${path.join(out, 'report.html')}`);
      expect(await page.locator('section[data-panel-type="stat"]', { hasText: 'Hosts' }).first().locator('.stat').innerText()).toBe('1');
      const lines = await page.locator('path.series').evaluateAll((ps) => ps.map((p) => (p.getAttribute('d') ?? '').split('L').length));
      expect(lines.filter((n) => n > 5).length).toBeGreaterThan(5);
      const kinds = await page.locator('section', { hasText: 'By kind' }).locator('tbody tr td:first-child').allInnerTexts();
      expect(kinds).toContain('invalid_spike');
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
