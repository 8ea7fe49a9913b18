/** A small disk for tests of a store whose writes fail: a tmpfs that fills in a moment. */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { expect } from 'vitest';

/** Mounts a tmpfs of 256 MiB named `name` at `dir` (made if missing). */
export function mountSmallDisk(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', name, dir], { encoding: 'utf8' });
  expect(m.status, `mount a 256 MiB tmpfs: ${m.stderr}`).toBe(0);
}

export function unmountSmallDisk(dir: string): void {
  spawnSync('umount', [dir]);
}

/** Fills the file system holding `file` until it refuses (ENOSPC). */
export function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    closeSync(fd);
  }
}
