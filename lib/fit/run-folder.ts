// The run folder fit() writes, as `ikun train` always has: config.json, metrics.jsonl and metrics.csv
// (one line per epoch), best.safetensors (best test accuracy) and last.safetensors (weights, optimiser
// and schedule state, metadata), and reading it back to resume. Errors carry codes (RUN_EXISTS,
// RUN_NOT_FOUND, RUN_NOT_STARTED, RUN_FINISHED) so each caller can phrase them in its own arguments.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as checkpoint from '../checkpoint.js';
import { fail, failWith } from '../errors.js';
import { ensureWritableFolder, writeFileAtomic } from '../files.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, Scheduler, SchedulerState } from '../optim.js';

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
  firing_rates: Record<string, number>;
}

const CSV_COLUMNS = ['epoch', 'train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'grad_norm', 'epoch_s', 'test_s', 'samples_per_s'] as const;

export const CONFIG_FILE = 'config.json', LAST_FILE = 'last.safetensors', BEST_FILE = 'best.safetensors', METRICS_FILE = 'metrics.jsonl';

/** Checks the folder can be written before any work is done; a fresh run refuses a folder holding one. */
export function prepareRunDir(dir: string, resuming: boolean): void {
  ensureWritableFolder(dir);
  // A folder whose run stopped before its first epoch ended holds nothing to keep: start over in it.
  if (!resuming && existsSync(join(dir, LAST_FILE)))
    failWith('RUN_EXISTS', { dir }, `fit: out '${dir}' already holds a run (last.safetensors); pass resume: true to continue it, or choose another out`);
}

/** The folder must hold a run with at least one finished epoch. */
export function checkResumable(dir: string): void {
  if (!existsSync(join(dir, CONFIG_FILE))) failWith('RUN_NOT_FOUND', { dir }, `fit: resume: '${dir}' is not a run folder (no config.json)`);
  if (!existsSync(join(dir, LAST_FILE)))
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
  writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify({ ...config, out: dir, ikun_version: checkpoint.ikunVersion() }, null, 2) + '\n');
}

function csvLine(m: EpochMetrics, layers: readonly string[]): string {
  return [...CSV_COLUMNS.map((k) => String(m[k])), ...layers.map((l) => String(m.firing_rates[l] ?? ''))].join(',');
}

export function writeMetrics(dir: string, metrics: readonly EpochMetrics[], layers: readonly string[]): void {
  writeFileAtomic(join(dir, METRICS_FILE), metrics.map((m) => JSON.stringify(m)).join('\n') + (metrics.length ? '\n' : ''));
  const header = [...CSV_COLUMNS, ...layers.map((l) => `firing_rate_${l}`)].join(',');
  writeFileAtomic(join(dir, 'metrics.csv'), [header, ...metrics.map((m) => csvLine(m, layers))].join('\n') + '\n');
}

/** Metrics first, then the checkpoints: a run killed in between redoes this epoch when resumed. */
export function writeEpoch(dir: string, state: { model: Module; optimizer: Optimizer; scheduler: Scheduler | null; metrics: readonly EpochMetrics[];
  layers: readonly string[]; bestTestAcc: number; improved: boolean; config: Record<string, unknown>; seed: number }): void {
  writeMetrics(dir, state.metrics, state.layers);
  const m = state.metrics[state.metrics.length - 1]!;
  const metadata = { config: JSON.stringify(state.config), epoch: String(m.epoch), seed: String(state.seed), best_test_acc: String(state.bestTestAcc) };
  if (state.improved) checkpoint.saveCheckpoint(join(dir, BEST_FILE), state.model, { metadata: { ...metadata, test_acc: String(m.test_acc) } });
  checkpoint.saveCheckpoint(join(dir, LAST_FILE), state.model, { optimizer: state.optimizer, ...(state.scheduler ? { scheduler: state.scheduler } : {}), metadata });
}

/** 'all 4 epochs', or '6 epochs, more than the 4 asked for' */
export function finishedText(done: number, epochs: number): string {
  return done === epochs ? `all ${epochs} epochs` : `${done} epochs, more than the ${epochs} asked for`;
}

/** The saved scheduler position (epoch, base lr) with the hyperparameters of the schedule built for this run. */
function withScheduleOf(saved: SchedulerState, fresh: SchedulerState): SchedulerState {
  return { ...saved, hyper: fresh.hyper, ...(saved.after && fresh.after ? { after: withScheduleOf(saved.after, fresh.after) } : {}) };
}

/**
 * Loads last.safetensors into the model, optimiser and schedule and returns the finished epochs' metrics.
 * A schedule built for a new epoch total (e.g. a longer cosine) keeps the saved position and its new horizon.
 */
export function restoreRun(dir: string, model: Module, optimizer: Optimizer, scheduler: Scheduler | null, epochs: number):
  { metrics: EpochMetrics[]; bestTestAcc: number } {
  checkResumable(dir);
  const lastPath = join(dir, LAST_FILE);
  const contents = checkpoint.readCheckpoint(lastPath);
  const done = checkpoint.metadataNumber(contents, 'epoch', lastPath);
  if (done >= epochs)
    failWith('RUN_FINISHED', { dir, epochs, done }, `fit: resume: '${dir}' has finished ${finishedText(done, epochs)}; pass a larger epochs to train on`);
  checkpoint.loadModelState(model, contents, lastPath);
  const optState = checkpoint.optimizerState(contents, lastPath);
  if (optState) optimizer.loadStateDict(optState);
  const schedState = checkpoint.schedulerState(contents, lastPath);
  if (scheduler && schedState) scheduler.loadStateDict(withScheduleOf(schedState, scheduler.stateDict()));
  const metricsPath = join(dir, METRICS_FILE);
  const metrics = existsSync(metricsPath)
    ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochMetrics).filter((m) => m.epoch <= done)
    : [];
  if (metrics.length !== done) fail(`fit: resume: ${METRICS_FILE} holds ${metrics.length} of the ${done} epochs in last.safetensors; the run folder '${dir}' is inconsistent`);
  return { metrics, bestTestAcc: Number(contents.metadata.best_test_acc ?? -1) };
}
