// The analysis behind `ikun hessian` (ikun-paper.md, "Hessian analysis"): for each checkpoint, its model
// from the run's config, the first test images, the top-k eigenvalues and optionally the trace and the
// spectral density of the loss Hessian; then the JSON, CSV and SVG files.
import { basename, dirname, join } from 'node:path';
import { ikunVersion } from '../checkpoint.js';
import { loadCheckpointModel, type ModelConfig } from '../checkpoint-model.js';
import { firstTestImages, testSetFor } from '../eval.js';
import type { Dataset } from '../data.js';
import { writeFileAtomic } from '../files.js';
import {
  densityCurve,
  density as densityOfModel,
  disposeVector,
  topEigenvalues,
  trace as traceOfModel,
  type SpectralProgress,
} from '../hessian.js';
import * as lossFns from '../loss.js';
import { densitiesPlot, eigenvaluePlot } from '../svg.js';
import type { HessianArgs } from './hessian-flags.js';
import type { HessianProgress } from './hessian-progress.js';

// ---------------------------------------------------------------------------------------------------------
// Files

function csvField(value: string | number): string {
  const s = String(value);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// ---------------------------------------------------------------------------------------------------------
// Runs and data

/** A test set, what it is, and whether it is the bundled sample (the run's, or asked for with --sample). */
export interface TestData {
  test: Dataset;
  source: string;
  sample: boolean;
}

function testSet(args: HessianArgs, config: ModelConfig, cache: Map<string, TestData>): TestData {
  const sample = args.sample || config.sample === true;
  const dataset = config.dataset === 'mnist' ? 'mnist' : 'fashion-mnist';
  const dir = args.data ?? (typeof config.data === 'string' && config.data !== '' ? config.data : undefined);
  const key = sample ? 'sample' : `${dataset}:${dir ?? ''}`;
  let entry = cache.get(key);
  if (!entry) {
    entry = testSetFor(config, sample ? { sample: true } : dir !== undefined ? { data: dir } : {});
    cache.set(key, entry);
  }
  return entry;
}

export function labelsFor(paths: string[]): string[] {
  const short = paths.map((p) => `${basename(dirname(p))}/${basename(p)}`);
  return short.map((s, i) => (short.indexOf(s) !== short.lastIndexOf(s) ? paths[i]! : s));
}

// ---------------------------------------------------------------------------------------------------------
// The command

/** One line per eigenvalue: its value, the steps it took, its last relative change and whether it settled. */
export function eigenvalueLines(values: readonly number[], iterations: readonly number[], changes: ReadonlyArray<number | null>,
  converged: readonly boolean[]): string[] {
  return values.map((v, i) => {
    const change = changes[i];
    const moved = change === null || change === undefined ? 'one step, no change measured' : `last relative change ${change.toExponential(2)}`;
    return `    #${i + 1} ${v.toPrecision(6)}  ${iterations[i]} iterations, ${moved}, ${converged[i] ? 'converged' : 'NOT converged'}`;
  });
}

export interface CheckpointResult {
  checkpoint: string;
  label: string;
  config_source: string;
  config: ModelConfig;
  metadata: Record<string, string>;
  data: string;
  /** The bundled sample's test images were used (the run trained on it, or --sample). */
  sample: boolean;
  samples: number;
  labels: number[];
  loss: number;
  prediction: number[];
  parameters: number;
  eigenvalues: number[];
  eigen_iterations: number[];
  /** Per eigenvalue: the relative change at its last step (null after one step), and whether it fell below --tol. */
  eigen_last_relative_change: Array<number | null>;
  eigen_converged: boolean[];
  eigen_hvps: number;
  eigen_seconds: number;
  trace?: { trace: number; standard_error: number | null; sample_count: number; converged: boolean; samples: number[]; hvps: number; seconds: number };
  density?: { nodes: number[][]; weights: number[][]; variance: number; bins: number; grid_min: number; grid_max: number; hvps: number; seconds: number };
}

export function analyse(args: HessianArgs, path: string, label: string, index: number, count: number, report: HessianProgress,
  cache: Map<string, TestData>): { result: CheckpointResult; grid?: number[]; density?: number[] } {
  const { model, config, configSource: source, metadata } = loadCheckpointModel(path);
  const { test, source: dataSource, sample: usedSample } = testSet(args, config, cache);
  const { x, labels } = firstTestImages(test, args.samples, '--samples', dataSource);
  try {
    const rate = model.forward(x);
    const { loss, grad } = lossFns.mseRate(rate, labels);
    const prediction = Array.from(lossFns.predict(rate));
    rate.dispose();
    grad.dispose();
    model.resetState();
    report.line(`[${index}/${count}] ${label}: ${model.parameterCount()} parameters, ${args.samples} test image(s) of the ${dataSource}, loss ${loss.toPrecision(6)}`);

    let hvps = 0;
    let start = performance.now();
    const onProgress = (p: SpectralProgress): void => {
      hvps++;
      report.progress(index, count, p);
    };
    const eig = topEigenvalues(model, x, labels, { k: args.top, maxIter: args.maxIter, tol: args.tol, seed: args.seed, onProgress });
    for (const v of eig.eigenvectors) disposeVector(v);
    const result: CheckpointResult = {
      checkpoint: path, label, config_source: source, config, metadata, data: dataSource, sample: usedSample, samples: args.samples,
      labels: Array.from(labels), loss, prediction, parameters: model.parameterCount(), eigenvalues: eig.eigenvalues,
      eigen_iterations: eig.iterations, eigen_last_relative_change: eig.lastRelativeChanges, eigen_converged: eig.converged, eigen_hvps: hvps, eigen_seconds: (performance.now() - start) / 1000,
    };
    report.line(`  top ${args.top} eigenvalue(s): ${eig.eigenvalues.slice(0, 5).map((v) => v.toPrecision(6)).join(', ')}${args.top > 5 ? ', ...' : ''} (${hvps} Hessian-vector products, ${result.eigen_seconds.toFixed(1)} s)`);
    for (const line of eigenvalueLines(eig.eigenvalues, eig.iterations, eig.lastRelativeChanges, eig.converged)) report.line(line);
    const unsettled = eig.converged.map((c, i) => (c ? 0 : i + 1)).filter((i) => i > 0);
    if (unsettled.length > 0)
      report.warn(`ikun: warning: ${label}: eigenvalue${unsettled.length > 1 ? 's' : ''} ${unsettled.join(', ')} did not converge within --max-iter ${args.maxIter} ` +
        `(relative change still above --tol ${args.tol}); raise --max-iter for numbers you can trust`);
    if (args.trace) {
      hvps = 0;
      start = performance.now();
      const t = traceOfModel(model, x, labels, { maxIter: args.maxIter, tol: args.tol, seed: args.seed, onProgress });
      result.trace = { trace: t.trace, standard_error: t.standardError, sample_count: t.samples.length, converged: t.converged, samples: t.samples, hvps,
        seconds: (performance.now() - start) / 1000 };
      const se = t.standardError === null ? 'no standard error from 1 sample' : `± ${t.standardError.toPrecision(3)} standard error`;
      const range = `samples from ${Math.min(...t.samples).toPrecision(4)} to ${Math.max(...t.samples).toPrecision(4)}`;
      report.line(`  trace: ${t.trace.toPrecision(6)} ${se} (${t.samples.length} Rademacher samples, ${range}${t.converged ? '' : ', not converged'}, ${result.trace.seconds.toFixed(1)} s)`);
      if (!t.converged)
        report.warn(`ikun: warning: ${label}: the trace's running mean still moved by more than --tol ${args.tol} after --max-iter ${args.maxIter} samples; raise --max-iter`);
    }
    let curve: { grid: number[]; density: number[] } | undefined;
    if (args.density) {
      hvps = 0;
      start = performance.now();
      const d = densityOfModel(model, x, labels, { iter: args.iter, nV: 1, seed: args.seed, onProgress });
      const c = densityCurve(d.nodes, d.weights);
      curve = c;
      result.density = { nodes: d.nodes, weights: d.weights, variance: c.variance, bins: c.grid.length, grid_min: c.grid[0]!, grid_max: c.grid[c.grid.length - 1]!,
        hvps, seconds: (performance.now() - start) / 1000 };
      const nodes = d.nodes[0]!;
      report.line(`  density: ${nodes.length} Lanczos nodes in [${Math.min(...nodes).toPrecision(4)}, ${Math.max(...nodes).toPrecision(4)}] (${result.density.seconds.toFixed(1)} s)`);
    }
    return { result, ...(curve ?? {}) };
  } finally {
    x.dispose();
    model.resetState();
  }
}

export function writeResults(dir: string, args: HessianArgs, results: CheckpointResult[], curves: Array<{ grid?: number[]; density?: number[] }>): void {
  const many = results.length > 1;
  const options = { samples: args.samples, top: args.top, trace: args.trace, density: args.density, iter: args.iter, maxIter: args.maxIter, tol: args.tol,
    seed: args.seed, sample_flag: args.sample, data: args.data ?? null, nV: 1, loss: 'mse', mode: 'eval' };
  // The data actually used (a run trained on the bundled sample is analysed on it without --sample).
  const data = { sample: results.every((r) => r.sample), sources: [...new Set(results.map((r) => r.data))] };
  writeFileAtomic(join(dir, 'hessian.json'), JSON.stringify({ ikun_version: ikunVersion(), created: new Date().toISOString(), options, sample: data.sample, data, checkpoints: results }, null, 2) + '\n');

  const suffix = (r: CheckpointResult): string => (many ? `,${csvField(r.label)}` : '');
  const eigRows = [`rank,eigenvalue${many ? ',checkpoint' : ''}`];
  for (const r of results) r.eigenvalues.forEach((v, i) => eigRows.push(`${i + 1},${v}${suffix(r)}`));
  writeFileAtomic(join(dir, 'eigenvalues.csv'), eigRows.join('\n') + '\n');
  writeFileAtomic(join(dir, 'eigenvalues.svg'), eigenvaluePlot(results.map((r) => ({ label: many ? r.label : `${r.label} (top ${r.eigenvalues.length})`, eigenvalues: r.eigenvalues }))));

  if (args.trace) {
    const rows = [`sample,value,running_mean${many ? ',checkpoint' : ''}`];
    for (const r of results) {
      let sum = 0;
      r.trace!.samples.forEach((v, i) => {
        sum += v;
        rows.push(`${i + 1},${v},${sum / (i + 1)}${suffix(r)}`);
      });
    }
    writeFileAtomic(join(dir, 'trace.csv'), rows.join('\n') + '\n');
  }
  if (args.density) {
    const rows = [`grid,density${many ? ',checkpoint' : ''}`];
    results.forEach((r, i) => {
      const c = curves[i]!;
      c.grid!.forEach((g, j) => rows.push(`${g},${c.density![j]}${suffix(r)}`));
    });
    writeFileAtomic(join(dir, 'density.csv'), rows.join('\n') + '\n');
    writeFileAtomic(join(dir, 'density.svg'), densitiesPlot(results.map((r, i) => ({ label: many ? r.label : '', grid: curves[i]!.grid!, density: curves[i]!.density! }))));
  }
}
