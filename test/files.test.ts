// writeBytesAtomic: the target is the old file or the new one at every moment, also while the previous
// version is being kept beside it, and a failure anywhere leaves no temporary file behind. makeDirectories:
// safe beside another process making the same folders.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IkunError } from '../lib/errors.js';
import { ensureWritableFolder, fileOps, makeDirectories, writeBytesAtomic } from '../lib/files.js';

const original = { ...fileOps };
afterEach(() => Object.assign(fileOps, original));
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function folderWith(text: string): { dir: string; target: string; keep: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ikun-files-'));
  const target = join(dir, 'last.safetensors');
  writeFileSync(target, text);
  return { dir, target, keep: join(dir, 'last.prev.safetensors') };
}

describe('writeBytesAtomic with keepPreviousAs', () => {
  it('keeps the old file under the second name and puts the new one in place', () => {
    const { dir, target, keep } = folderWith('old');
    writeBytesAtomic(target, bytes('new'), { keepPreviousAs: keep, verify: true });
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readFileSync(keep, 'utf8')).toBe('old');
    writeBytesAtomic(target, bytes('newer'), { keepPreviousAs: keep });
    expect(readFileSync(keep, 'utf8')).toBe('new'); // a hard link to the replaced file, not to the new one
    expect(readdirSync(dir).sort()).toEqual(['last.prev.safetensors', 'last.safetensors']);
  });

  it('copies where hard links fail, and a failing final rename leaves the old target in place (WRITE_FAILED naming it)', () => {
    const { dir, target, keep } = folderWith('old');
    fileOps.linkSync = () => { throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }); };
    let renames = 0;
    fileOps.renameSync = (from, to) => {
      // the first rename puts the kept copy in place; the second would put the new file over the target
      if (++renames === 2) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      original.renameSync(from, to);
    };
    let error: unknown = null;
    try {
      writeBytesAtomic(target, bytes('new'), { keepPreviousAs: keep, what: 'checkpoint' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IkunError);
    expect((error as IkunError).code).toBe('WRITE_FAILED');
    expect((error as IkunError).message).toContain(`cannot write checkpoint ${JSON.stringify(target)}: EIO: i/o error, rename`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(readFileSync(keep, 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['last.prev.safetensors', 'last.safetensors']);
  });
});

describe('makeDirectories beside another process making the same folders', () => {
  it('accepts a folder that another process made between its check and its mkdir (the tasks of a SLURM array)', () => {
    const base = mkdtempSync(join(tmpdir(), 'ikun-mkdir-'));
    const shared = join(base, 'exp', 'runs');
    fileOps.mkdirSync = (path) => {
      mkdirSync(path); // the other task wins the race for every level ...
      original.mkdirSync(path); // ... so this one gets EEXIST
    };
    makeDirectories(join(shared, 'kaiming-sgd-s1'));
    expect(statSync(join(shared, 'kaiming-sgd-s1')).isDirectory()).toBe(true);
    Object.assign(fileOps, original);
    ensureWritableFolder(join(shared, 'kaiming-sgd-s2'));
    expect(readdirSync(shared).sort()).toEqual(['kaiming-sgd-s1', 'kaiming-sgd-s2']);
  });

  it('still fails when what appeared in the way is a file, not a folder (OUT_UNWRITABLE naming it)', () => {
    const base = mkdtempSync(join(tmpdir(), 'ikun-mkdir-'));
    fileOps.mkdirSync = (path) => {
      writeFileSync(path, 'not a folder');
      original.mkdirSync(path);
    };
    let error: unknown = null;
    try {
      ensureWritableFolder(join(base, 'runs', 'a'));
    } catch (e) {
      error = e;
    }
    expect((error as IkunError).code).toBe('OUT_UNWRITABLE');
    expect((error as IkunError).message).toContain('EEXIST');
  });
});
