/**
 * What chDB needs of its directory, checked before it opens it. chDB writes its own failure to
 * open a file (`Code: 76. DB::ErrnoException: Cannot open file ...`) straight to the process's
 * stderr, out of ctpipe's reach, and then reports only "Failed to create connection": checked
 * first, the user reads one message that names the file and the way out.
 */
import { accessSync, closeSync, constants, lstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What chDB opens for writing at start, even for a read-only query (status holds its lock). */
const DIRS = ['metadata', 'metadata_dropped', 'data', 'store', 'tmp'];

function why(e: unknown, dir: string): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EROFS':
      return 'read-only file system (chDB writes its directory even to read it: copy the store somewhere writable)';
    case 'EACCES':
    case 'EPERM': {
      let owner = '';
      try {
        owner = ` (the store belongs to uid ${statSync(dir).uid}: run ctpipe as that user)`;
      } catch {
        // the owner is only a hint
      }
      return `permission denied${owner}`;
    }
    case 'EISDIR':
      return 'a directory where chDB keeps its lock file (remove it)';
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}

/** Why chDB could not open the store at `dir` (an existing directory), or undefined. */
export function chdbDirProblem(dir: string): string | undefined {
  const rwx = constants.R_OK | constants.W_OK | constants.X_OK;
  try {
    accessSync(dir, rwx);
  } catch (e) {
    return why(e, dir);
  }
  const status = join(dir, 'status');
  try {
    if (lstatSync(status, { throwIfNoEntry: false })) closeSync(openSync(status, 'r+'));
  } catch (e) {
    return `${status}: ${why(e, dir)}`;
  }
  for (const name of DIRS) {
    const sub = join(dir, name);
    try {
      const st = statSync(sub, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) return `${sub}: not a directory (chDB keeps its ${name} there)`;
      if (st) accessSync(sub, rwx);
    } catch (e) {
      return `${sub}: ${why(e, dir)}`;
    }
  }
  return undefined;
}

/**
 * The process holding chDB's lock on DIR/status (a flock, listed in /proc/locks by device and
 * inode), other than this one (whose own sessions chDB shares), or undefined.
 */
export function lockHolder(dir: string): number | undefined {
  let st;
  let locks: string;
  try {
    st = statSync(join(dir, 'status'), { bigint: true });
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  // st_dev as the kernel prints it: major and minor in hex (new_encode_dev)
  const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
  const where = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    const pid = Number(f[4]);
    if (f[1] === 'FLOCK' && f[5] === where && pid !== process.pid) return pid;
  }
  return undefined;
}
