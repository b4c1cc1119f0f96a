// `ikun experiment report DIR`: reads whatever points of the folder have finished, aggregates them and
// writes results.json, results.csv and report.html next to experiment.json. Run at the end of every
// experiment, and by hand while SLURM tasks are still going.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ikunVersion } from '../checkpoint.js';
import { fail } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { writeExperimentReport } from '../report/experiment-report.js';
import { aggregateRuns, type Aggregate, type FinishedRun, type GroupResult } from './aggregate.js';
import { requireExperiment, type ExperimentFile } from './grid.js';
import type { PointHessian } from './point-hessian.js';
import { POINT_HESSIAN_FILE, pointStatus, readMetrics, type PointState } from './status.js';
import type { MeanSd } from './stats.js';

export interface ResultsFile extends Aggregate {
  format: 'ikun-experiment-results/1';
  ikun_version: string;
  created: string;
  experiment: string;
  points: { total: number; done: number; pending: Array<{ run: string; state: PointState; epochs_done: number; epochs: number }> };
}

export const RESULTS_FILE = 'results.json', RESULTS_CSV = 'results.csv', REPORT_FILE = 'report.html';

function readHessian(runDir: string): PointHessian | null {
  const path = join(runDir, POINT_HESSIAN_FILE);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PointHessian;
  } catch (error) {
    return fail(`cannot read ${path}: ${(error as Error).message}; delete it to measure the point again`);
  }
}

/** The finished points (all epochs trained) and where the others stand. */
export function collectRuns(dir: string, file: ExperimentFile): { runs: FinishedRun[]; pending: ResultsFile['points']['pending'] } {
  const runs: FinishedRun[] = [];
  const pending: ResultsFile['points']['pending'] = [];
  for (const p of file.points) {
    const s = pointStatus(dir, file, p);
    if (s.state === 'trained' || s.state === 'done') {
      runs.push({ init: p.init, opt: p.opt, seed: p.seed, metrics: readMetrics(s.runDir).slice(0, s.epochs), hessian: readHessian(s.runDir) });
      if (s.state === 'done') continue;
    }
    pending.push({ run: p.run, state: s.state, epochs_done: s.epochsDone, epochs: s.epochs });
  }
  return { runs, pending };
}

const csvNumber = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '' : String(v));
const csvStat = (s: MeanSd | null | undefined): string[] => [csvNumber(s?.mean), csvNumber(s?.sd)];

/** One row per group; a column per baseline for the efficiency ratio. */
export function resultsCsv(groups: readonly GroupResult[]): string {
  const baselines = [...new Set(groups.flatMap((g) => g.efficiency.map((e) => e.baseline)))];
  const stats = ['final_train_acc', 'final_test_acc', 'best_train_acc', 'best_test_acc', 'final_train_loss', 'final_test_loss'] as const;
  const header = ['init', 'opt', 'runs', 'seeds', 'epochs', ...stats.flatMap((s) => [`${s}_mean`, `${s}_sd`]), 'epochs_to_target',
    ...baselines.map((b) => `efficiency_vs_${b}`), 'hessian_top_eigenvalue_mean', 'hessian_top_eigenvalue_sd', 'hessian_trace_mean', 'hessian_trace_sd',
    'hessian_converged'];
  const rows = groups.map((g) => [g.init, g.opt, String(g.runs), g.seeds.join(' '), String(g.epochs), ...stats.flatMap((s) => csvStat(g[s])),
    csvNumber(g.epochs_to_target), ...baselines.map((b) => csvNumber(g.efficiency.find((e) => e.baseline === b)?.ratio)),
    ...csvStat(g.hessian?.top_eigenvalue), ...csvStat(g.hessian?.trace), g.hessian ? String(g.hessian.converged) : ''].join(','));
  return [header.join(','), ...rows].join('\n') + '\n';
}

/** Aggregates the folder and writes results.json, results.csv and report.html; returns the results. */
export function writeResults(dir: string, options: { target?: number } = {}): ResultsFile {
  const file = requireExperiment(dir);
  const { runs, pending } = collectRuns(dir, file);
  if (runs.length === 0)
    fail(`no point of '${dir}' has finished training yet (${pending.length} pending); run ikun experiment or wait for its tasks, then report again`);
  const aggregate = aggregateRuns(runs, options);
  const results: ResultsFile = {
    format: 'ikun-experiment-results/1', ikun_version: ikunVersion(), created: new Date().toISOString(), experiment: dir, ...aggregate,
    points: { total: file.points.length, done: file.points.length - pending.length, pending },
  };
  writeFileAtomic(join(dir, RESULTS_FILE), JSON.stringify(results, null, 2) + '\n');
  writeFileAtomic(join(dir, RESULTS_CSV), resultsCsv(results.groups));
  writeExperimentReport(join(dir, REPORT_FILE), file, results);
  return results;
}
