// File helpers shared by the commands that write run folders and reports.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fail, failWith } from './errors.js';

/** mkdir -p, one level at a time (Node's recursive mkdir can spin forever under /proc). */
export function makeDirectories(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirectories(parent);
  mkdirSync(dir);
}

/**
 * Creates dir if needed and proves it writable, before any long work starts. `option` names the
 * argument the folder came from, for the message (code OUT_UNWRITABLE).
 */
export function ensureWritableFolder(dir: string, option = 'out'): void {
  try {
    makeDirectories(dir);
    const probe = join(dir, `.ikun-write-test-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
  } catch (error) {
    const reason = (error as Error).message;
    failWith('OUT_UNWRITABLE', { dir, reason }, `cannot write to the output folder '${dir}': ${reason}. Choose another ${option}.`);
  }
}

/** Writes through a temporary file and a rename, so readers never see half a file. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    fail(`cannot write '${path}': ${(error as Error).message}`);
  }
}
