// Grids beyond one machine: an sbatch job-array script for SLURM, one array task per grid point not yet
// done, each running `ikun experiment run-one DIR --index $SLURM_ARRAY_TASK_ID` into the shared
// experiment folder; `ikun experiment report DIR` then aggregates whatever has finished.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { makeDirectories, writeFileAtomic } from '../files.js';
import type { ExperimentFile } from './grid.js';

export interface SlurmOptions {
  partition?: string;
  /** Wall time per task in a SLURM format: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
  time?: string;
  account?: string;
  cpusPerTask?: number;
  jobName?: string;
}

const NAME = /^[A-Za-z0-9_.+-]+$/;
const TIME = /^(\d+-\d{1,2}(:\d{2}){0,2}|\d+(:\d{2}){0,2})$/;

export function checkSlurmOptions(o: SlurmOptions): void {
  if (o.partition !== undefined && !NAME.test(o.partition)) fail(`--partition must be a SLURM partition name (letters, digits, _ . + -), got '${o.partition}'`);
  if (o.account !== undefined && !NAME.test(o.account)) fail(`--account must be a SLURM account name (letters, digits, _ . + -), got '${o.account}'`);
  if (o.jobName !== undefined && !NAME.test(o.jobName)) fail(`--job-name must be letters, digits, _ . + -, got '${o.jobName}'`);
  if (o.time !== undefined && !TIME.test(o.time)) fail(`--time must be a SLURM time such as 30, 4:00:00 or 1-00:00:00, got '${o.time}'`);
  if (o.cpusPerTask !== undefined && !(Number.isInteger(o.cpusPerTask) && o.cpusPerTask >= 1)) fail(`--cpus-per-task must be an integer >= 1, got ${o.cpusPerTask}`);
}

/** 0,1,2,5,7,8 -> '0-2,5,7-8' (SLURM's array syntax). */
export function arrayRanges(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Single-quoted for bash (a ' inside becomes '\''). */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The array script for the given point indices (those not done); `node` and `cli` as the tasks will run them. */
export function sbatchScript(dir: string, file: ExperimentFile, indices: readonly number[], o: SlurmOptions, node: string, cli: string): string {
  checkSlurmOptions(o);
  if (indices.length === 0) fail('every point of the grid is done: there is nothing to submit (run ikun experiment report to aggregate)');
  const device = file.config.device ?? 'auto';
  const gpu = /^cuda/.test(device);
  const lines = [
    '#!/bin/bash',
    `# ikun experiment ${dir}: one array task per grid point not yet done (${indices.length} of ${file.points.length}).`,
    '# Each task trains (or resumes) its point into the shared experiment folder; aggregate with:',
    `#   ikun experiment report ${dir}`,
    `#SBATCH --job-name=${o.jobName ?? 'ikun-experiment'}`,
    `#SBATCH --array=${arrayRanges(indices)}`,
    `#SBATCH --output=${join(dir, 'slurm', '%A_%a.out')}`,
    '#SBATCH --ntasks=1',
    ...(o.cpusPerTask !== undefined ? [`#SBATCH --cpus-per-task=${o.cpusPerTask}`] : []),
    ...(gpu ? ['#SBATCH --gres=gpu:1'] : []),
    ...(o.partition !== undefined ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time !== undefined ? [`#SBATCH --time=${o.time}`] : []),
    ...(o.account !== undefined ? [`#SBATCH --account=${o.account}`] : []),
    'set -euo pipefail',
    `exec ${shellQuote(node)} ${shellQuote(cli)} experiment run-one ${shellQuote(dir)} --index "$SLURM_ARRAY_TASK_ID"` +
      (o.cpusPerTask !== undefined ? ` --threads ${o.cpusPerTask}` : ''),
    '',
  ];
  return lines.join('\n');
}

/** Writes the script to DIR/slurm/experiment.sbatch and submits it; returns the job id sbatch printed. */
export function submitSbatch(dir: string, script: string): { path: string; jobId: string } {
  const slurmDir = join(dir, 'slurm');
  makeDirectories(slurmDir);
  const path = join(slurmDir, 'experiment.sbatch');
  writeFileAtomic(path, script);
  const r = spawnSync('sbatch', ['--parsable', path], { encoding: 'utf8' });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    fail(missing ? `sbatch is not on PATH: submit from a SLURM login node, or print the script with --dry-run (written to ${path})`
      : `cannot run sbatch: ${r.error.message}`);
  }
  if (r.status !== 0) fail(`sbatch refused ${path} (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return { path, jobId: r.stdout.trim().split(';')[0]! };
}
