// `ikun eval`: a trained checkpoint's test loss/accuracy match the training's own test pass; per-class
// accuracy and the confusion matrix agree with each other; a bare state dict (as PyTorch writes it) works.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeDirectories } from '../../lib/files.js';
import { readSafetensors, writeSafetensorsAtomic } from '../../lib/safetensors.js';
import { train } from '../../lib/train.js';
import { spawnToEnd } from '../helpers/spawn.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const ikun = (args: string[]) => spawnToEnd(process.execPath, [bin, ...args], { ...process.env });

describe('ikun eval', () => {
  let runDir = '';
  beforeAll(async () => {
    runDir = join(mkdtempSync(join(tmpdir(), 'wt12-eval-')), 'run');
    await train({ sample: true, epochs: 1, channels: 4, subset: 512, batch: 64, device: 'cpu', out: runDir });
  }, 60_000);

  it('prints { test_loss, test_acc, per_class_acc, confusion } matching the run and consistent with itself', async () => {
    const r = await ikun(['eval', '--checkpoint', join(runDir, 'best.safetensors'), '--sample', '--json']);
    expect(r.status, r.output).toBe(0);
    const e = JSON.parse(r.output);
    const epoch = JSON.parse(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim());
    expect(e.test_acc).toBe(epoch.test_acc); // the same pass in eval mode: batching does not change it
    expect(e.test_loss).toBeCloseTo(epoch.test_loss, 5);
    expect(e.sample).toBe(true);
    expect(e.images).toBe(1000);
    expect(e.confusion).toHaveLength(10);
    const total = e.confusion.flat().reduce((a: number, b: number) => a + b, 0);
    expect(total).toBe(1000);
    const diagonal = e.confusion.reduce((a: number, row: number[], i: number) => a + row[i]!, 0);
    expect(diagonal / total).toBe(e.test_acc);
    e.confusion.forEach((row: number[], c: number) => {
      const n = row.reduce((a, b) => a + b, 0);
      expect(e.per_class_acc[c]).toBe(n === 0 ? null : row[c]! / n);
    });
    const text = await ikun(['eval', '--checkpoint', join(runDir, 'best.safetensors'), '--batch', '100']);
    expect(text.status, text.output).toBe(0);
    expect(text.output).toContain(`test accuracy ${(100 * e.test_acc).toFixed(2)}%`);
    expect(text.output).toMatch(/confusion matrix \(rows: true class, columns: predicted\):\ntrue\\pred/);
    expect(text.output).toContain('data: 1000 test images of the bundled Fashion-MNIST sample'); // the run's own data
  }, 60_000);

  it('evaluates a bare state dict with no config (as PyTorch writes one), the width read off the weights', async () => {
    const saved = readSafetensors(join(runDir, 'best.safetensors'));
    const dir = join(mkdtempSync(join(tmpdir(), 'wt12-eval-')), 'torch');
    makeDirectories(dir);
    const bare = [...saved.tensors].filter(([name]) => !name.startsWith('optimizer.'));
    writeSafetensorsAtomic(join(dir, 'model.safetensors'), bare);
    const a = JSON.parse((await ikun(['eval', '--checkpoint', join(runDir, 'best.safetensors'), '--sample', '--json'])).output);
    const r = await ikun(['eval', '--checkpoint', join(dir, 'model.safetensors'), '--sample', '--json']);
    expect(r.status, r.output).toBe(0);
    const b = JSON.parse(r.output);
    expect(b.test_acc).toBe(a.test_acc);
    expect(b.confusion).toEqual(a.confusion);
    expect(b.config_source).toMatch(/weights \(channels from conv_fc\.0\.weight/);
  }, 60_000);

  it('exits 2 on bad flags and 1 with the reason on a missing or corrupt checkpoint', async () => {
    for (const [args, message] of [
      [['eval'], /required option '--checkpoint <file>' not specified/],
      [['eval', '--checkpoint', 'x', '--sample', '--data', 'd'], /give --data DIR or --sample, not both/],
      [['eval', '--checkpoint', 'x', '--batch', '0'], /--batch.*must be at least 1/],
      [['eval', '--checkpoint', 'x', '--bogus'], /unknown option '--bogus'/],
    ] as Array<[string[], RegExp]>) {
      const r = await ikun(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.output).toMatch(/^ikun: /);
      expect(r.output).toMatch(message);
    }
    const missing = await ikun(['eval', '--checkpoint', join(runDir, 'nope.safetensors'), '--sample']);
    expect(missing.status).toBe(1);
    expect(missing.output).toMatch(/checkpoint .*nope\.safetensors not found/);
    const corrupt = join(runDir, 'corrupt.safetensors');
    writeFileSync(corrupt, 'not a safetensors file');
    const bad = await ikun(['eval', '--checkpoint', corrupt, '--sample']);
    expect(bad.status).toBe(1);
    expect(bad.output).toMatch(/cannot read the checkpoint .*corrupt\.safetensors/);
  }, 60_000);
});
