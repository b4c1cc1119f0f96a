// A non-finite loss or gradient: fit stops with the epoch, the step and the tensor, leaving the last good
// checkpoint as it was; onNan 'skip' skips the batch (no optimiser step, BatchNorm statistics put back)
// and counts it. nanCheck 'epoch' (a GPU's default) finds the same step from device counters.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as checkpoint from '../lib/checkpoint.js';
import { DataLoader } from '../lib/data.js';
import { IkunError, data, fit, loss, manualSeed, models, nn, type FitOptions } from '../lib/index.js';
import { readSafetensors, writeSafetensorsAtomic } from '../lib/safetensors.js';
import { colourSquares } from './helpers/synthetic.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-diverge-'));
const testSet = colourSquares(96, 2);
const model = (): nn.Module => {
  manualSeed(5);
  return models.spikingVgg({ widths: [4, 'M', 8, 'M'], inputShape: [3, 8, 8], classes: 3, T: 2 });
};
const BATCH = 32, POISONED = 70;
/** The training set with one NaN pixel in image POISONED: its batch's gradients are NaN (its loss is not). */
function poisoned(): data.Dataset {
  const d = colourSquares(192, 1);
  const images = d.images.slice();
  images[POISONED * 3 * 64 + 5] = Number.NaN;
  return { ...d, images };
}
/** The 1-based step of `epoch` whose batch holds the poisoned image (the loader's seeded order). */
function poisonedStep(epoch: number): number {
  const order = new DataLoader(poisoned(), { batchSize: BATCH, shuffle: true, dropLast: true, seed: 42 }).order(epoch - 1);
  return Math.floor(order.indexOf(POISONED) / BATCH) + 1;
}
const base: FitOptions = { epochs: 2, batchSize: BATCH, optimizer: 'sgd', lr: 0.1 };

describe('divergence', () => {
  it('stops at the step with the NaN gradient, naming it, and leaves the last checkpoint as it was (nanCheck step and epoch alike)', async () => {
    for (const nanCheck of ['step', 'epoch'] as const) {
      const dir = join(tmp(), nanCheck);
      // a clean first epoch, then the poisoned data set from epoch 2 on
      await fit(model(), { train: colourSquares(192, 1), test: testSet }, { ...base, epochs: 1, out: dir });
      const before = readFileSync(join(dir, 'last.safetensors'));
      const err = await fit(model(), { train: poisoned(), test: testSet }, { ...base, out: dir, resume: true, nanCheck }).catch((e: unknown) => e) as IkunError;
      expect(err).toBeInstanceOf(IkunError);
      expect(err.code).toBe('DIVERGED');
      const step = poisonedStep(2);
      expect(err.details).toMatchObject({ epoch: 2, step, steps: 6 });
      expect(err.message).toContain(`training diverged in epoch 2, step ${step} of 6: `);
      expect(err.message).toContain('last.safetensors (after epoch 1) is left as it was');
      expect(err.message).toContain("pass onNan: 'skip' to skip such batches");
      if (nanCheck === 'step') expect(err.message).toMatch(/the gradient of 'features\.0\.weight' is NaN \(and of 'features\.1\.weight', /);
      // Counted on the device: the same step, found after the epoch's steps ran on.
      else expect(err.message).toMatch(/the gradient norm became NaN at that step \(counted on the device, read at the end of the steps\); now 'features\.0\.weight'/);
      expect(Buffer.compare(readFileSync(join(dir, 'last.safetensors')), before)).toBe(0);
      expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    }
  });

  it("onNan 'skip' skips each poisoned batch (counted as skipped_steps) and puts BatchNorm's statistics back", async () => {
    const seen: Array<Record<string, number[]>> = [];
    const r = await fit(model(), { train: poisoned(), test: testSet }, { ...base, onNan: 'skip' });
    expect(r.metrics.map((m) => m.skipped_steps)).toEqual([1, 1]);
    for (const m of r.metrics) for (const v of [m.train_loss, m.train_acc, m.test_loss, m.grad_norm]) expect(Number.isFinite(v)).toBe(true);
    // The statistics after a skipped batch equal those before it.
    const m = model();
    const stats = (): number[] => Array.from(m.namedBuffers().find(([n]) => n === 'features.1.running_mean')![1].toArray());
    const step = poisonedStep(1);
    await fit(m, { train: poisoned(), test: testSet }, {
      ...base, epochs: 1, onNan: 'skip',
      onStep: (s) => { if (s.phase === 'train' && (s.step === step - 1 || s.step === step)) seen.push({ [s.step]: stats() }); },
    });
    expect(seen[1]![step]).toEqual(seen[0]![step - 1]);
    expect(seen[1]![step]!.every(Number.isFinite)).toBe(true);
  });

  it('a NaN loss from a loss function of your own stops the run at that step, or is skipped', async () => {
    let calls = 0;
    const nanAtThird = (o: Parameters<typeof loss.mseRate>[0], l: Int32Array) => {
      const r = loss.mseRate(o, l);
      return ++calls === 3 ? { loss: Number.NaN, grad: r.grad } : r;
    };
    const err = await fit(model(), { train: colourSquares(192, 1), test: testSet }, { ...base, loss: nanAtThird }).catch((e: unknown) => e) as IkunError;
    expect(err.message).toMatch(/training diverged in epoch 1, step 3 of 6: the loss is NaN\. Lower the learning rate/);
    calls = 0;
    const skipped = await fit(model(), { train: colourSquares(192, 1), test: testSet }, { ...base, loss: nanAtThird, onNan: 'skip' });
    expect(skipped.metrics[0]!.skipped_steps).toBe(1);
    expect(Number.isFinite(skipped.metrics[0]!.train_loss)).toBe(true);
  });

  it('resuming from a checkpoint with a NaN weight stops at the first step and names the weight', async () => {
    const dir = join(tmp(), 'nan-weight');
    await fit(model(), { train: colourSquares(192, 1), test: testSet }, { ...base, epochs: 1, out: dir });
    const file = join(dir, 'last.safetensors');
    const saved = readSafetensors(file);
    const w = saved.tensors.get('features.4.weight')!;
    (w.data as Float32Array)[0] = Number.NaN;
    writeSafetensorsAtomic(file, saved.tensors, saved.metadata);
    const err = await fit(model(), { train: colourSquares(192, 1), test: testSet }, { ...base, out: dir, resume: true }).catch((e: unknown) => e) as IkunError;
    expect(err.code).toBe('DIVERGED');
    expect(err.message).toMatch(/in epoch 2, step 1 of 6: the gradient of 'features\.0\.weight' is NaN .*; 'features\.4\.weight', .* hold non-finite values\./);
    expect(() => checkpoint.readCheckpoint(file)).not.toThrow();
  });

  it("refuses onNan 'skip' with nanCheck 'epoch', and unknown values", async () => {
    const bad = (o: FitOptions) => fit(model(), { train: colourSquares(64, 1), test: testSet }, { ...base, epochs: 1, ...o }).catch((e: Error) => e.message);
    expect(await bad({ onNan: 'skip', nanCheck: 'epoch' })).toMatch(/onNan 'skip' decides every step, so it needs nanCheck 'step'/);
    expect(await bad({ onNan: 'ignore' as never })).toMatch(/fit: onNan must be one of 'stop', 'skip', got "ignore"/);
    expect(await bad({ checkpointEvery: 0 })).toMatch(/fit: checkpointEvery must be an integer >= 1, got 0/);
    expect(await bad({ checkpointEvery: 5 })).toMatch(/fit: checkpointEvery needs out/);
    expect(await bad({ signal: {} as never })).toMatch(/fit: signal must be an AbortSignal/);
  });
});
