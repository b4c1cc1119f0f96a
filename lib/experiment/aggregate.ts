// Aggregation of an experiment (`ikun experiment report DIR`): per (init, optimiser) group the seeds'
// final and best accuracies as mean ± sd, the mean learning curves, epochs to a target test accuracy, the
// efficiency ratio against each baseline, and the Hessian numbers when measured. Only finished points
// count (a partial curve would bend the mean); the others are listed as pending.
import type { EpochMetrics } from '../fit.js';
import { densityCurve } from '../hessian.js';
import type { InitMethod } from '../init.js';
import { fail } from '../errors.js';
import type { OptName } from './grid.js';
import type { PointHessian } from './point-hessian.js';
import { firstEpochReaching, meanSd, type MeanSd } from './stats.js';

/** The inits the paper compares IKUN against. */
export const BASELINE_INITS: readonly string[] = ['xavier', 'kaiming', 'normal', 'lecun'];

export interface FinishedRun {
  init: InitMethod;
  opt: OptName;
  seed: number;
  metrics: EpochMetrics[];
  hessian: PointHessian | null;
}

export interface CurvePoint {
  epoch: number;
  train_loss: MeanSd;
  train_acc: MeanSd;
  test_loss: MeanSd;
  test_acc: MeanSd;
  lr: number;
  firing_rates: Record<string, MeanSd>;
}

export interface Efficiency {
  /** The baseline group, '<init>-<opt>'. */
  baseline: string;
  baseline_epochs_to_target: number | null;
  epochs_to_target: number | null;
  /** baseline epochs / this group's epochs: 1.5 is "50% more efficient"; null when either never reached the target. */
  ratio: number | null;
}

export interface GroupResult {
  init: InitMethod;
  opt: OptName;
  name: string;
  seeds: number[];
  runs: number;
  epochs: number;
  /** Final test accuracy (last epoch). */
  test_acc: MeanSd;
  final_train_acc: MeanSd;
  final_test_acc: MeanSd;
  best_train_acc: MeanSd;
  best_test_acc: MeanSd;
  final_train_loss: MeanSd;
  final_test_loss: MeanSd;
  /** The first epoch the group's mean test accuracy reaches the target (null: never). */
  epochs_to_target: number | null;
  /** The same per seed, in the order of seeds. */
  epochs_to_target_per_seed: Array<number | null>;
  efficiency: Efficiency[];
  curves: CurvePoint[];
  hessian: {
    top_eigenvalue: MeanSd;
    trace: MeanSd | null;
    /** Every eigenvalue and trace of every seed settled below the tolerance. */
    converged: boolean;
    per_seed: Array<{ seed: number; eigenvalues: number[]; converged: boolean[]; trace: number | null; trace_standard_error: number | null }>;
    /** The seeds' spectral densities averaged (PyHessian's smoothing on 10,000 bins), shown as the peak of each block of bins. */
    density: { grid: number[]; density: number[] } | null;
  } | null;
}

export interface Aggregate {
  target: number;
  target_source: 'given' | '95% of the best group mean best test accuracy';
  groups: GroupResult[];
}

const pick = (runs: readonly FinishedRun[], f: (m: EpochMetrics[]) => number): MeanSd => meanSd(runs.map((r) => f(r.metrics)));
const last = (m: EpochMetrics[]): EpochMetrics => m[m.length - 1]!;
const best = (m: EpochMetrics[], key: 'train_acc' | 'test_acc'): number => Math.max(...m.map((e) => e[key]));

function curvesOf(runs: readonly FinishedRun[], epochs: number): CurvePoint[] {
  const curves: CurvePoint[] = [];
  for (let e = 0; e < epochs; e++) {
    const at = runs.map((r) => r.metrics[e]!);
    const layers = [...new Set(at.flatMap((m) => Object.keys(m.firing_rates ?? {})))];
    curves.push({
      epoch: e + 1,
      train_loss: meanSd(at.map((m) => m.train_loss)), train_acc: meanSd(at.map((m) => m.train_acc)),
      test_loss: meanSd(at.map((m) => m.test_loss)), test_acc: meanSd(at.map((m) => m.test_acc)),
      lr: at[0]!.lr,
      firing_rates: Object.fromEntries(layers.map((l) => [l, meanSd(at.map((m) => m.firing_rates?.[l]).filter((v): v is number => typeof v === 'number'))])),
    });
  }
  return curves;
}

const DENSITY_POINTS = 400;

/**
 * A smoothed density of 10,000 bins down to `points` for a chart: each block's largest value at its
 * middle, so the narrow Gaussians of the smoothing are not lost between the points kept.
 */
export function peaksOf(curve: { grid: readonly number[]; density: readonly number[] }, points: number): { grid: number[]; density: number[] } {
  const block = Math.max(1, Math.ceil(curve.grid.length / points));
  const grid: number[] = [], density: number[] = [];
  for (let start = 0; start < curve.grid.length; start += block) {
    const end = Math.min(start + block, curve.grid.length);
    grid.push(curve.grid[Math.floor((start + end - 1) / 2)]!);
    density.push(Math.max(...curve.density.slice(start, end)));
  }
  return { grid, density };
}

function hessianOf(runs: readonly FinishedRun[]): GroupResult['hessian'] {
  const measured = runs.filter((r) => r.hessian !== null);
  if (measured.length === 0) return null;
  const traces = measured.map((r) => r.hessian!.trace).filter((t) => t !== null);
  const densities = measured.map((r) => r.hessian!.density).filter((d) => d !== null && d !== undefined);
  return {
    top_eigenvalue: meanSd(measured.map((r) => r.hessian!.eigenvalues[0]!)),
    trace: traces.length > 0 ? meanSd(traces.map((t) => t!.value)) : null,
    converged: measured.every((r) => r.hessian!.converged.every(Boolean) && (r.hessian!.trace?.converged ?? true)),
    per_seed: measured.map((r) => ({
      seed: r.seed, eigenvalues: r.hessian!.eigenvalues, converged: r.hessian!.converged, trace: r.hessian!.trace?.value ?? null,
      trace_standard_error: r.hessian!.trace?.standard_error ?? null,
    })),
    density: densities.length > 0 ? peaksOf(densityCurve(densities.map((d) => d!.nodes), densities.map((d) => d!.weights)), DENSITY_POINTS) : null,
  };
}

/**
 * Groups finished runs by (init, opt) in first-seen order. target: a test accuracy in (0, 1]; by default
 * 95% of the best group's mean best test accuracy.
 */
export function aggregateRuns(runs: readonly FinishedRun[], options: { target?: number } = {}): Aggregate {
  if (options.target !== undefined && !(options.target > 0 && options.target <= 1))
    fail(`target must be a test accuracy in (0, 1] (e.g. 0.85 for 85%), got ${options.target}`);
  const byGroup = new Map<string, FinishedRun[]>();
  for (const r of runs) {
    if (r.metrics.length === 0) fail(`run ${r.init}-${r.opt}-s${r.seed} has no epochs; only finished runs can be aggregated`);
    const key = `${r.init}-${r.opt}`;
    byGroup.set(key, [...(byGroup.get(key) ?? []), r]);
  }
  const partial = [...byGroup.entries()].map(([name, members]) => {
    const sorted = [...members].sort((a, b) => a.seed - b.seed);
    const epochs = Math.min(...sorted.map((r) => r.metrics.length));
    return { name, members: sorted, epochs, curves: curvesOf(sorted, epochs) };
  });
  const bestMean = Math.max(...partial.map((g) => pick(g.members, (m) => best(m, 'test_acc')).mean));
  const target = options.target ?? 0.95 * bestMean;
  const groups: GroupResult[] = partial.map(({ name, members, epochs, curves }) => {
    const final = pick(members, (m) => last(m).test_acc);
    return {
      init: members[0]!.init, opt: members[0]!.opt, name, seeds: members.map((r) => r.seed), runs: members.length, epochs,
      test_acc: final, final_train_acc: pick(members, (m) => last(m).train_acc), final_test_acc: final,
      best_train_acc: pick(members, (m) => best(m, 'train_acc')), best_test_acc: pick(members, (m) => best(m, 'test_acc')),
      final_train_loss: pick(members, (m) => last(m).train_loss), final_test_loss: pick(members, (m) => last(m).test_loss),
      epochs_to_target: firstEpochReaching(curves.map((c) => c.test_acc.mean), target),
      epochs_to_target_per_seed: members.map((r) => firstEpochReaching(r.metrics.map((m) => m.test_acc), target)),
      efficiency: [], curves, hessian: hessianOf(members),
    };
  });
  for (const g of groups) {
    for (const b of groups) {
      if (b === g || b.opt !== g.opt || !BASELINE_INITS.includes(b.init)) continue;
      const ratio = g.epochs_to_target !== null && b.epochs_to_target !== null ? b.epochs_to_target / g.epochs_to_target : null;
      g.efficiency.push({ baseline: b.name, baseline_epochs_to_target: b.epochs_to_target, epochs_to_target: g.epochs_to_target, ratio });
    }
  }
  return { target, target_source: options.target !== undefined ? 'given' : '95% of the best group mean best test accuracy', groups };
}
