/**
 * The checks `npm test` runs with ESLint (eslint.config.js) fail where they should: on a copy of the
 * source tree with one import against the layers, one floating promise, one library imported past
 * its owner file and one const enum. The tree itself passes them (`npm run lint` in `npm test`).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { tempDir } from '../helpers/resources.js';

const ROOT = packageRoot();
const SOURCES = ['common', 'contract', 'collector', 'processor', 'dashboards', 'lab', 'cli'];
let copy: string;

interface Message { ruleId: string | null; message: string }

/** ESLint on `files` of the copy: the messages of each file. */
function lint(files: Record<string, string>): Record<string, Message[]> {
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(copy, f), text);
  let out: string;
  try {
    out = execFileSync(path.join(ROOT, 'node_modules', '.bin', 'eslint'), ['-f', 'json', ...Object.keys(files)], { cwd: copy, encoding: 'utf8' });
  } catch (e) {
    out = (e as { stdout: string }).stdout; // exit 1: problems found
  }
  const res = JSON.parse(out) as { filePath: string; messages: Message[] }[];
  return Object.fromEntries(res.map((r) => [path.relative(copy, r.filePath), r.messages]));
}

beforeAll(() => {
  copy = tempDir('lint');
  for (const f of ['eslint.config.js', 'tsconfig.json', 'package.json']) cpSync(path.join(ROOT, f), path.join(copy, f));
  for (const d of SOURCES) cpSync(path.join(ROOT, d), path.join(copy, d), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
});

afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe('lint', () => {
  it('fails an import against the layers, a floating promise, a confined library and a const enum; passes clean code', () => {
    const r = lint({
      'contract/upward.ts': "import { Collector } from '../collector/collector.js';\nexport const c = Collector;\n",
      'processor/clickhouse/sideways.ts': "import type { RecordSink } from '../../contract/sink.js';\nimport { Spool } from '../../collector/sinks/spool.js';\nexport type S = RecordSink;\nexport const spool = Spool;\n",
      'common/floating.ts': 'async function work(): Promise<number> {\n  return 1;\n}\nexport function start(): void {\n  work();\n}\n',
      'collector/kafkajs.ts': "import kafkajs from 'kafkajs';\nexport const k = kafkajs;\n",
      'processor/enum.ts': 'export const enum E { A, B }\nexport const a = E.A;\n',
      'common/clean.ts': 'async function work(): Promise<number> {\n  return 1;\n}\nexport function start(): void {\n  void work();\n}\n',
    });
    const rules = (f: string) => r[f]!.map((m) => m.ruleId);
    expect(rules('contract/upward.ts')).toEqual(['no-restricted-imports']);
    expect(r['contract/upward.ts']![0]!.message).toMatch(/contract\/ may import only itself, common/);
    expect(rules('processor/clickhouse/sideways.ts')).toEqual(['no-restricted-imports']);
    expect(rules('common/floating.ts')).toEqual(['@typescript-eslint/no-floating-promises']);
    expect(rules('collector/kafkajs.ts')).toEqual(['no-restricted-imports']);
    expect(r['collector/kafkajs.ts']![0]!.message).toMatch(/only common\/kafka.ts imports kafkajs/);
    expect(rules('processor/enum.ts')).toEqual(['no-restricted-syntax']);
    expect(rules('common/clean.ts')).toEqual([]);
  });
});
