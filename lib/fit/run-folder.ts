// The run folder fit() writes, as `ikun train` always has: config.json, metrics.jsonl and metrics.csv
// (one line per epoch), best.safetensors (best test accuracy) and last.safetensors (weights, optimiser
// and schedule state, the position in the run; the one before kept as last.prev.safetensors), and
// reading it back to resume. Errors carry codes (RUN_EXISTS, RUN_NOT_FOUND, RUN_NOT_STARTED,
// RUN_FINISHED, WRITE_FAILED) so each caller can phrase them in its own arguments.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as checkpoint from '../checkpoint.js';
import { fail, failWith } from '../errors.js';
import { ensureWritableFolder, writeFileAtomic } from '../files.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, Scheduler, SchedulerState } from '../optim.js';
import { hasCheckpoint, positionText, readResumePoint, writeBest, writeLast, type RunPosition, type RunState } from './checkpoints.js';

export { BEST_FILE, LAST_FILE, PREVIOUS_FILE } from './checkpoints.js';

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  lr: number;
  grad_norm: number;
  epoch_s: number;
  test_s: number;
  samples_per_s: number;
  /** Training batches skipped for a non-finite loss or gradient (onNan 'skip'; 0 otherwise). */
  skipped_steps: number;
  firing_rates: Record<string, number>;
}

const CSV_COLUMNS = ['epoch', 'train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'grad_norm', 'epoch_s', 'test_s', 'samples_per_s', 'skipped_steps'] as const;

export const CONFIG_FILE = 'config.json', METRICS_FILE = 'metrics.jsonl';

/** Checks the folder can be written before any work is done; a fresh run refuses a folder holding one. */
export function prepareRunDir(dir: string, resuming: boolean): void {
  ensureWritableFolder(dir);
  // A folder whose run stopped before its first checkpoint holds nothing to keep: start over in it.
  if (!resuming && hasCheckpoint(dir))
    failWith('RUN_EXISTS', { dir }, `fit: out '${dir}' already holds a run (last.safetensors); pass resume: true to continue it, or choose another out`);
}

/** A fresh run's folder must not hold a run yet (checked without writing anything). */
export function checkNoRunIn(dir: string): void {
  if (hasCheckpoint(dir))
    failWith('RUN_EXISTS', { dir }, `fit: out '${dir}' already holds a run (last.safetensors); pass resume: true to continue it, or choose another out`);
}

/** The folder must hold a run with a checkpoint. */
export function checkResumable(dir: string): void {
  if (!existsSync(join(dir, CONFIG_FILE))) failWith('RUN_NOT_FOUND', { dir }, `fit: resume: '${dir}' is not a run folder (no config.json)`);
  if (!hasCheckpoint(dir))
    failWith('RUN_NOT_STARTED', { dir },
      `fit: resume: '${dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again without resume`);
}

/** config.json of a run folder, as written. */
export function readRunConfig(dir: string): Record<string, unknown> {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) failWith('RUN_NOT_FOUND', { dir }, `resume: '${dir}' is not a run folder (no config.json)`);
  try {
    const saved = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) return fail(`resume: ${path} does not hold a JSON object`);
    return saved as Record<string, unknown>;
  } catch (error) {
    return fail(`resume: cannot read ${path}: ${(error as Error).message}`);
  }
}

export function writeRunConfig(dir: string, config: Record<string, unknown>): void {
  writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify({ ...config, out: dir, ikun_version: checkpoint.ikunVersion() }, null, 2) + '\n', 'run configuration');
}

function csvLine(m: EpochMetrics, layers: readonly string[]): string {
  return [...CSV_COLUMNS.map((k) => String(m[k] ?? 0)), ...layers.map((l) => String(m.firing_rates[l] ?? ''))].join(',');
}

export function writeMetrics(dir: string, metrics: readonly EpochMetrics[], layers: readonly string[]): void {
  writeFileAtomic(join(dir, METRICS_FILE), metrics.map((m) => JSON.stringify(m)).join('\n') + (metrics.length ? '\n' : ''), 'metrics file');
  const header = [...CSV_COLUMNS, ...layers.map((l) => `firing_rate_${l}`)].join(',');
  writeFileAtomic(join(dir, 'metrics.csv'), [header, ...metrics.map((m) => csvLine(m, layers))].join('\n') + '\n', 'metrics file');
}

/**
 * The end of an epoch on disk: metrics first, then the checkpoints, so that a run killed or failing in
 * between redoes this epoch when resumed (the metrics of epochs past the checkpoint are dropped then).
 */
export function writeEpoch(dir: string, state: RunState, metrics: readonly EpochMetrics[], layers: readonly string[], improved: boolean): void {
  writeMetrics(dir, metrics, layers);
  const m = metrics[metrics.length - 1]!;
  if (improved) writeBest(dir, state, m.epoch, m.test_acc);
  writeLast(dir, state, { epochsDone: m.epoch, step: 0, progress: null });
}

/** 'all 4 epochs', or '6 epochs, more than the 4 asked for' */
export function finishedText(done: number, epochs: number): string {
  return done === epochs ? `all ${epochs} epochs` : `${done} epochs, more than the ${epochs} asked for`;
}

/** The saved scheduler position (epoch, base lr) with the hyperparameters of the schedule built for this run. */
function withScheduleOf(saved: SchedulerState, fresh: SchedulerState): SchedulerState {
  return { ...saved, hyper: fresh.hyper, ...(saved.after && fresh.after ? { after: withScheduleOf(saved.after, fresh.after) } : {}) };
}

export interface RestoredRun {
  /** The finished epochs' metrics. */
  metrics: EpochMetrics[];
  bestTestAcc: number;
  position: RunPosition;
}

/**
 * Loads the resume checkpoint (last.safetensors, or the previous one when it cannot be read) into the
 * model, optimiser and schedule; returns the finished epochs' metrics and the position to continue at.
 * A schedule built for a new epoch total (e.g. a longer cosine) keeps the saved position and its new
 * horizon. A checkpoint without optimiser or scheduler state (one written elsewhere) is used as it is,
 * with the schedule placed at the checkpoint's epoch, and `log` is told so in one line.
 */
export function restoreRun(dir: string, model: Module, optimizer: Optimizer, scheduler: Scheduler | null, epochs: number,
  log: (line: string) => void): RestoredRun {
  checkResumable(dir);
  const { contents, path, position } = readResumePoint(dir, log);
  const done = position.epochsDone;
  if (done >= epochs)
    failWith('RUN_FINISHED', { dir, epochs, done }, `fit: resume: '${dir}' has finished ${finishedText(done, epochs)}; pass a larger epochs to train on`);
  checkpoint.loadModelState(model, contents, path);
  const missing: string[] = [];
  const optState = checkpoint.optimizerState(contents, path);
  if (optState) optimizer.loadStateDict(optState);
  else missing.push(`no optimiser state (${optimizer.kind} starts without its momentum or moment estimates)`);
  const schedState = checkpoint.schedulerState(contents, path);
  if (scheduler && schedState) scheduler.loadStateDict(withScheduleOf(schedState, scheduler.stateDict()));
  else if (scheduler) {
    for (let e = 0; e < done; e++) scheduler.step();
    missing.push(`no scheduler state (the ${scheduler.kind} schedule is set to epoch ${done} from its settings: lr ${optimizer.lr.toPrecision(3)})`);
  }
  if (missing.length > 0) log(`resume: ${basename(path)} holds ${missing.join(' and ')}`);
  const metricsPath = join(dir, METRICS_FILE);
  const metrics = existsSync(metricsPath)
    ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochMetrics).filter((m) => m.epoch <= done)
    : [];
  if (metrics.length !== done)
    fail(`fit: resume: ${METRICS_FILE} holds ${metrics.length} of the ${done} epochs of the checkpoint (${positionText(position)}); the run folder '${dir}' is inconsistent`);
  return { metrics, bestTestAcc: Number(contents.metadata.best_test_acc ?? -1), position };
}
