/** Documentation that must not drift from the code. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configDocs } from '../../cli/config.js';
import { packageRoot } from '../../common/paths.js';

const read = (f: string) => readFileSync(path.join(packageRoot(), f), 'utf8');

describe('docs', () => {
  it('docs/CONFIG.md is what the config schema generates (npm run docs:config)', () => {
    expect(read('docs/CONFIG.md')).toBe(configDocs());
  });

  it('the README opens with the main job and the test command, and .ci/run runs that test command', () => {
    const blocks = [...read('README.md').matchAll(/```sh\n([^\n]+)\n```/g)].map((m) => m[1]!);
    expect(blocks[0]).toContain('ctpipe.js run');
    expect(blocks[1]).toMatch(/npm ci && npm test$/);
    expect(read('.ci/run')).toContain(blocks[1]!);
  });
});
