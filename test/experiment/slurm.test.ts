// The sbatch array script: unit checks, `--slurm --dry-run` through the CLI (bash -n accepts it), and a
// real single-node SLURM when one can be started here (skipped with the reason otherwise).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gridPoints, type ExperimentFile } from '../../lib/experiment/grid.js';
import { arrayRanges, sbatchScript, shellQuote } from '../../lib/experiment/slurm.js';
import { startLocalSlurm } from '../helpers/slurm.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const grid = (config: ExperimentFile['config']): ExperimentFile => {
  const spec = { inits: ['ikun_v1', 'kaiming'] as ExperimentFile['inits'], opts: ['sgd'] as ExperimentFile['opts'], seeds: [1, 2], config, hessian: null };
  return { format: 'ikun-experiment/1', ikun_version: 't', created: 'now', ...spec, points: gridPoints(spec) };
};

describe('the sbatch array script', () => {
  it('compresses indices into SLURM array ranges and quotes for bash', () => {
    expect(arrayRanges([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
    expect(arrayRanges([3])).toBe('3');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('has one task per point not yet done, a GPU per task for --device cuda and the pass-through flags', () => {
    const s = sbatchScript('/shared/exp', grid({ device: 'cuda' }), [0, 1, 3], { partition: 'gpu', time: '4:00:00', account: 'lab', cpusPerTask: 8 }, '/usr/bin/node', '/opt/ikun/cli.js');
    expect(s.startsWith('#!/bin/bash\n')).toBe(true);
    for (const line of ['#SBATCH --array=0-1,3', '#SBATCH --gres=gpu:1', '#SBATCH --partition=gpu', '#SBATCH --time=4:00:00', '#SBATCH --account=lab',
      '#SBATCH --cpus-per-task=8', '#SBATCH --output=/shared/exp/slurm/%A_%a.out'])
      expect(s).toContain(line + '\n');
    expect(s).toContain(`exec '/usr/bin/node' '/opt/ikun/cli.js' experiment run-one '/shared/exp' --index "$SLURM_ARRAY_TASK_ID" --threads 8`);
    const cpu = sbatchScript('/e', grid({ device: 'cpu' }), [0], {}, 'node', 'cli.js');
    expect(cpu).not.toContain('--gres');
    expect(cpu).not.toContain('--partition');
    expect(() => sbatchScript('/e', grid({}), [], {}, 'node', 'cli.js')).toThrow(/every point of the grid is done: there is nothing to submit/);
    expect(() => sbatchScript('/e', grid({}), [0], { time: 'soon' }, 'node', 'cli.js')).toThrow(/--time must be a SLURM time such as 30, 4:00:00/);
  });

  it('`ikun experiment --slurm --dry-run` prints a script bash accepts and writes nothing', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-slurm-')), 'exp');
    const r = spawnSync(process.execPath, [bin, 'experiment', '--sample', '--inits', 'ikun_v1,kaiming', '--opts', 'sgd', '--seeds', '1,2', '--epochs', '1',
      '--channels', '8', '--device', 'cuda', '--slurm', '--dry-run', '--partition', 'debug', '--time', '10:00', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('#SBATCH --array=0-3\n');
    expect(r.stdout).toContain('#SBATCH --gres=gpu:1\n');
    expect(r.stdout).toContain(`experiment run-one '${out}' --index "$SLURM_ARRAY_TASK_ID"`);
    expect(r.stderr).toMatch(/--dry-run: nothing written/);
    expect(existsSync(out)).toBe(false);
    const file = join(mkdtempSync(join(tmpdir(), 'wt12-slurm-')), 'job.sbatch');
    writeFileSync(file, r.stdout);
    const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    const bad = spawnSync(process.execPath, [bin, 'experiment', '--sample', '--dry-run'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^ikun: --dry-run, --partition, --time, --account and --cpus-per-task go with --slurm/);
  });
});

// A real single-node SLURM, started here for the test when slurm-wlm and munge are installed.
const local = startLocalSlurm();
afterAll(() => local.slurm?.stop());

describe.skipIf(local.slurm === null)(`a two-point grid through a real single-node SLURM${local.slurm ? '' : ` (skipped: ${local.reason})`}`, () => {
  it('submits one array task per point with sbatch; report aggregates what they wrote', async () => {
    const env = local.slurm!.env;
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-slurm-')), 'exp');
    const r = spawnSync(process.execPath, [bin, 'experiment', '--sample', '--inits', 'ikun_v1,kaiming', '--opts', 'sgd', '--seeds', '1', '--epochs', '1',
      '--channels', '4', '--subset', '512', '--device', 'cpu', '--slurm', '--cpus-per-task', '1', '--out', out], { encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    const job = /as SLURM job (\d+) \(2 array tasks\)/.exec(r.stdout);
    expect(job, r.stdout).not.toBeNull();
    expect(readFileSync(join(out, 'slurm', 'experiment.sbatch'), 'utf8')).toContain('#SBATCH --array=0-1\n');
    const deadline = Date.now() + 120_000;
    while ((spawnSync('squeue', ['-h', '-j', job![1]!], { encoding: 'utf8', env }).stdout ?? '').trim() !== '') {
      if (Date.now() > deadline) throw new Error(`SLURM job ${job![1]} did not finish in 2 minutes`);
      await new Promise((done) => setTimeout(done, 300));
    }
    for (const task of [0, 1]) expect(readFileSync(join(out, 'slurm', `${job![1]}_${task}.out`), 'utf8')).toMatch(/: trained \(1\/1 epochs\)/);
    const report = spawnSync(process.execPath, [bin, 'experiment', 'report', out], { encoding: 'utf8', env });
    expect(report.status, report.stderr).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.groups.map((g: { name: string }) => g.name)).toEqual(['ikun_v1-sgd', 'kaiming-sgd']);
    expect(results.points.done).toBe(2);
  }, 150_000);
});
