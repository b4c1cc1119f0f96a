// Aggregation on hand-made metrics: means, sample sds, epochs to target and efficiency ratios computed by hand.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregateRuns, peaksOf, type FinishedRun } from '../../lib/experiment/aggregate.js';
import { gridPoints, writeExperiment, type ExperimentFile } from '../../lib/experiment/grid.js';
import { writeResults } from '../../lib/experiment/results.js';
import { firstEpochReaching, meanSd } from '../../lib/experiment/stats.js';
import { makeDirectories } from '../../lib/files.js';
import type { EpochMetrics } from '../../lib/fit.js';

function epochs(testAcc: number[], trainAcc: number[], rates: number[] = testAcc.map(() => 0.1)): EpochMetrics[] {
  return testAcc.map((t, i) => ({
    epoch: i + 1, train_loss: 1 - trainAcc[i]!, train_acc: trainAcc[i]!, test_loss: 1 - t, test_acc: t, lr: 0.1 / (i + 1), grad_norm: 0.5,
    epoch_s: 2, test_s: 0.5, samples_per_s: 1000, skipped_steps: 0, firing_rates: { 'conv_fc.2': rates[i]!, 'conv_fc.6': rates[i]! / 2 },
  }));
}

// ikun_v1-sgd: test [0.5, 0.8, 0.9] and [0.7, 0.8, 0.7]; kaiming-sgd: [0.4, 0.6, 0.78] and [0.5, 0.7, 0.8]
const RUNS: FinishedRun[] = [
  { init: 'ikun_v1', opt: 'sgd', seed: 2, metrics: epochs([0.7, 0.8, 0.7], [0.6, 0.8, 0.95]), hessian: null },
  { init: 'ikun_v1', opt: 'sgd', seed: 1, metrics: epochs([0.5, 0.8, 0.9], [0.5, 0.7, 0.85]), hessian: null },
  { init: 'kaiming', opt: 'sgd', seed: 1, metrics: epochs([0.4, 0.6, 0.78], [0.4, 0.6, 0.9]), hessian: null },
  { init: 'kaiming', opt: 'sgd', seed: 2, metrics: epochs([0.5, 0.7, 0.8], [0.5, 0.7, 0.8]), hessian: null },
];

describe('seed statistics', () => {
  it('mean and sample sd (n - 1); no sd for one value', () => {
    expect(meanSd([0.9, 0.7]).mean).toBeCloseTo(0.8, 12);
    expect(meanSd([0.9, 0.7]).sd).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(meanSd([1, 2, 3, 4]).sd).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(meanSd([0.42])).toEqual({ mean: 0.42, sd: null, n: 1 });
    expect(firstEpochReaching([0.1, 0.5, 0.4, 0.6], 0.5)).toBe(2);
    expect(firstEpochReaching([0.1, 0.2], 0.5)).toBeNull();
  });
});

describe('peaksOf', () => {
  it('keeps the largest value of each block at its middle', () => {
    expect(peaksOf({ grid: [0, 1, 2, 3, 4, 5, 6], density: [1, 5, 2, 0, 0, 9, 3] }, 3)).toEqual({ grid: [1, 4, 6], density: [5, 9, 3] });
  });
});

describe('aggregateRuns', () => {
  it('gives hand-computed means, sds, epochs to target and efficiency', () => {
    const a = aggregateRuns(RUNS, { target: 0.75 });
    expect(a.target).toBe(0.75);
    expect(a.target_source).toBe('given');
    const [ikun, kaiming] = a.groups;
    expect(ikun!.name).toBe('ikun_v1-sgd');
    expect(ikun!.seeds).toEqual([1, 2]);
    expect(ikun!.test_acc.mean).toBeCloseTo(0.8, 12);
    expect(ikun!.test_acc.sd).toBeCloseTo(0.1414213562, 9);
    expect(ikun!.best_test_acc.mean).toBeCloseTo(0.85, 12);
    expect(ikun!.best_test_acc.sd).toBeCloseTo(0.0707106781, 9);
    expect(ikun!.final_train_acc.mean).toBeCloseTo(0.9, 12);
    expect(ikun!.best_train_acc.mean).toBeCloseTo(0.9, 12);
    expect(ikun!.final_test_loss.mean).toBeCloseTo(0.2, 12);
    // mean test curve [0.6, 0.8, 0.8] reaches 0.75 at epoch 2; kaiming's [0.45, 0.65, 0.79] at epoch 3
    expect(ikun!.curves.map((c) => c.test_acc.mean).map((v) => +v.toFixed(12))).toEqual([0.6, 0.8, 0.8]);
    expect(ikun!.epochs_to_target).toBe(2);
    expect(ikun!.epochs_to_target_per_seed).toEqual([2, 2]);
    expect(kaiming!.epochs_to_target).toBe(3);
    expect(kaiming!.best_test_acc.mean).toBeCloseTo(0.79, 12);
    // kaiming is a baseline: ikun needs 2 epochs where it needs 3, a ratio of 1.5 ("50% better")
    expect(ikun!.efficiency).toEqual([{ baseline: 'kaiming-sgd', baseline_epochs_to_target: 3, epochs_to_target: 2, ratio: 1.5 }]);
    expect(kaiming!.efficiency).toEqual([]);
    expect(ikun!.curves[0]!.firing_rates['conv_fc.2']!.mean).toBeCloseTo(0.1, 12);
    expect(ikun!.hessian).toBeNull();
  });

  it('defaults the target to 95% of the best group mean best test accuracy', () => {
    const a = aggregateRuns(RUNS);
    expect(a.target).toBeCloseTo(0.95 * 0.85, 12);
    expect(a.groups[0]!.epochs_to_target).toBeNull(); // [0.6, 0.8, 0.8] stays below 0.8075
    expect(a.groups[0]!.efficiency[0]!.ratio).toBeNull();
  });

  it('reports no sd for a single seed and refuses a bad target', () => {
    const one = aggregateRuns([RUNS[0]!]);
    expect(one.groups[0]!.test_acc).toEqual({ mean: 0.7, sd: null, n: 1 });
    expect(() => aggregateRuns(RUNS, { target: 80 })).toThrow(/target must be a test accuracy in \(0, 1\] \(e\.g\. 0\.85/);
  });

  it('averages the Hessian numbers of the seeds and says whether all converged', () => {
    const hessian = (top: number, trace: number, converged: boolean) => ({
      ikun_version: 'x', checkpoint: 'c', settings: { top: 2, maxIter: 10, tol: 1e-3, trace: true, density: true, iter: 2, samples: 1, seed: 0 },
      density: { nodes: [-1, 3], weights: [0.25, 0.75], steps: 2 }, data: 'd', sample: true, images: 1,
      loss: 0.1, parameters: 10, eigenvalues: [top, top / 2], iterations: [5, 10], last_relative_change: [1e-4, converged ? 1e-4 : 0.2], converged: [true, converged],
      trace: { value: trace, standard_error: 1, sample_count: 10, converged: true, samples: [] }, seconds: 1,
    });
    const a = aggregateRuns([{ ...RUNS[0]!, hessian: hessian(10, 100, true) }, { ...RUNS[1]!, hessian: hessian(20, 300, false) }], { target: 0.5 });
    const h = a.groups[0]!.hessian!;
    expect(h.top_eigenvalue.mean).toBe(15);
    expect(h.top_eigenvalue.sd).toBeCloseTo(Math.sqrt(50), 12);
    expect(h.trace!.mean).toBe(200);
    expect(h.converged).toBe(false);
    expect(h.per_seed.map((s) => s.seed)).toEqual([1, 2]);
    // two Gaussians at -1 and 3, three times higher at 3: the chart's peaks sit there
    const d = h.density!;
    expect(d.grid).toHaveLength(400);
    const top = d.density.indexOf(Math.max(...d.density));
    expect(Math.abs(d.grid[top]! - 3)).toBeLessThan(0.02);
    const left = d.grid.map((g, i) => [g, d.density[i]!] as const).filter(([g]) => g < 1);
    const leftPeak = left.reduce((a, b) => (b[1] > a[1] ? b : a));
    expect(Math.abs(leftPeak[0] + 1)).toBeLessThan(0.02);
    expect(leftPeak[1] / d.density[top]!).toBeCloseTo(1 / 3, 1);
  });
});

describe('writeResults on a hand-made experiment folder', () => {
  it('writes results.json, results.csv and report.html from the finished points only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt12-agg-'));
    const spec = { inits: ['ikun_v1', 'kaiming'] as ExperimentFile['inits'], opts: ['sgd'] as ExperimentFile['opts'], seeds: [1, 2, 3], config: { epochs: 3, sample: true }, hessian: null };
    const file: ExperimentFile = { format: 'ikun-experiment/1', ikun_version: 'test', created: 'now', ...spec, points: gridPoints(spec) };
    makeDirectories(dir);
    writeExperiment(dir, file);
    for (const r of RUNS) {
      const runDir = join(dir, 'runs', `${r.init}-${r.opt}-s${r.seed}`);
      makeDirectories(runDir);
      writeFileSync(join(runDir, 'metrics.jsonl'), r.metrics.map((m) => JSON.stringify(m)).join('\n') + '\n');
      writeFileSync(join(runDir, 'last.safetensors'), ''); // a finished epoch's checkpoint (only its presence is read)
    }
    // seed 3 of ikun_v1 stopped after one epoch: pending, left out of the numbers
    const partial = join(dir, 'runs', 'ikun_v1-sgd-s3');
    makeDirectories(partial);
    writeFileSync(join(partial, 'metrics.jsonl'), JSON.stringify(epochs([0.1], [0.1])[0]) + '\n');
    writeFileSync(join(partial, 'last.safetensors'), '');
    const results = writeResults(dir, { target: 0.75 });
    expect(results.points).toEqual({
      total: 6, done: 4, pending: [{ run: 'runs/ikun_v1-sgd-s3', state: 'partial', epochs_done: 1, epochs: 3 }, { run: 'runs/kaiming-sgd-s3', state: 'pending', epochs_done: 0, epochs: 3 }],
    });
    const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(json.groups.map((g: { init: string; opt: string; seeds: number[] }) => [g.init, g.opt, g.seeds])).toEqual([['ikun_v1', 'sgd', [1, 2]], ['kaiming', 'sgd', [1, 2]]]);
    expect(json.groups[0].test_acc.mean).toBeCloseTo(0.8, 12);
    expect(json.groups[0].epochs_to_target).toBe(2);
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const col = (name: string): number => csv[0]!.indexOf(name);
    expect(csv).toHaveLength(3);
    expect(csv[1]![col('init')]).toBe('ikun_v1');
    expect(Number(csv[1]![col('final_test_acc_mean')])).toBeCloseTo(0.8, 12);
    expect(Number(csv[1]![col('final_test_acc_sd')])).toBeCloseTo(0.1414213562, 9);
    expect(csv[1]![col('epochs_to_target')]).toBe('2');
    expect(csv[1]![col('efficiency_vs_kaiming-sgd')]).toBe('1.5');
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('Not finished, left out of the numbers: runs/ikun_v1-sgd-s3 (partial, 1/3 epochs)');
    expect(html).toContain('<td class="text">ikun_v1-sgd</td>');
  });

  it('says what to do when nothing has finished', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt12-agg-'));
    const spec = { inits: ['kaiming'] as ExperimentFile['inits'], opts: ['sgd'] as ExperimentFile['opts'], seeds: [1], config: { sample: true }, hessian: null };
    writeExperiment(dir, { format: 'ikun-experiment/1', ikun_version: 'test', created: 'now', ...spec, points: gridPoints(spec) });
    expect(() => writeResults(dir)).toThrow(/no point of .* has finished training yet \(1 pending\); run ikun experiment/);
    expect(() => writeResults(join(dir, 'nope'))).toThrow(/is not an experiment folder \(no experiment.json\); start one with ikun experiment --out/);
  });
});
