// File helpers shared by the commands that write run folders and reports. Every write of a result goes
// through writeBytesAtomic: a temporary file in the same folder, written in full, fsynced, optionally read
// back and compared, then renamed over the target. A write that fails (a full disk, an I/O error, a folder
// that became read-only) leaves the previous file as it was and throws WRITE_FAILED naming the file.
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { fail, failWith } from './errors.js';

/**
 * @internal The file operations the writers use. Tests replace entries to inject the faults of a failing
 * disk (ENOSPC from writeSync, EIO from fsyncSync, ...); nothing else should.
 */
export const fileOps = {
  openSync: fs.openSync,
  writeSync: fs.writeSync as (fd: number, buffer: Uint8Array, offset: number, length: number) => number,
  readSync: fs.readSync as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => number,
  fsyncSync: fs.fsyncSync,
  closeSync: fs.closeSync,
  renameSync: fs.renameSync,
  unlinkSync: fs.unlinkSync,
  fchmodSync: fs.fchmodSync,
  linkSync: fs.linkSync,
  copyFileSync: fs.copyFileSync as (src: string, dest: string) => void,
  mkdirSync: fs.mkdirSync as (path: string) => void,
};

/** A temporary name beside `target`, unique to this process and call. */
function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Puts a copy of `target` at `keep` (a second name for the same file where the file system allows hard
 * links, a copy where it does not), so that the target itself stays in place until the rename that
 * replaces it: a failure at any point leaves the target there, whole.
 */
function keepCopy(target: string, keep: string): void {
  const temp = tempNameFor(resolve(keep));
  try {
    try {
      fileOps.linkSync(target, temp);
    } catch {
      fileOps.copyFileSync(target, temp);
    }
    fileOps.renameSync(temp, keep);
  } catch (error) {
    try {
      fileOps.unlinkSync(temp);
    } catch {
      // Not created, or already gone: the original error matters more.
    }
    throw error;
  }
}

/**
 * mkdir -p, one level at a time (Node's recursive mkdir can spin forever under /proc). Safe against
 * another process making the same folders at the same moment (the tasks of a SLURM array share their
 * parent folders): a folder that appeared between the check and the mkdir is what was wanted.
 */
export function makeDirectories(dir: string): void {
  if (fs.existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirectories(parent);
  try {
    fileOps.mkdirSync(dir);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST' || !isFolder(dir)) throw error;
  }
}

function isFolder(path: string): boolean {
  try {
    return fs.statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function unwritable(dir: string, reason: string, option: string): never {
  return failWith('OUT_UNWRITABLE', { dir, reason }, `cannot write to the output folder '${dir}': ${reason}. Choose another ${option}.`);
}

/**
 * Checks, without creating or writing anything, that dir could be made and written: it is a folder or
 * does not exist yet, and its nearest existing ancestor is a folder this process may write to. Runs
 * before the long work (loading data) so that a bad output folder fails at once and leaves no trace.
 */
export function checkFolderUsable(dir: string, option = 'out'): void {
  let at = resolve(dir);
  for (;;) {
    let stat: fs.Stats | null = null;
    try {
      stat = fs.statSync(at);
    } catch {
      stat = null;
    }
    if (stat) {
      if (!stat.isDirectory()) unwritable(dir, `'${at}' is not a folder`, option);
      try {
        fs.accessSync(at, fs.constants.W_OK);
      } catch (error) {
        unwritable(dir, (error as Error).message, option);
      }
      return;
    }
    const parent = dirname(at);
    if (parent === at) return;
    at = parent;
  }
}

/**
 * Creates dir if needed and proves it writable, before any long work starts. `option` names the
 * argument the folder came from, for the message (code OUT_UNWRITABLE).
 */
export function ensureWritableFolder(dir: string, option = 'out'): void {
  try {
    makeDirectories(dir);
    // pid and random bytes: the tasks of a SLURM array on different nodes can share a pid and a folder
    const probe = join(dir, `.ikun-write-test-${process.pid}-${randomBytes(6).toString('hex')}`);
    fs.writeFileSync(probe, 'ok');
    fs.rmSync(probe);
  } catch (error) {
    unwritable(dir, (error as Error).message, option);
  }
}

/** The errno code of a failed file operation ('ENOSPC', 'EIO', 'EROFS', ...), or '' when it has none. */
function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : '';
}

function writeFailed(path: string, error: unknown, what: string): never {
  const reason = error instanceof Error ? error.message : String(error);
  return failWith('WRITE_FAILED', { path, reason, errno: errorCode(error) },
    `cannot write ${what} ${JSON.stringify(path)}: ${reason}. The previous version of the file is left as it was.`);
}

const VERIFY_CHUNK = 1 << 20;

/** Reads the file at fd back in chunks and compares it with bytes (no second full-size copy in memory). */
function sameBytes(fd: number, bytes: Uint8Array): boolean {
  const chunk = new Uint8Array(Math.min(VERIFY_CHUNK, Math.max(1, bytes.length)));
  let at = 0;
  while (at < bytes.length) {
    const want = Math.min(chunk.length, bytes.length - at);
    const got = fileOps.readSync(fd, chunk, 0, want, at);
    if (got !== want) return false;
    for (let i = 0; i < got; i++) if (chunk[i] !== bytes[at + i]) return false;
    at += got;
  }
  // Nothing may follow what was written.
  return fileOps.readSync(fd, chunk, 0, 1, at) === 0;
}

export interface AtomicWriteOptions {
  /** Read the written file back and compare it before it replaces the target (checkpoints). */
  verify?: boolean;
  /**
   * Keep the file being replaced under this path too (a hard link, or a copy), so that one previous version
   * stays on disk; the target itself stays in place until the new file is renamed over it.
   */
  keepPreviousAs?: string;
  /** What the file is, for the error message ('checkpoint', 'metrics file', ...; default 'file'). */
  what?: string;
}

/**
 * Writes bytes to path through a temporary file in the same folder and a rename, so that readers see the
 * old file or the new one, never half a file; an existing file's permission bits are kept. On failure the
 * temporary file is removed, the target is untouched, and WRITE_FAILED names the file.
 */
export function writeBytesAtomic(path: string, bytes: Uint8Array, options: AtomicWriteOptions = {}): void {
  const target = resolve(path);
  const folder = dirname(target);
  const temp = tempNameFor(target);
  const what = options.what ?? 'file';
  let mode: number | undefined;
  try {
    const st = fs.statSync(target);
    if (st.isFile()) mode = st.mode & 0o7777;
  } catch {
    // No previous file: the default mode.
  }
  let created = false;
  try {
    const fd = fileOps.openSync(temp, 'wx+', 0o644);
    created = true;
    try {
      if (mode !== undefined) fileOps.fchmodSync(fd, mode);
      let written = 0;
      while (written < bytes.length) written += fileOps.writeSync(fd, bytes, written, bytes.length - written);
      fileOps.fsyncSync(fd);
      if (options.verify && !sameBytes(fd, bytes))
        throw new Error(`reading the written file back gave other bytes than were written (${bytes.length} bytes)`);
    } finally {
      fileOps.closeSync(fd);
    }
    if (options.keepPreviousAs !== undefined && fs.existsSync(target)) keepCopy(target, options.keepPreviousAs);
    fileOps.renameSync(temp, target);
    created = false;
  } catch (error) {
    if (created) {
      try {
        fileOps.unlinkSync(temp);
      } catch {
        // The original error matters more.
      }
    }
    writeFailed(path, error, what);
  }
  // Make the rename durable. Not every platform can open or fsync a folder, so this is best effort.
  try {
    const dirFd = fs.openSync(folder, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  } catch {
    // The data is already written and renamed.
  }
}

/** Writes text atomically (see writeBytesAtomic). */
export function writeFileAtomic(path: string, text: string, what = 'file'): void {
  if (typeof text !== 'string') fail(`writeFileAtomic: text must be a string`);
  writeBytesAtomic(path, Buffer.from(text, 'utf8'), { what });
}
