/** Prometheus text exposition read back, and `promtool` (Debian's `prometheus` package) run on rule files and rule tests. */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { tempDir } from './resources.js';

export interface PromSample { name: string; labels: Record<string, string>; value: number }

/** Samples of a /metrics body (HELP/TYPE lines skipped; label values without escapes, which ctpipe's are). */
export function parseMetrics(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels`; fails when there is none or more than one. */
export function value(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name}${JSON.stringify(labels)}`);
  return hits[0]!.value;
}

/** Runs promtool; fails loudly when it is missing (apt-get install prometheus). */
export function promtool(args: string[], cwd?: string): { code: number; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd });
  if (r.error) throw new Error(`promtool is needed (apt-get install prometheus): ${r.error.message}`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export interface RuleTest {
  interval: string;
  input_series: { series: string; values: string }[];
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string>; exp_annotations?: Record<string, string> }[] }[];
  promql_expr_test?: { expr: string; eval_time: string; exp_samples: { labels: string; value: number }[] }[];
}

/** `promtool test rules` on `rulesFile` with these tests (written to a temporary file). */
export function promtoolTestRules(rulesFile: string, tests: RuleTest[]): { code: number; out: string } {
  const dir = tempDir('promtool');
  const file = path.join(dir, 'test.yml');
  writeFileSync(file, stringify({ rule_files: [path.resolve(rulesFile)], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
  try {
    return promtool(['test', 'rules', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A series selector in promtool's input_series notation. */
export const series = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
