/**
 * Files private by default: what ctpipe keeps (the embedded store, the spool, recordings) holds
 * every connection of the host, so it is for its owner alone (directories 0700, files 0600). An
 * existing directory loses only the bits for others: a group the operator granted (0750) stays.
 */
import { chmodSync, constants, lstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { CtpipeError, errorMessage, type ErrorCode } from './errors.js';

/** The umask of commands that keep data: everything they (and chDB in them) create is the owner's alone. */
export const PRIVATE_UMASK = 0o077;

/** Creates `dir` (and missing parents) as 0700, or takes the bits for others from an existing one. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.mode & 0o007 && st.uid === process.getuid?.()) chmodSync(dir, st.mode & 0o770);
}

/**
 * Opens a new file for writing, 0600, refusing one that exists and a symbolic link in its place
 * (O_CREAT|O_EXCL|O_NOFOLLOW): a link planted where ctpipe writes must not make it overwrite
 * another file. Returns the descriptor.
 */
export function createPrivateFile(file: string, code: ErrorCode, what: string): number {
  try {
    return openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    let why = errorMessage(e);
    if (err.code === 'EEXIST') {
      let link = false;
      try {
        link = lstatSync(file).isSymbolicLink();
      } catch {
        // gone since: the message below still holds
      }
      why = link ? 'it is a symbolic link, which ctpipe never writes through' : 'it exists, and ctpipe does not overwrite it (remove it or choose another name)';
    }
    throw new CtpipeError(code, `cannot create ${what} ${file}: ${why}`, { cause: e });
  }
}
