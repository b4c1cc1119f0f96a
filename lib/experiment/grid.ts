// The experiment grid (ikun-paper.md, "The experiment"): inits x optimisers x seeds, every point an
// ordinary `ikun train` run folder <dir>/runs/<init>-<opt>-s<seed>, and experiment.json holding the grid
// and the shared train config. A folder's experiment.json is the contract between the coordinator, the
// SLURM array tasks and the report: every one of them reads the points from it, never from flags.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ikunVersion } from '../checkpoint.js';
import { describe, fail } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { INIT_METHODS, type InitMethod } from '../init.js';
import { resolveConfig, type TrainConfig } from '../train.js';

export type OptName = TrainConfig['opt'];
export const OPT_NAMES: readonly OptName[] = ['sgd', 'adam', 'adamw'];

/** The grid defaults of the issue: the paper's six inits, both of its optimisers, three seeds. */
export const DEFAULT_GRID = Object.freeze({
  inits: ['xavier', 'kaiming', 'normal', 'lecun', 'ikun_v1', 'ikun_v2'] as readonly InitMethod[],
  opts: ['sgd', 'adam'] as readonly OptName[],
  seeds: [1, 2, 3] as readonly number[],
});

/** Train config keys the grid sets per point; the shared config must leave them alone. */
export const GRID_KEYS = ['init', 'opt', 'seed', 'out'] as const;

export interface HessianSettings {
  top: number;
  maxIter: number;
  tol: number;
  trace: boolean;
  /** Stochastic Lanczos quadrature of the spectral density, `iter` Lanczos steps from one start vector. */
  density: boolean;
  iter: number;
  samples: number;
  seed: number;
}

export const DEFAULT_HESSIAN: HessianSettings = Object.freeze({ top: 10, maxIter: 100, tol: 1e-3, trace: true, density: true, iter: 100, samples: 1, seed: 0 });

export interface GridPoint {
  index: number;
  init: InitMethod;
  opt: OptName;
  seed: number;
  /** The run folder, relative to the experiment folder. */
  run: string;
}

export interface ExperimentSpec {
  inits: InitMethod[];
  opts: OptName[];
  seeds: number[];
  /** Every other train flag, shared by all points (no init, opt, seed or out). */
  config: Partial<TrainConfig>;
  /** Hessian analysis of each point's best checkpoint, or null for none. */
  hessian: HessianSettings | null;
}

export interface ExperimentFile extends ExperimentSpec {
  format: 'ikun-experiment/1';
  ikun_version: string;
  created: string;
  points: GridPoint[];
}

export const EXPERIMENT_FILE = 'experiment.json';

export function runName(init: string, opt: string, seed: number): string {
  return `${init}-${opt}-s${seed}`;
}

/** Points in a fixed order (init, then optimiser, then seed) so an index means the same point everywhere. */
export function gridPoints(spec: { inits: readonly InitMethod[]; opts: readonly OptName[]; seeds: readonly number[] }): GridPoint[] {
  const points: GridPoint[] = [];
  for (const init of spec.inits)
    for (const opt of spec.opts)
      for (const seed of spec.seeds) points.push({ index: points.length, init, opt, seed, run: join('runs', runName(init, opt, seed)) });
  return points;
}

function uniqueList<T>(name: string, values: readonly T[]): T[] {
  if (values.length === 0) fail(`${name} must list at least one value`);
  const seen = new Set<T>();
  for (const v of values) {
    if (seen.has(v)) fail(`${name} lists ${describe(v)} twice`);
    seen.add(v);
  }
  return [...values];
}

/** Checks a spec (each list non-empty and without repeats, the shared config valid) and returns a copy. */
export function checkSpec(spec: ExperimentSpec): ExperimentSpec {
  const inits = uniqueList('inits', spec.inits);
  for (const i of inits) if (!INIT_METHODS.includes(i)) fail(`inits: unknown init ${describe(i)}; choose from ${INIT_METHODS.join(', ')}`);
  const opts = uniqueList('opts', spec.opts);
  for (const o of opts) if (!OPT_NAMES.includes(o)) fail(`opts: unknown optimiser ${describe(o)}; choose from ${OPT_NAMES.join(', ')}`);
  const seeds = uniqueList('seeds', spec.seeds);
  for (const s of seeds) if (!Number.isInteger(s) || s < 0 || s > 2 ** 32 - 1) fail(`seeds: ${describe(s)} is not an integer in [0, 4294967295]`);
  for (const key of GRID_KEYS)
    if (key in spec.config) fail(`the shared config cannot set ${key}: the grid sets it per point (use inits, opts, seeds and the experiment folder)`);
  // Every point's config must be valid before any point starts.
  for (const p of gridPoints({ inits, opts, seeds })) resolveConfig(pointConfig({ ...spec, inits, opts, seeds }, p, '/'));
  return { inits, opts, seeds, config: { ...spec.config }, hessian: spec.hessian ? { ...spec.hessian } : null };
}

/** The train config of one point: the shared config with the point's init, optimiser, seed and folder. */
export function pointConfig(spec: ExperimentSpec, point: GridPoint, dir: string): Partial<TrainConfig> {
  return { ...spec.config, init: point.init, opt: point.opt, seed: point.seed, out: resolve(dir, point.run) };
}

function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): unknown =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, w]) => [k, canonical(w)]))
      : Array.isArray(v) ? v.map(canonical) : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** experiment.json of a folder, or null when there is none. */
export function readExperiment(dir: string): ExperimentFile | null {
  const path = join(dir, EXPERIMENT_FILE);
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return fail(`cannot read ${path}: ${(error as Error).message}`);
  }
  const o = parsed as Partial<ExperimentFile> | null;
  if (o === null || typeof o !== 'object' || o.format !== 'ikun-experiment/1' || !Array.isArray(o.points) || !Array.isArray(o.inits))
    fail(`${path} is not an ikun experiment file (format ikun-experiment/1)`);
  return o as ExperimentFile;
}

/** experiment.json of a folder, failing with what to do when there is none. */
export function requireExperiment(dir: string): ExperimentFile {
  const file = readExperiment(dir);
  if (!file) fail(`'${dir}' is not an experiment folder (no ${EXPERIMENT_FILE}); start one with ikun experiment --out ${dir}`);
  return file;
}

/**
 * The experiment file to run: a new folder gets the spec; a folder that holds one must hold the same grid
 * and shared config (so a rerun continues it), otherwise the error says what differs, and nothing is written.
 */
export function planExperiment(dir: string, spec: ExperimentSpec): { file: ExperimentFile; existing: boolean } {
  const checked = checkSpec(spec);
  const existing = readExperiment(dir);
  if (existing) {
    const differs: string[] = [];
    for (const key of ['inits', 'opts', 'seeds', 'config', 'hessian'] as const)
      if (!sameJson(existing[key], checked[key])) differs.push(`${key}: folder ${JSON.stringify(existing[key])}, now ${JSON.stringify(checked[key])}`);
    if (differs.length > 0)
      fail(`'${dir}' holds an experiment with other settings (${differs.join('; ')}); rerun it with its own flags to continue it, or choose another --out`);
    return { file: existing, existing: true };
  }
  const file: ExperimentFile = {
    format: 'ikun-experiment/1', ikun_version: ikunVersion(), created: new Date().toISOString(), ...checked, points: gridPoints(checked),
  };
  return { file, existing: false };
}

export function writeExperiment(dir: string, file: ExperimentFile): void {
  writeFileAtomic(join(dir, EXPERIMENT_FILE), JSON.stringify(file, null, 2) + '\n');
}

/** The point at an index, failing with the valid range. */
export function pointAt(file: ExperimentFile, index: number): GridPoint {
  const p = file.points[index];
  if (!Number.isInteger(index) || !p) fail(`--index must be an integer in [0, ${file.points.length - 1}] (the grid has ${file.points.length} points), got ${index}`);
  return p;
}
