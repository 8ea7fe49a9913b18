/**
 * Each command offers (and its --help lists) only the settings it reads: one list, cli/uses.ts,
 * says which part of ctpipe reads each setting, and each command names the parts it runs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText, leavesFor, parseCommand, type CommandSpec } from '../../cli/args.js';
import { collectSpec } from '../../cli/commands/collect.js';
import { dashboardsSpec } from '../../cli/commands/dashboards.js';
import { demoSpec } from '../../cli/commands/demo.js';
import { migrateSpec } from '../../cli/commands/migrate.js';
import { processSpec } from '../../cli/commands/process.js';
import { querySpec } from '../../cli/commands/query.js';
import { recordSpec } from '../../cli/commands/record.js';
import { replaySpec } from '../../cli/commands/replay.js';
import { reportSpec } from '../../cli/commands/report.js';
import { runSpec } from '../../cli/commands/run.js';
import { topSpec } from '../../cli/commands/top.js';
import { leaves, type Leaf } from '../../cli/config.js';
import { PART_OF, partOf, type Part } from '../../cli/uses.js';
import { BIN } from '../helpers/procs.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SPECS: CommandSpec[] = [runSpec, collectSpec, recordSpec, replaySpec, processSpec, migrateSpec, querySpec, topSpec, reportSpec, dashboardsSpec, demoSpec];

/** Where each part's settings are read (the evidence that a setting of the part does something). */
const READERS: Record<Part, string[]> = {
  host: ['cli/commands/collect.ts'],
  log: ['cli/commands/collect.ts', 'cli/commands/run.ts', 'cli/commands/process.ts', 'cli/commands/record.ts', 'cli/commands/replay.ts', 'cli/commands/demo.ts'],
  ops: ['cli/commands/collect.ts', 'cli/commands/run.ts', 'cli/commands/process.ts'],
  collector: ['cli/commands/collect.ts'],
  output: ['cli/commands/collect.ts'],
  feed: ['cli/commands/collect.ts', 'cli/commands/run.ts'],
  kafka: ['common/kafka.ts', 'processor/consumer.ts'],
  publish: ['common/kafka.ts', 'cli/commands/collect.ts', 'cli/commands/replay.ts'],
  spool: ['cli/commands/collect.ts'],
  consume: ['processor/consumer.ts'],
  limits: ['processor/options.ts'],
  store: ['cli/store.ts'],
  database: ['cli/store.ts', 'cli/commands/dashboards.ts'],
  schema: ['cli/store.ts'],
  pipeline: ['processor/options.ts'],
  live: ['cli/commands/run.ts', 'processor/consumer.ts', 'cli/commands/process.ts'],
  local: ['cli/commands/run.ts'],
  k8s: ['processor/k8s/client.ts', 'processor/k8s/names.ts'],
  enrich: ['cli/commands/networks.ts'],
};

const source = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** The project's .ts files a module imports, directly or not, itself included. */
function closure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of source(file).matchAll(/from '(\.[^']+)\.js'/g)) closure(path.join(path.dirname(file), `${m[1]!}.ts`), seen);
  return seen;
}

/** A read of the setting: `.key` (`.tls.key_file` for a setting inside a subsection). */
const readPattern = (l: Leaf) => new RegExp(`\\.${l.path.slice(l.path.length > 2 ? -2 : -1).join('\\.')}\\b`);

const flagsInHelp = (text: string) => [...text.matchAll(/^ {6}(--[a-z0-9-]+)/gm)].map((m) => m[1]!).sort();

describe('each command takes only the settings it reads', () => {
  it('gives every setting a part, and names only settings that exist', () => {
    const all = leaves();
    expect(all.filter((l) => partOf(l) === undefined).map((l) => l.path.join('.'))).toEqual([]);
    const keys = new Set(all.flatMap((l) => l.path.map((_, i) => l.path.slice(0, i + 1).join('.'))));
    expect(Object.keys(PART_OF).filter((k) => !keys.has(k))).toEqual([]);
  });

  it('reads every setting of a part in that part\'s code, which each command naming the part runs', () => {
    for (const l of leaves()) {
      const files = READERS[partOf(l)!];
      expect(files.some((f) => readPattern(l).test(source(f))), `${l.path.join('.')} is read in ${files.join(', ')}`).toBe(true);
    }
    for (const spec of SPECS) {
      const runs = closure(`cli/commands/${spec.name}.ts`);
      for (const part of spec.parts as Part[]) {
        expect(READERS[part].some((f) => runs.has(f)), `ctpipe ${spec.name} runs the code of part ${part}`).toBe(true);
      }
    }
  });

  it('lists in --help exactly the flags of its parts, and refuses the others', () => {
    const all = leaves();
    for (const spec of SPECS) {
      const mine = leavesFor(spec);
      const own = Object.keys(spec.own ?? {}).map((k) => `--${k}`);
      expect(flagsInHelp(helpText(spec)).filter((f) => !own.includes(f)), spec.name).toEqual(mine.map((l) => l.flag).sort());
      for (const l of all.filter((x) => !mine.some((m) => m.flag === x.flag))) {
        const arg = l.type === 'boolean' ? [l.flag] : [l.flag, '1'];
        expect(() => parseCommand(spec, arg), `ctpipe ${spec.name} ${l.flag}`).toThrow(/Unknown option/);
      }
    }
  });

  it('keeps run, record, replay and process to what they use (no Kafka for run, no store for record)', () => {
    const flags = (spec: CommandSpec) => leavesFor(spec).map((l) => l.flag);
    expect(flags(runSpec)).toEqual(expect.arrayContaining(['--host', '--netns', '--duration', '--clickhouse-url', '--process-max-backlog', '--detect-invalid-z']));
    expect(flags(runSpec).filter((f) => f.startsWith('--kafka-') || f === '--output' || f === '--process-group-id')).toEqual([]);
    expect(flags(recordSpec).filter((f) => /^--(kafka|clickhouse|process-|detect|metrics|output)/.test(f))).toEqual([]);
    expect(flags(replaySpec).filter((f) => /^--(host|netns|metrics|kafka-spool|process-(flush|checkpoint|group-id|hosts))\b/.test(f))).toEqual([]);
    expect(flags(processSpec).filter((f) => /^--(host|netns|rcvbuf|duration|kafka-(linger|spool|batch-events))\b/.test(f))).toEqual([]);
    expect(flags(querySpec)).toEqual(['--clickhouse-url', '--clickhouse-database', '--clickhouse-username', '--clickhouse-password', '--clickhouse-password-file']);
    expect(flags(dashboardsSpec)).toEqual(['--clickhouse-database']);
  });

  it('points report --host to --report-host, the flag that names a host there', () => {
    const r = spawnSync(process.execPath, [BIN, 'report', '--html', 'x.html', '--host', 'fw-1'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("ctpipe: Unknown option '--host' (did you mean --report-host?)\nRun `ctpipe report --help` for the flags. [CONFIG_INVALID]\n");
    expect(() => parseCommand(querySpec, ['--url', 'x'])).toThrow(/Unknown option '--url' \(did you mean --clickhouse-url\?\)/);
    expect(() => parseCommand(runSpec, ['--enabled'])).toThrow(/Unknown option '--enabled'\nRun/); // two flags end so: no guess
  });

  it('prints ctpipe --help in lines of at most 100 characters, every command named once', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.length > 100)).toEqual([]);
    for (const spec of SPECS) expect(r.stdout.match(new RegExp(`^  ${spec.name} +\\S`, 'gm')), spec.name).toHaveLength(1);
    expect(r.stdout).toMatch(/^ {2}config {6}\S/m);
  });

});
