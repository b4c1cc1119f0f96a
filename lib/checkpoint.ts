// Checkpoints as safetensors files: model parameters and buffers under their PyTorch state-dict names,
// optimiser state under 'optimizer.<param>.<state>', and metadata (config, epoch, seed, ikun version,
// optimiser and scheduler hyperparameters as JSON strings). Loading validates everything before it
// changes anything; writing is atomic (temp file + rename).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './data.js';
import { describe, fail, failWith } from './errors.js';
import type { Module } from './nn/module.js';
import type { Optimizer, OptimizerState, Scheduler, SchedulerState } from './optim.js';
import { readSafetensors, writeSafetensorsAtomic, type SafeTensor } from './safetensors.js';
import { isBatchCounter, toSafeTensor } from './serialization.js';
import { Tensor, formatShape } from './tensor.js';

export const CHECKPOINT_FORMAT = 'ikun-checkpoint/1';
const OPTIMIZER_PREFIX = 'optimizer.';

let cachedVersion: string | null = null;
export function ikunVersion(): string {
  if (cachedVersion === null) {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    cachedVersion = pkg.version;
  }
  return cachedVersion;
}

function expectedDType(name: string, t: Tensor): string {
  return isBatchCounter(name) ? 'I64' : t.dtype === 'float32' ? 'F32' : 'F64';
}

/** The model's state dict: parameters then buffers, PyTorch names. */
export function modelState(model: Module): Array<[string, Tensor]> {
  return [...model.namedParameters(), ...model.namedBuffers()];
}

export interface CheckpointContents {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export interface SaveOptions {
  optimizer?: Optimizer;
  scheduler?: Scheduler;
  metadata?: Record<string, string>;
  /** Read the file back before it replaces the old one (see writeSafetensorsAtomic). */
  verify?: boolean;
  /** Keep the file being replaced under this path. */
  keepPreviousAs?: string;
  /** Refuse to write a checkpoint holding a NaN or infinite value (code NON_FINITE_STATE, naming the tensor). */
  requireFinite?: boolean;
}

/** The first float entry holding a NaN or an infinity, or null. */
function firstNonFinite(entries: ReadonlyArray<[string, SafeTensor]>): string | null {
  for (const [name, t] of entries) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return name;
  }
  return null;
}

export function saveCheckpoint(path: string, model: Module, options: SaveOptions = {}): void {
  const entries: Array<[string, SafeTensor]> = modelState(model).map(([name, t]) => [name, toSafeTensor(name, t)]);
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, ikun_version: ikunVersion(), ...options.metadata };
  if (options.optimizer) {
    const state = options.optimizer.stateDict();
    for (const [name, t] of state.tensors) entries.push([OPTIMIZER_PREFIX + name, toSafeTensor(name, t)]);
    metadata.optimizer = JSON.stringify({ kind: state.kind, step: state.step, hyper: state.hyper });
  }
  if (options.scheduler) metadata.scheduler = JSON.stringify(options.scheduler.stateDict());
  if (options.requireFinite) {
    const bad = firstNonFinite(entries);
    if (bad !== null) failWith('NON_FINITE_STATE', { path, tensor: bad }, `'${bad}' holds non-finite values; ${path} is not written`);
  }
  writeSafetensorsAtomic(path, entries, metadata, {
    ...(options.verify ? { verify: true } : {}), ...(options.keepPreviousAs !== undefined ? { keepPreviousAs: options.keepPreviousAs } : {}),
  });
}

export function readCheckpoint(path: string): CheckpointContents {
  return readSafetensors(path);
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Copies the model's state from a checkpoint. Every name, shape and dtype is checked first; the error
 * names what differs, and nothing is loaded unless everything matches. Optimiser entries are ignored.
 */
export function loadModelState(model: Module, contents: CheckpointContents, source = 'checkpoint'): void {
  const state = modelState(model);
  const wanted = new Set(state.map(([n]) => n));
  const problems: string[] = [];
  for (const [name, t] of state) {
    const saved = contents.tensors.get(name);
    if (!saved) problems.push(`missing '${name}' (shape ${formatShape(t.shape)})`);
    else if (!shapesEqual(saved.shape, t.shape))
      problems.push(`'${name}' has shape ${formatShape(saved.shape)} in the file, the model needs ${formatShape(t.shape)}`);
    else if (saved.dtype !== expectedDType(name, t))
      problems.push(`'${name}' is ${saved.dtype} in the file, the model needs ${expectedDType(name, t)}`);
  }
  for (const name of contents.tensors.keys()) {
    if (!name.startsWith(OPTIMIZER_PREFIX) && !wanted.has(name)) problems.push(`unexpected '${name}' (not in this model)`);
  }
  if (problems.length > 0)
    fail(`${source} does not match the model: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? `; and ${problems.length - 6} more` : ''}`);
  for (const [name, t] of state) {
    const saved = contents.tensors.get(name)!;
    t.copyFrom(saved.data instanceof BigInt64Array ? Float64Array.from(saved.data, (v) => Number(v)) : saved.data);
  }
}

/** The optimiser state stored in a checkpoint, ready for optimizer.loadStateDict. */
export function optimizerState(contents: CheckpointContents, source = 'checkpoint'): OptimizerState | null {
  const meta = contents.metadata.optimizer;
  if (meta === undefined) return null;
  let parsed: { kind: string; step: number; hyper: OptimizerState['hyper'] };
  try {
    parsed = JSON.parse(meta);
  } catch {
    return fail(`${source}: the optimizer metadata is not valid JSON`);
  }
  const tensors: Array<[string, Tensor]> = [];
  for (const [name, saved] of contents.tensors) {
    if (!name.startsWith(OPTIMIZER_PREFIX)) continue;
    if (saved.dtype !== 'F32' && saved.dtype !== 'F64') fail(`${source}: optimizer state '${name}' has dtype ${saved.dtype}, expected F32 or F64`);
    const t = Tensor.empty(saved.shape, saved.dtype === 'F32' ? 'float32' : 'float64');
    t.copyFrom(saved.data as Float32Array | Float64Array);
    tensors.push([name.slice(OPTIMIZER_PREFIX.length), t]);
  }
  return { kind: parsed.kind, step: parsed.step, hyper: parsed.hyper, tensors };
}

export function schedulerState(contents: CheckpointContents, source = 'checkpoint'): SchedulerState | null {
  const meta = contents.metadata.scheduler;
  if (meta === undefined) return null;
  try {
    return JSON.parse(meta) as SchedulerState;
  } catch {
    return fail(`${source}: the scheduler metadata is not valid JSON`);
  }
}

export function metadataNumber(contents: CheckpointContents, key: string, source = 'checkpoint'): number {
  const v = Number(contents.metadata[key]);
  if (contents.metadata[key] === undefined || !Number.isFinite(v)) fail(`${source}: metadata '${key}' is missing or not a number (${describe(contents.metadata[key])})`);
  return v;
}
