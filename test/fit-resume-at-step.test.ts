// fit() stopped inside an epoch (a signal, or a kill after a checkpoint every N steps) and resumed there:
// the metrics of the finished run are those of a run that never stopped. Also the previous checkpoint
// kept beside the last one, and resuming from checkpoints that lack optimiser or scheduler state.
import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as checkpoint from '../lib/checkpoint.js';
import { IkunError, fit, manualSeed, models, nn, type EpochMetrics, type FitOptions } from '../lib/index.js';
import { readSafetensors } from '../lib/safetensors.js';
import { colourSquares } from './helpers/synthetic.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-resume-step-'));
const trainSet = colourSquares(192, 1), testSet = colourSquares(96, 2);
const withoutTimes = (m: EpochMetrics): Partial<EpochMetrics> => {
  const { epoch_s: _a, test_s: _b, samples_per_s: _c, ...rest } = m;
  return rest;
};
const model = (): nn.Module => {
  manualSeed(11); // the same initial weights in every run
  return models.spikingVgg({ widths: [4, 'M', 8, 'M'], inputShape: [3, 8, 8], classes: 3, T: 2 });
};
// 6 training steps per epoch, 3 epochs; momentum and a cosine schedule so that lost optimiser or
// schedule state would show in the numbers.
const base: FitOptions = { epochs: 3, batchSize: 32, optimizer: 'sgd', lr: 0.2, momentum: 0.9 };
const run = (out: string | undefined, extra: FitOptions = {}) => fit(model(), { train: trainSet, test: testSet }, { ...base, ...(out ? { out } : {}), ...extra });
const lines = (dir: string): string[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.stringify(withoutTimes(JSON.parse(l) as EpochMetrics)));

/** Aborts after training step `step` of epoch `epoch` (phase 'train'), or test step when phase is 'test'. */
function stopAt(epoch: number, step: number, phase: 'train' | 'test' = 'train'): { signal: AbortSignal; onStep: FitOptions['onStep'] } {
  const controller = new AbortController();
  return { signal: controller.signal, onStep: (s) => { if (s.epoch === epoch && s.step === step && s.phase === phase) controller.abort(); } };
}

describe('fit stopped inside an epoch', () => {
  it('a signal after step 4 of epoch 2 saves that point (epoch "1", step "4") and resume finishes with the metrics of an unstopped run', async () => {
    const full = await run(join(tmp(), 'full'));
    const dir = join(tmp(), 'split');
    const err = await run(dir, stopAt(2, 4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IkunError);
    expect((err as IkunError).code).toBe('INTERRUPTED');
    expect((err as IkunError).message).toMatch(/stopped in epoch 2 after step 4 of 6; last.safetensors holds this point: continue the run with resume: true/);
    expect((err as IkunError).details).toMatchObject({ epoch: 1, step: 4, steps: 6, dir });
    const meta = readSafetensors(join(dir, 'last.safetensors')).metadata;
    expect(meta.epoch).toBe('1');
    expect(meta.step).toBe('4');
    expect(JSON.parse(meta.epoch_progress!)).toMatchObject({ steps: 4, samples: 128 });
    expect(lines(dir)).toHaveLength(1);
    const log: string[] = [];
    const resumed = await run(dir, { resume: true, log: (l) => log.push(l) });
    expect(log).toContain(`resuming ${dir} in epoch 2 after step 4 (a run of 3 epochs)`);
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
    expect(lines(dir)).toEqual(lines(full.runDir!));
    expect(readSafetensors(join(dir, 'last.safetensors')).metadata).toMatchObject({ epoch: '3', step: '0' });
  });

  it('a stop during the test pass keeps the epoch\'s training (step 6 of 6) and resume only redoes the test pass', async () => {
    const full = await run(undefined);
    const dir = join(tmp(), 'test-pass');
    await expect(run(dir, stopAt(1, 1, 'test'))).rejects.toThrow(/stopped in epoch 1 after step 6 of 6/);
    expect(readSafetensors(join(dir, 'last.safetensors')).metadata).toMatchObject({ epoch: '0', step: '6' });
    const steps: string[] = [];
    const resumed = await run(dir, { resume: true, onStep: (s) => steps.push(`${s.epoch}${s.phase}${s.step}`) });
    expect(steps[0]).toBe('1test1'); // no training step of epoch 1 is run again
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
  });

  it('checkpointEvery writes last.safetensors inside epochs; a run killed after one resumes there with the same metrics (also with nanCheck "epoch")', async () => {
    const full = await run(undefined);
    for (const nanCheck of ['step', 'epoch'] as const) {
      const dir = join(tmp(), `every-${nanCheck}`);
      // The kill: a hook that throws after step 5 of epoch 2 (global step 11), whose checkpoint is at global step 10.
      const killed = await run(dir, { checkpointEvery: 5, nanCheck, onStep: (s) => { if (s.epoch === 2 && s.step === 5 && s.phase === 'train') throw new Error('killed'); } })
        .catch((e: Error) => e.message);
      expect(killed).toBe('killed');
      expect(readSafetensors(join(dir, 'last.safetensors')).metadata).toMatchObject({ epoch: '1', step: '4' });
      expect(readSafetensors(join(dir, 'last.prev.safetensors')).metadata).toMatchObject({ epoch: '1', step: '0' });
      const resumed = await run(dir, { resume: true, checkpointEvery: 5, nanCheck });
      expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
    }
  });

  it('a truncated last.safetensors: resume says so and continues from last.prev.safetensors; both unreadable fails naming both', async () => {
    const full = await run(undefined);
    const dir = join(tmp(), 'truncated');
    await run(dir, { onEpoch: (m) => { if (m.epoch === 2) throw new Error('stop'); } }).catch(() => {});
    expect(readSafetensors(join(dir, 'last.prev.safetensors')).metadata).toMatchObject({ epoch: '1', step: '0' });
    const size = readFileSync(join(dir, 'last.safetensors')).length;
    truncateSync(join(dir, 'last.safetensors'), Math.floor(size / 2));
    const log: string[] = [];
    const resumed = await run(dir, { resume: true, log: (l) => log.push(l) });
    expect(log.find((l) => l.startsWith('last.safetensors cannot be read'))).toMatch(
      /^last.safetensors cannot be read \(.*truncated or corrupt\); resuming from last.prev.safetensors \(after epoch 1\) instead$/);
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
    // a new checkpoint replaced the truncated one: both files read again
    expect(readSafetensors(join(dir, 'last.safetensors')).metadata.epoch).toBe('3');
    truncateSync(join(dir, 'last.safetensors'), 10);
    writeFileSync(join(dir, 'last.prev.safetensors'), 'not a checkpoint');
    const err = await run(dir, { resume: true, epochs: 4 }).catch((e: unknown) => e) as IkunError;
    expect(err.code).toBe('CHECKPOINT_UNREADABLE');
    expect(err.message).toMatch(/no checkpoint in '.*' can be read \(last.safetensors: .*; last.prev.safetensors: .*\)/);
  });

  it('a truncated first checkpoint (no previous one yet) fails naming the file and that there is nothing to fall back to', async () => {
    const dir = join(tmp(), 'first');
    await run(dir, { epochs: 1 });
    expect(existsSync(join(dir, 'last.prev.safetensors'))).toBe(false);
    truncateSync(join(dir, 'last.safetensors'), 40);
    const err = await run(dir, { resume: true }).catch((e: unknown) => e) as IkunError;
    expect(err.code).toBe('CHECKPOINT_UNREADABLE');
    expect(err.message).toMatch(/no checkpoint in '.*' can be read \(last.safetensors: .*truncated or corrupt.*; no last.prev.safetensors to fall back to\)/);
  });

  it('a checkpoint without optimiser or scheduler state (written elsewhere) says so in one line and places the schedule at its epoch', async () => {
    const dir = join(tmp(), 'foreign');
    const first = await run(dir, { epochs: 1 });
    const m = model();
    checkpoint.loadModelState(m, checkpoint.readCheckpoint(join(dir, 'last.safetensors')));
    // as a PyTorch script would write it: weights and an epoch, nothing else of ikun's
    checkpoint.saveCheckpoint(join(dir, 'last.safetensors'), m, { metadata: { epoch: '1' } });
    expect(existsSync(join(dir, 'last.prev.safetensors'))).toBe(false);
    const log: string[] = [];
    const resumed = await run(dir, { resume: true, epochs: 2, log: (l) => log.push(l) });
    const warnings = log.filter((l) => l.startsWith('resume:'));
    expect(warnings).toEqual([
      'resume: last.safetensors holds no optimiser state (SGD starts without its momentum or moment estimates) and ' +
      'no scheduler state (the CosineAnnealingLR schedule is set to epoch 1 from its settings: lr 0.100)',
    ]);
    expect(resumed.metrics.map((x) => x.epoch)).toEqual([1, 2]);
    expect(resumed.metrics[0]).toEqual(first.metrics[0]);
    expect(resumed.metrics[1]!.lr).toBeCloseTo(0.1, 12); // cosine over 2 epochs, at epoch 1: half of 0.2
  });
});
