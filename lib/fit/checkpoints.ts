// The checkpoints of a run folder. last.safetensors holds the model, the optimiser and the schedule at a
// position of the run: metadata `epoch` (epochs completed) and `step` (steps completed in the epoch in
// progress, "0" at an epoch's end), plus, inside an epoch, the epoch's partial totals (`epoch_progress`)
// so that the epoch's metrics come out as if it had not stopped. Each new last.safetensors is written to
// a temporary file, read back and compared, and only then replaces the old one, which is kept as
// last.prev.safetensors: resume falls back to it, saying so, when last.safetensors cannot be read.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as checkpoint from '../checkpoint.js';
import { fail, failWith } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, Scheduler } from '../optim.js';
import type { EpochProgress } from './metrics.js';

export const LAST_FILE = 'last.safetensors', PREVIOUS_FILE = 'last.prev.safetensors', BEST_FILE = 'best.safetensors';

/** A point of the run: epochs completed, steps completed in the next epoch, and that epoch's totals so far. */
export interface RunPosition {
  epochsDone: number;
  step: number;
  /** null at an epoch's end (step 0). */
  progress: EpochProgress | null;
}

/** What a checkpoint of the run holds besides the position. */
export interface RunState {
  model: Module;
  optimizer: Optimizer;
  scheduler: Scheduler | null;
  config: Record<string, unknown>;
  seed: number;
  bestTestAcc: number;
}

/** 'after epoch 3' or 'in epoch 4 after step 20': where a checkpoint stands. */
export function positionText(p: { epochsDone: number; step: number }): string {
  return p.step === 0 ? `after epoch ${p.epochsDone}` : `in epoch ${p.epochsDone + 1} after step ${p.step}`;
}

// JSON has no NaN or infinities; the totals of a saved epoch are finite (a non-finite one stops the run
// before anything is written), but a number that is not would come back as null: keep it exact instead.
function encodeProgress(p: EpochProgress): string {
  return JSON.stringify(p, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

function decodeProgress(text: string, source: string): EpochProgress {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, (_, v: unknown) => (v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : v));
  } catch {
    return fail(`${source}: metadata 'epoch_progress' is not valid JSON`);
  }
  const p = parsed as EpochProgress;
  const numbers = (a: unknown): boolean => Array.isArray(a) && a.every((v) => typeof v === 'number');
  if (p === null || typeof p !== 'object' || !['samples', 'steps', 'gradNorms', 'hostLoss', 'skipped', 'trainSeconds'].every((k) => typeof (p as unknown as Record<string, unknown>)[k] === 'number')
    || !numbers(p.rateCounts) || !numbers(p.values) || !(p.finiteSteps === null || numbers(p.finiteSteps)))
    return fail(`${source}: metadata 'epoch_progress' does not hold the totals of an epoch in progress`);
  return p;
}

/**
 * Writes last.safetensors at a position (verified, the old one kept as last.prev.safetensors). A state
 * holding a non-finite value is refused (NON_FINITE_STATE): the last good checkpoint stays.
 */
export function writeLast(dir: string, state: RunState, position: RunPosition): void {
  const metadata: Record<string, string> = {
    config: JSON.stringify(state.config), epoch: String(position.epochsDone), step: String(position.step),
    seed: String(state.seed), best_test_acc: String(state.bestTestAcc),
  };
  if (position.progress) metadata.epoch_progress = encodeProgress(position.progress);
  checkpoint.saveCheckpoint(join(dir, LAST_FILE), state.model, {
    optimizer: state.optimizer, ...(state.scheduler ? { scheduler: state.scheduler } : {}), metadata,
    verify: true, keepPreviousAs: join(dir, PREVIOUS_FILE), requireFinite: true,
  });
}

/** Writes best.safetensors: the model after an epoch that improved the test accuracy (verified). */
export function writeBest(dir: string, state: RunState, epoch: number, testAcc: number): void {
  checkpoint.saveCheckpoint(join(dir, BEST_FILE), state.model, {
    metadata: { config: JSON.stringify(state.config), epoch: String(epoch), step: '0', seed: String(state.seed),
      best_test_acc: String(state.bestTestAcc), test_acc: String(testAcc) },
    verify: true, requireFinite: true,
  });
}

/** Whether the folder holds a checkpoint to resume from (last.safetensors, or the previous one). */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, LAST_FILE)) || existsSync(join(dir, PREVIOUS_FILE));
}

export interface ReadCheckpoint {
  contents: checkpoint.CheckpointContents;
  /** The file read: last.safetensors, or last.prev.safetensors when the last one was unreadable. */
  path: string;
  position: RunPosition;
}

function readAt(path: string): ReadCheckpoint {
  const contents = checkpoint.readCheckpoint(path);
  const epochsDone = checkpoint.metadataNumber(contents, 'epoch', path);
  // Checkpoints from before positions inside an epoch existed (or from elsewhere) have no step: an epoch's end.
  const step = contents.metadata.step === undefined ? 0 : checkpoint.metadataNumber(contents, 'step', path);
  if (!Number.isInteger(epochsDone) || epochsDone < 0 || !Number.isInteger(step) || step < 0)
    fail(`${path}: metadata epoch ${contents.metadata.epoch} and step ${contents.metadata.step} are not a position of a run`);
  const text = contents.metadata.epoch_progress;
  if (step > 0 && text === undefined) fail(`${path}: step ${step} inside an epoch but no 'epoch_progress' metadata with the epoch's totals`);
  return { contents, path, position: { epochsDone, step, progress: step > 0 ? decodeProgress(text!, path) : null } };
}

/**
 * Reads the checkpoint to resume from: last.safetensors, or, when it is missing or unreadable (a
 * truncated file), last.prev.safetensors, which `log` is told about. Fails naming both when neither reads.
 */
export function readResumePoint(dir: string, log: (line: string) => void): ReadCheckpoint {
  const last = join(dir, LAST_FILE), previous = join(dir, PREVIOUS_FILE);
  let lastError: Error | null = null;
  if (existsSync(last)) {
    try {
      return readAt(last);
    } catch (error) {
      lastError = error as Error;
    }
  }
  const reason = (error: Error): string => error.message.replace(/^ikun: /, '');
  if (!existsSync(previous)) {
    // The first checkpoint of a run has no previous one to fall back to.
    if (lastError) {
      const reasons = `${LAST_FILE}: ${reason(lastError)}; no ${PREVIOUS_FILE} to fall back to`;
      return failWith('CHECKPOINT_UNREADABLE', { dir, reasons }, `fit: resume: no checkpoint in '${dir}' can be read (${reasons})`);
    }
    return failWith('RUN_NOT_STARTED', { dir }, `fit: resume: '${dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again without resume`);
  }
  let fallback: ReadCheckpoint;
  try {
    fallback = readAt(previous);
  } catch (error) {
    const reasons = `${LAST_FILE}: ${lastError ? reason(lastError) : 'missing'}; ${PREVIOUS_FILE}: ${reason(error as Error)}`;
    return failWith('CHECKPOINT_UNREADABLE', { dir, reasons }, `fit: resume: no checkpoint in '${dir}' can be read (${reasons})`);
  }
  const why = lastError ? `cannot be read (${reason(lastError)})` : 'is missing';
  log(`${LAST_FILE} ${why}; resuming from ${PREVIOUS_FILE} (${positionText(fallback.position)}) instead`);
  return fallback;
}
