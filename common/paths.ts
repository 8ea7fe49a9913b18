/** Locates files of the ctpipe package whether it runs from source (vitest) or from dist/. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'binding.gyp'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('ctpipe: cannot find the package root');
    dir = up;
  }
  root = dir;
  return dir;
}
