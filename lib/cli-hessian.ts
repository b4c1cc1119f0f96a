// `ikun hessian`: the paper's Hessian analysis (ikun-paper.md, "Hessian analysis") of trained checkpoints:
// top-k eigenvalues, optionally the trace and the spectral density of the loss Hessian on the first test
// images, written as JSON, CSV and SVG. Exit codes: 0 done, 1 the analysis failed (missing or corrupt
// checkpoint, missing data, unwritable folder, ...), 2 bad flags.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as checkpoint from './checkpoint.js';
import { loadFashionMnist, loadMnist, loadSample, type Dataset } from './data.js';
import { fail } from './errors.js';
import { cliMessage } from './cli-errors.js';
import { ensureWritableFolder, writeFileAtomic } from './files.js';
import {
  densityCurve,
  density as densityOfModel,
  disposeVector,
  topEigenvalues,
  trace as traceOfModel,
  type SpectralProgress,
} from './hessian.js';
import * as lossFns from './loss.js';
import { CSNN } from './models.js';
import { native } from './native.js';
import * as surrogate from './surrogate.js';
import { densitiesPlot, eigenvaluePlot } from './svg.js';
import { Tensor } from './tensor.js';
import { DEFAULT_CONFIG, type TrainConfig } from './train.js';

export class HessianUsageError extends Error {}

export interface HessianArgs {
  checkpoints: string[];
  samples: number;
  top: number;
  trace: boolean;
  density: boolean;
  iter: number;
  maxIter: number;
  tol: number;
  seed: number;
  data?: string;
  sample: boolean;
  out?: string;
  threads?: number;
  progress: boolean;
  help: boolean;
}

type Key = Exclude<keyof HessianArgs, 'checkpoints'> | 'checkpoint';
interface Flag {
  key: Key;
  kind: 'string' | 'integer' | 'number' | 'boolean';
  help: string;
  min?: number;
  max?: number;
}

export const HESSIAN_DEFAULTS = Object.freeze({ samples: 1, top: 50, iter: 100, maxIter: 100, tol: 1e-3, seed: 0 });

const HESSIAN_FLAGS: Record<string, Flag> = {
  '--checkpoint': { key: 'checkpoint', kind: 'string', help: 'checkpoint to analyse, e.g. RUN/best.safetensors; repeat to compare several' },
  '--samples': { key: 'samples', kind: 'integer', min: 1, help: `first N test images the loss is taken on (default ${HESSIAN_DEFAULTS.samples}, the paper's)` },
  '--top': { key: 'top', kind: 'integer', min: 1, help: `top eigenvalues by power iteration (default ${HESSIAN_DEFAULTS.top})` },
  '--trace': { key: 'trace', kind: 'boolean', help: "also estimate the trace (Hutchinson's method)" },
  '--density': { key: 'density', kind: 'boolean', help: 'also estimate the spectral density (stochastic Lanczos quadrature)' },
  '--iter': { key: 'iter', kind: 'integer', min: 1, help: `Lanczos steps for --density (default ${HESSIAN_DEFAULTS.iter})` },
  '--max-iter': { key: 'maxIter', kind: 'integer', min: 1, help: `power iterations per eigenvalue and trace samples at most (default ${HESSIAN_DEFAULTS.maxIter})` },
  '--tol': { key: 'tol', kind: 'number', help: `relative tolerance that ends an eigenvalue or the trace (default ${HESSIAN_DEFAULTS.tol})` },
  '--seed': { key: 'seed', kind: 'integer', min: 0, help: `seed of the random vectors (default ${HESSIAN_DEFAULTS.seed})` },
  '--data': { key: 'data', kind: 'string', help: "folder with the IDX files (default: the run's --data, $IKUN_DATA, /usr/share/datasets/fashion-mnist, ./data)" },
  '--sample': { key: 'sample', kind: 'boolean', help: 'use the bundled sample (also used when the run trained on it)' },
  '--out': { key: 'out', kind: 'string', help: "folder for the results (default: the first checkpoint's folder + /hessian)" },
  '--threads': { key: 'threads', kind: 'integer', min: 1, max: 1024, help: 'CPU threads (default: all cores)' },
  '--no-progress': { key: 'progress', kind: 'boolean', help: 'no progress bar, plain lines only' },
  '--help': { key: 'help', kind: 'boolean', help: 'show this help' },
};

export function hessianHelp(): string {
  const lines = [
    'Usage: ikun hessian --checkpoint RUN/best.safetensors [--checkpoint OTHER ...] [flags]',
    '',
    "Analyses the loss Hessian of trained CSNN checkpoints (eval mode, the MSE loss on the first test images), as",
    'the paper does with PyHessian: the top eigenvalues, optionally the trace and the spectral density. Writes',
    'hessian.json, eigenvalues.csv, eigenvalues.svg (all checkpoints overlaid) and, when asked, trace.csv,',
    'density.csv and density.svg. The model shape comes from the config.json next to each checkpoint.',
    '',
    'Flags:',
  ];
  for (const [name, f] of Object.entries(HESSIAN_FLAGS)) {
    const value = f.kind === 'boolean' ? '' : f.kind === 'string' ? (name === '--checkpoint' ? ' FILE' : name === '--out' || name === '--data' ? ' DIR' : ' VALUE') : f.kind === 'number' ? ' X' : ' N';
    lines.push(`  ${(name + value).padEnd(24)} ${f.help}`);
  }
  lines.push('', 'Examples:', '  ikun hessian --checkpoint runs/demo/best.safetensors --top 10 --trace --density',
    '  ikun hessian --checkpoint runs/ikun/best.safetensors --checkpoint runs/kaiming/best.safetensors --out runs/compare');
  return lines.join('\n');
}

/** Parses the flags of `ikun hessian`; throws HessianUsageError with the reason on a bad flag. */
export function parseHessianArgs(argv: readonly string[]): HessianArgs {
  const out: HessianArgs = { checkpoints: [], ...HESSIAN_DEFAULTS, trace: false, density: false, sample: false, progress: true, help: false };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [name, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const f = HESSIAN_FLAGS[name];
    if (!f) throw new HessianUsageError(arg.startsWith('-') ? `unknown flag ${name}` : `unexpected argument '${arg}' (give checkpoints with --checkpoint)`);
    if (f.key !== 'checkpoint' && seen.has(name)) throw new HessianUsageError(`${name} given twice`);
    seen.add(name);
    if (f.kind === 'boolean') {
      if (inline !== undefined) throw new HessianUsageError(`${name} takes no value`);
      if (f.key === 'progress') out.progress = false;
      else (out as unknown as Record<string, unknown>)[f.key] = true;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined || (inline === undefined && raw.startsWith('--'))) throw new HessianUsageError(`${name} needs a value`);
    if (f.kind === 'string') {
      if (raw === '') throw new HessianUsageError(`${name} needs a non-empty value`);
      if (f.key === 'checkpoint') out.checkpoints.push(raw);
      else (out as unknown as Record<string, unknown>)[f.key] = raw;
      continue;
    }
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new HessianUsageError(`${name} must be a number, got '${raw}'`);
    if (f.kind === 'integer') {
      if (!Number.isSafeInteger(n)) throw new HessianUsageError(`${name} must be an integer, got '${raw}'`);
      if (f.min !== undefined && n < f.min) throw new HessianUsageError(`${name} must be at least ${f.min}, got ${raw}`);
      if (f.max !== undefined && n > f.max) throw new HessianUsageError(`${name} must be at most ${f.max}, got ${raw}`);
    } else if (f.key === 'tol' && !(n > 0)) throw new HessianUsageError(`${name} must be a number > 0, got '${raw}'`);
    (out as unknown as Record<string, unknown>)[f.key] = n;
  }
  if (!out.help && out.checkpoints.length === 0) throw new HessianUsageError('give at least one --checkpoint FILE (e.g. runs/demo/best.safetensors)');
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Files

function csvField(value: string | number): string {
  const s = String(value);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function stripPrefix(message: string): string {
  return message.replace(/^ikun: /, '');
}

// ---------------------------------------------------------------------------------------------------------
// Runs and data

/** A test set, what it is, and whether it is the bundled sample (the run's, or asked for with --sample). */
interface TestData {
  test: Dataset;
  source: string;
  sample: boolean;
}

type RunConfig = Pick<TrainConfig, 'channels' | 'T' | 'neuron' | 'surrogate' | 'dataset' | 'data' | 'sample'> & Record<string, unknown>;

function runConfig(path: string, contents: checkpoint.CheckpointContents): { config: RunConfig; source: string } {
  const file = join(dirname(path), 'config.json');
  let saved: unknown;
  let source: string;
  if (existsSync(file)) {
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      return fail(`cannot read the run's config ${file}: ${(error as Error).message}`);
    }
    source = file;
  } else if (contents.metadata.config !== undefined) {
    try {
      saved = JSON.parse(contents.metadata.config);
    } catch {
      return fail(`${path}: no config.json next to it and its 'config' metadata is not valid JSON`);
    }
    source = `${path} metadata`;
  } else {
    return fail(`${path}: no config.json next to it and no 'config' in its metadata, so the model's shape is unknown`);
  }
  if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) fail(`${source}: the config must be a JSON object`);
  return { config: { ...DEFAULT_CONFIG, ...(saved as Record<string, unknown>) } as RunConfig, source };
}

function buildModel(config: RunConfig, source: string): CSNN {
  try {
    return new CSNN({ channels: config.channels, T: config.T, neuron: config.neuron, surrogate: surrogate.parse(config.surrogate), dtype: 'float32' });
  } catch (error) {
    return fail(`${source}: cannot build the CSNN from the run's config: ${stripPrefix((error as Error).message)}`);
  }
}

function testSet(args: HessianArgs, config: RunConfig, cache: Map<string, TestData>): TestData {
  const sample = args.sample || config.sample === true;
  const dataset = config.dataset === 'mnist' ? 'mnist' : 'fashion-mnist';
  const dir = args.data ?? (typeof config.data === 'string' && config.data !== '' ? config.data : undefined);
  const key = sample ? 'sample' : `${dataset}:${dir ?? ''}`;
  let entry = cache.get(key);
  if (!entry) {
    if (sample) entry = { test: loadSample().test, source: 'bundled Fashion-MNIST sample', sample: true };
    else {
      const loader = dataset === 'mnist' ? loadMnist : loadFashionMnist;
      entry = { test: loader(dir !== undefined ? { dir } : {}).test, source: dataset, sample: false };
    }
    cache.set(key, entry);
  }
  return entry;
}

function labelsFor(paths: string[]): string[] {
  const short = paths.map((p) => `${basename(dirname(p))}/${basename(p)}`);
  return short.map((s, i) => (short.indexOf(s) !== short.lastIndexOf(s) ? paths[i]! : s));
}

// ---------------------------------------------------------------------------------------------------------
// Progress

interface Reporter {
  progress(checkpointIndex: number, checkpoints: number, p: SpectralProgress): void;
  line(text: string): void;
  /** A warning on stderr (the numbers are still written). */
  warn(text: string): void;
  clear(): void;
}

function reporter(enabled: boolean): Reporter {
  const tty = enabled && process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  const clear = (): void => {
    if (tty && shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  return {
    progress(ci, cn, p) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const fraction = Math.min(1, (p.index - 1 + p.iteration / p.maxIterations) / p.count);
      const width = 24, filled = Math.round(width * fraction);
      const what = p.phase === 'eigenvalues' ? `eigenvalue ${p.index}/${p.count}` : p.phase === 'trace' ? 'trace' : `density run ${p.index}/${p.count}`;
      const est = p.phase === 'density' ? '' : ` ${p.phase === 'trace' ? 'mean' : 'estimate'} ${p.value.toPrecision(5)}`;
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] checkpoint ${ci}/${cn} ${what} step ${p.iteration}/${p.maxIterations}${est}   `);
      shown = true;
    },
    line(text) {
      clear();
      console.log(text);
    },
    warn(text) {
      clear();
      console.error(text);
    },
    clear,
  };
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

interface CheckpointResult {
  checkpoint: string;
  label: string;
  config_source: string;
  config: RunConfig;
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

function analyse(args: HessianArgs, path: string, label: string, index: number, count: number, report: Reporter,
  cache: Map<string, TestData>): { result: CheckpointResult; grid?: number[]; density?: number[] } {
  let contents: checkpoint.CheckpointContents;
  try {
    contents = checkpoint.readCheckpoint(path);
  } catch (error) {
    return fail(`cannot read the checkpoint ${path}: ${stripPrefix((error as Error).message)}`);
  }
  const { config, source } = runConfig(path, contents);
  const model = buildModel(config, source);
  checkpoint.loadModelState(model, contents, path);
  model.eval();
  const { test, source: dataSource, sample: usedSample } = testSet(args, config, cache);
  if (args.samples > test.count) fail(`--samples ${args.samples} is more than the ${test.count} test images of the ${dataSource}`);
  const pixels = test.height * test.width;
  const x = Tensor.empty([args.samples, 1, test.height, test.width], 'float32').copyFrom(test.images.subarray(0, args.samples * pixels));
  const labels = test.labels.slice(0, args.samples);
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
      checkpoint: path, label, config_source: source, config, metadata: Object.fromEntries(Object.entries(contents.metadata).filter(([k]) => k !== 'config' && k !== 'optimizer' && k !== 'scheduler')), data: dataSource, sample: usedSample, samples: args.samples,
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

function writeResults(dir: string, args: HessianArgs, results: CheckpointResult[], curves: Array<{ grid?: number[]; density?: number[] }>): void {
  const many = results.length > 1;
  const options = { samples: args.samples, top: args.top, trace: args.trace, density: args.density, iter: args.iter, maxIter: args.maxIter, tol: args.tol,
    seed: args.seed, sample_flag: args.sample, data: args.data ?? null, nV: 1, loss: 'mse', mode: 'eval' };
  // The data actually used (a run trained on the bundled sample is analysed on it without --sample).
  const data = { sample: results.every((r) => r.sample), sources: [...new Set(results.map((r) => r.data))] };
  writeFileAtomic(join(dir, 'hessian.json'), JSON.stringify({ ikun_version: checkpoint.ikunVersion(), created: new Date().toISOString(), options, sample: data.sample, data, checkpoints: results }, null, 2) + '\n');

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

/** Runs `ikun hessian` with the given flags; returns the exit code (0 done, 1 failed, 2 bad flags). */
export async function hessianCommand(argv: string[]): Promise<number> {
  let report: Reporter | null = null;
  try {
    const args = parseHessianArgs(argv);
    if (args.help) {
      console.log(hessianHelp());
      return 0;
    }
    if (args.threads !== undefined) native.setThreadCount(args.threads);
    const paths = args.checkpoints.map((p) => resolve(p));
    for (const p of paths) {
      let isFile = false;
      try {
        isFile = statSync(p).isFile();
      } catch {
        fail(`checkpoint ${p} not found`);
      }
      if (!isFile) fail(`checkpoint ${p} is not a file (give the .safetensors file, e.g. RUN/best.safetensors)`);
    }
    const out = resolve(args.out ?? join(dirname(paths[0]!), 'hessian'));
    ensureWritableFolder(out);
    report = reporter(args.progress);
    const labels = labelsFor(paths);
    const cache = new Map<string, TestData>();
    const results: CheckpointResult[] = [];
    const curves: Array<{ grid?: number[]; density?: number[] }> = [];
    for (let i = 0; i < paths.length; i++) {
      const { result, grid, density } = analyse(args, paths[i]!, labels[i]!, i + 1, paths.length, report, cache);
      results.push(result);
      curves.push({ ...(grid ? { grid } : {}), ...(density ? { density } : {}) });
      await new Promise<void>((done) => setImmediate(done));
    }
    writeResults(out, args, results, curves);
    report.line(`results: ${out}`);
    return 0;
  } catch (error) {
    report?.clear();
    if (error instanceof HessianUsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun hessian --help' for the flags.`);
      return 2;
    }
    console.error(cliMessage(error));
    return 1;
  }
}
