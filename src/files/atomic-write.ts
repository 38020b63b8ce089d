/**
 * Durable, atomic file replacement for files that hold secrets or must never be half-written:
 * temp file in the same directory (created 0600, fchmod'd so the umask cannot widen it) → write →
 * fsync → link(2) (create: fails with EEXIST, no race window) or rename(2) (replace) → fsync the directory.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type WriteMode =
  /** Refuse to replace an existing file (throws an error with code EEXIST). */
  | { readonly create: true }
  /** Replace only if the file on disk is still exactly `expected` (throws code ECHANGED), so two writers never clobber each other. */
  | { readonly replace: Buffer }
  /** Replace whatever is there. */
  | { readonly overwrite: true };

export class AtomicWriteError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AtomicWriteError';
  }
}

export function writeFileAtomic(path: string, data: Uint8Array, mode: WriteMode, fileMode = 0o600): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    if ('replace' in mode) {
      let current: Buffer;
      try {
        current = readFileSync(path);
      } catch (err) {
        throw new AtomicWriteError((err as NodeJS.ErrnoException).code ?? 'ENOENT', `${path}: the file to replace cannot be read`);
      }
      if (!current.equals(mode.replace)) throw new AtomicWriteError('ECHANGED', `${path}: the file changed on disk since it was read`);
    }
    fd = openSync(tmp, 'wx', fileMode);
    fchmodSync(fd, fileMode);
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    if (fstatSync(fd).size !== data.length) throw new AtomicWriteError('ESHORT', `${path}: short write`);
    closeSync(fd);
    fd = undefined;
    if ('create' in mode) {
      linkSync(tmp, path);
      unlinkSync(tmp);
    } else {
      renameSync(tmp, path);
    }
    fsyncDir(dir);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    if (err instanceof AtomicWriteError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new AtomicWriteError(e.code ?? 'EIO', `${path}: ${e.code ?? e.message}`);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
