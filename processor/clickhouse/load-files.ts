/**
 * Where the embedded store puts an insert's bytes for chDB to read with `file()`: a directory of
 * this process's own on tmpfs (/dev/shm; the OS temp directory where there is none), 0700, files
 * 0600 written exclusively, each removed once its insert is done, the directory at close or exit.
 * chDB takes binary data no other way (inline data is text and is read from the query itself,
 * ~5 us a row, and ends at the first blank line: shared/notes/environment.md). An insert is at
 * most the writer's batch bound (writer.ts), so the directory holds at most the inserts in flight.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'ctpipe-load-';
const open = new Set<string>();
let hooked = false;

/** Removes what a process that died left behind: directories of ours whose pid is gone. */
function sweep(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    const path = join(root, name);
    try {
      if (statSync(path).uid !== process.getuid?.()) continue;
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(path, { recursive: true, force: true });
    }
  }
}

export class LoadFiles {
  private n = 0;

  private constructor(readonly dir: string) {}

  /** A fresh private directory under the first of `roots` that takes one. */
  static open(roots: readonly string[] = ['/dev/shm', tmpdir()]): LoadFiles {
    let failure: unknown;
    for (const root of roots) {
      try {
        sweep(root);
        const dir = mkdtempSync(join(root, `${PREFIX}${process.pid}-`)); // mode 0700
        open.add(dir);
        if (!hooked) {
          hooked = true;
          process.on('exit', () => { for (const d of open) rmSync(d, { recursive: true, force: true }); });
        }
        return new LoadFiles(dir);
      } catch (e) {
        failure = e;
      }
    }
    throw failure;
  }

  /**
   * Writes `pieces` to a new file (0600) and gives its path. Synchronously: about 10 ms for a
   * 100,000-row insert (25 MB) on tmpfs, where each step of an asynchronous write waited for a turn
   * of the event loop, which a burst of records does not give until it ends, so inserts started
   * late and ran all at once (docs/PERFORMANCE.md).
   */
  write(pieces: readonly Uint8Array[]): string {
    const path = join(this.dir, `${++this.n}.rowbinary`);
    const fd = openSync(path, 'wx', 0o600);
    try {
      for (const b of pieces) for (let o = 0; o < b.length;) o += writeSync(fd, b, o);
    } finally {
      closeSync(fd);
    }
    return path;
  }

  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  close(): void {
    open.delete(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
