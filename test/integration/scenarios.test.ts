/**
 * The labelled scenario set (test/lab/scenarios.ts) on real kernel traffic through `ctpipe run`:
 * every anomaly kind opens in the window of the traffic made to cause it, nothing opens in the
 * normal periods (background TCP, UDP, ICMP and FTP through the kernel helper), and each anomaly
 * carries the evidence an operator needs: the INVALID burst's source, port and flags; the
 * scanner; the table's maximum; the master and expected tuples of helper anomalies.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANOMALY_KINDS } from '../../processor/anomaly/row.js';
import { ADDR } from '../lab/lab.js';
import { runScenarioSet, THIRD_HOST, type ScenarioRun } from '../lab/scenarios.js';

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
