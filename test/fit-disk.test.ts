// A full or failing disk: a checkpoint or metrics write that fails stops the run naming the file, leaves
// the previous checkpoint intact and loadable, and a resume once the disk works again finishes the run
// with the metrics of one that never failed. Faults are injected into the writers' file operations;
// with root, a small tmpfs gives a real ENOSPC and a read-only remount (skipped visibly otherwise).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as checkpoint from '../lib/checkpoint.js';
import { fileOps } from '../lib/files.js';
import { IkunError, fit, manualSeed, models, nn, type EpochMetrics, type FitOptions } from '../lib/index.js';
import { colourSquares } from './helpers/synthetic.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-disk-'));
const trainSet = colourSquares(128, 1), testSet = colourSquares(64, 2);
const withoutTimes = (m: EpochMetrics): Partial<EpochMetrics> => {
  const { epoch_s: _a, test_s: _b, samples_per_s: _c, ...rest } = m;
  return rest;
};
const model = (): nn.Module => {
  manualSeed(3);
  return models.spikingVgg({ widths: [4, 'M', 8, 'M'], inputShape: [3, 8, 8], classes: 3, T: 2 });
};
const base: FitOptions = { epochs: 3, batchSize: 32, optimizer: 'sgd', lr: 0.2, momentum: 0.9 };
const run = (out?: string, extra: FitOptions = {}) => fit(model(), { train: trainSet, test: testSet }, { ...base, ...(out ? { out } : {}), ...extra });

const original = { ...fileOps };
afterEach(() => Object.assign(fileOps, original));

/** Makes the n-th and later writes into files whose temporary name contains `name` fail with `code`. */
function failWrites(name: string, code: 'ENOSPC' | 'EIO', from: number, op: 'writeSync' | 'fsyncSync' = 'writeSync'): void {
  const paths = new Map<number, string>();
  let seen = 0;
  fileOps.openSync = ((path: string, flags: string, mode?: number) => {
    const fd = original.openSync(path, flags, mode);
    paths.set(fd, path);
    return fd;
  }) as typeof fileOps.openSync;
  const fault = (fd: number): void => {
    if (!(paths.get(fd) ?? '').includes(name) || ++seen < from) return;
    const message = code === 'ENOSPC' ? 'ENOSPC: no space left on device, write' : 'EIO: i/o error, fsync';
    throw Object.assign(new Error(message), { code });
  };
  if (op === 'writeSync') fileOps.writeSync = (fd, buffer, offset, length) => (fault(fd), original.writeSync(fd, buffer, offset, length));
  else fileOps.fsyncSync = (fd) => (fault(fd), original.fsyncSync(fd));
}

describe('a failing disk', () => {
  it('ENOSPC writing last.safetensors at the end of epoch 2: the run stops naming the file, epoch 1 stays loadable, a later resume finishes the run', async () => {
    const full = await run();
    const dir = join(tmp(), 'enospc');
    // The first last.safetensors (epoch 1) is written; the second one fails.
    failWrites('.last.safetensors.', 'ENOSPC', 2);
    const err = await run(dir).catch((e: unknown) => e) as IkunError;
    expect(err).toBeInstanceOf(IkunError);
    expect(err.code).toBe('WRITE_FAILED');
    expect(err.message).toMatch(/cannot write safetensors file ".*enospc\/last\.safetensors": ENOSPC: no space left on device, write\. The previous version of the file is left as it was\./);
    expect(err.details).toMatchObject({ errno: 'ENOSPC' });
    Object.assign(fileOps, original);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const last = checkpoint.readCheckpoint(join(dir, 'last.safetensors'));
    expect(last.metadata).toMatchObject({ epoch: '1', step: '0' });
    checkpoint.loadModelState(model(), last);
    // metrics.jsonl was written before the checkpoint and holds epoch 2 already: resume redoes that epoch
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    const resumed = await run(dir, { resume: true });
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
  });

  it('EIO on the fsync of metrics.jsonl stops the run naming it, before any checkpoint of that epoch; the checkpoint mid-epoch fails alike', async () => {
    const dir = join(tmp(), 'eio');
    failWrites('.metrics.jsonl.', 'EIO', 2, 'fsyncSync');
    await expect(run(dir)).rejects.toThrow(/cannot write metrics file ".*eio\/metrics\.jsonl": EIO: i\/o error, fsync/);
    Object.assign(fileOps, original);
    expect(checkpoint.readCheckpoint(join(dir, 'last.safetensors')).metadata.epoch).toBe('1');
    const every = join(tmp(), 'every');
    failWrites('.last.safetensors.', 'ENOSPC', 2);
    await expect(run(every, { checkpointEvery: 3 })).rejects.toThrow(/cannot write safetensors file ".*every\/last\.safetensors": ENOSPC/);
    Object.assign(fileOps, original);
    expect(checkpoint.readCheckpoint(join(every, 'last.safetensors')).metadata).toMatchObject({ epoch: '0', step: '3' });
  });

  it('a written checkpoint that reads back wrong is not put in place', async () => {
    const dir = join(tmp(), 'verify');
    await run(dir, { epochs: 1 });
    const before = readFileSync(join(dir, 'last.safetensors'));
    // a disk that silently drops the last byte of what it is given
    fileOps.writeSync = (fd, buffer, offset, length) => original.writeSync(fd, buffer, offset, Math.max(0, length - 1)) + (length > 0 ? 1 : 0);
    await expect(run(dir, { epochs: 2, resume: true })).rejects.toThrow(/cannot write (metrics file|safetensors file) .*reading the written file back gave other bytes/);
    Object.assign(fileOps, original);
    expect(Buffer.compare(readFileSync(join(dir, 'last.safetensors')), before)).toBe(0);
  });
});

// ---- a real small disk --------------------------------------------------------------------------------
const bin = resolve(__dirname, '../dist/lib/cli.js');
const mountPoint = join(tmpdir(), `ikun-tmpfs-${process.pid}`);
function tryMount(): string | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'needs root on Linux to mount a tmpfs';
  mkdirSync(mountPoint, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { encoding: 'utf8' });
  return r.status === 0 ? null : `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
}
const cannotMount = tryMount();
afterAll(() => {
  if (cannotMount === null) spawnSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});
const trainArgs = ['train', '--sample', '--epochs', '2', '--channels', '4', '--subset', '1024', '--batch', '16', '--device', 'cpu'];

describe.skipIf(cannotMount !== null)(`a full tmpfs and a read-only one${cannotMount ? ` (skipped: ${cannotMount})` : ''}`, () => {
  it('ENOSPC after epoch 1 exits 1 naming the file; read-only refuses the resume; with space back, resume finishes as an unfailed run', async () => {
    const reference = join(tmp(), 'reference');
    expect(spawnSync(process.execPath, [bin, ...trainArgs, '--out', reference], { encoding: 'utf8' }).status).toBe(0);
    const dir = join(mountPoint, 'run');
    const child = spawn(process.execPath, [bin, ...trainArgs, '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const filler = join(mountPoint, 'filler');
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Epoch 1 is on disk when its line is printed; epoch 2 (64 steps) is still training: fill the disk now.
      if (/epoch 1\/2/.test(stdout) && !existsSync(filler)) spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { encoding: 'utf8' });
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const status = await new Promise<number | null>((done) => child.on('exit', done));
    expect(existsSync(filler), stdout + stderr).toBe(true);
    expect(status).toBe(1);
    expect(stderr).toMatch(/cannot write ".*run\/(metrics\.jsonl|metrics\.csv|best\.safetensors|last\.safetensors)": ENOSPC: no space left on device/);
    expect(stderr).toContain(`continue the run with: ikun train --resume ${dir}`);
    expect(checkpoint.readCheckpoint(join(dir, 'last.safetensors')).metadata.epoch).toBe('1');
    rmSync(filler);
    expect(spawnSync('mount', ['-o', 'remount,ro', mountPoint]).status).toBe(0);
    const readOnly = spawnSync(process.execPath, [bin, 'train', '--resume', dir], { encoding: 'utf8' });
    expect(spawnSync('mount', ['-o', 'remount,rw', mountPoint]).status).toBe(0);
    expect(readOnly.status).toBe(1);
    expect(readOnly.stderr).toMatch(/cannot write to the output folder '.*run': .*read-only file system/);
    const resumed = spawnSync(process.execPath, [bin, 'train', '--resume', dir], { encoding: 'utf8' });
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    const lines = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.stringify(withoutTimes(JSON.parse(l))));
    expect(lines(dir)).toEqual(lines(reference));
  });
});
