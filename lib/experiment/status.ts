// Where a grid point stands, read from its run folder alone (so the coordinator, a SLURM task and the
// report agree): pending (nothing trained), partial (some epochs, resumable from last.safetensors),
// trained (all epochs in metrics.jsonl), done (trained, and its Hessian measured when the grid asks).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EpochMetrics } from '../fit.js';
import { BEST_FILE, LAST_FILE, METRICS_FILE } from '../fit/run-folder.js';
import { fail } from '../errors.js';
import { resolveConfig } from '../train.js';
import { pointConfig, type ExperimentFile, type GridPoint } from './grid.js';

export const POINT_HESSIAN_FILE = 'hessian.json';

export type PointState = 'pending' | 'partial' | 'trained' | 'done';

export interface PointStatus {
  point: GridPoint;
  runDir: string;
  state: PointState;
  epochsDone: number;
  epochs: number;
}

/** metrics.jsonl of a run folder (empty when there is none yet). */
export function readMetrics(runDir: string): EpochMetrics[] {
  const path = join(runDir, METRICS_FILE);
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.map((line, i) => {
    try {
      return JSON.parse(line) as EpochMetrics;
    } catch (error) {
      return fail(`${path} line ${i + 1} is not JSON (${(error as Error).message}); delete the run folder to train the point again`);
    }
  });
}

export function pointStatus(dir: string, file: ExperimentFile, point: GridPoint): PointStatus {
  const runDir = resolve(dir, point.run);
  const epochs = resolveConfig(pointConfig(file, point, dir)).epochs;
  // last.safetensors is written after metrics.jsonl: an epoch counts once its checkpoint exists.
  const hasLast = existsSync(join(runDir, LAST_FILE));
  const epochsDone = hasLast ? readMetrics(runDir).length : 0;
  let state: PointState = 'pending';
  if (epochsDone >= epochs) {
    const needsHessian = file.hessian !== null && !existsSync(join(runDir, POINT_HESSIAN_FILE));
    state = needsHessian ? 'trained' : 'done';
  } else if (epochsDone > 0) state = 'partial';
  return { point, runDir, state, epochsDone, epochs };
}

export function bestCheckpoint(runDir: string): string {
  return join(runDir, BEST_FILE);
}
