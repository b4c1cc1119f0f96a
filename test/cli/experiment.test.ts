// `ikun experiment` as a user runs it (the compiled bin): the small grid end to end, a rerun that
// trains nothing, a killed grid that resumes, and bad flags.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirectories } from '../../lib/files.js';
import { renderSvg, reportSpecs } from '../../lib/report/render-svg.js';
import { spawnToEnd } from '../helpers/spawn.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const ikun = (args: string[]) => spawnToEnd(process.execPath, [bin, ...args], { ...process.env });
const SMALL = ['--sample', '--inits', 'ikun_v1,kaiming', '--opts', 'sgd', '--seeds', '1,2', '--epochs', '1', '--channels', '8', '--subset', '1024', '--device', 'cpu'];
const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');

describe('ikun experiment', () => {
  it('runs the small grid end to end, then a rerun trains nothing', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-exp-')), 'exp');
    const r = await ikun(['experiment', ...SMALL, '--workers', '2', '--threads', '2', '--out', out]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`experiment ${out}: 4 points, 0 done, 4 to run on 2 workers (1 CPU thread each)`);
    const experiment = JSON.parse(readFileSync(join(out, 'experiment.json'), 'utf8'));
    expect(experiment.points.map((p: { run: string }) => p.run)).toEqual(['runs/ikun_v1-sgd-s1', 'runs/ikun_v1-sgd-s2', 'runs/kaiming-sgd-s1', 'runs/kaiming-sgd-s2']);
    expect(experiment.config).toMatchObject({ sample: true, epochs: 1, channels: 8, subset: 1024, device: 'cpu' });
    expect(readdirSync(join(out, 'runs')).sort()).toEqual(['ikun_v1-sgd-s1', 'ikun_v1-sgd-s2', 'kaiming-sgd-s1', 'kaiming-sgd-s2']);
    for (const run of readdirSync(join(out, 'runs'))) {
      const config = JSON.parse(readFileSync(join(out, 'runs', run, 'config.json'), 'utf8'));
      expect(`${config.init}-${config.opt}-s${config.seed}`).toBe(run);
      expect(lines(join(out, 'runs', run, 'metrics.jsonl'))).toHaveLength(1);
      expect(existsSync(join(out, 'runs', run, 'report.html'))).toBe(true);
    }
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.groups.map((g: { init: string; opt: string; seeds: number[] }) => [g.init, g.opt, g.seeds])).toEqual([['ikun_v1', 'sgd', [1, 2]], ['kaiming', 'sgd', [1, 2]]]);
    for (const g of results.groups) {
      const accs = ['s1', 's2'].map((s) => JSON.parse(lines(join(out, 'runs', `${g.init}-sgd-${s}`, 'metrics.jsonl'))[0]!).test_acc);
      expect(g.test_acc.mean).toBeCloseTo((accs[0] + accs[1]) / 2, 12);
      expect(g.test_acc.sd).toBeCloseTo(Math.abs(accs[0] - accs[1]) / Math.SQRT2, 12);
      expect(g.epochs_to_target === null || g.epochs_to_target === 1).toBe(true);
    }
    expect(results.groups.some((g: { epochs_to_target: number | null }) => g.epochs_to_target === 1)).toBe(true); // the best group reaches 95% of itself
    expect(readFileSync(join(out, 'results.csv'), 'utf8').split('\n')[0]).toMatch(/^init,opt,runs,seeds,epochs,final_train_acc_mean,/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // everything inlined: opens offline
    const specs = reportSpecs(html);
    expect(Object.keys(specs)).toEqual(['curves', 'final-test', 'best-test', 'final-train', 'epochs-to-target', 'firing-rates']);
    const svg = await renderSvg(specs.curves!);
    expect((svg.match(/<path/g) ?? []).length).toBeGreaterThan(10);

    const before = statSync(join(out, 'runs', 'kaiming-sgd-s2', 'last.safetensors')).mtimeMs;
    const again = await ikun(['experiment', ...SMALL, '--out', out]);
    expect(again.status, again.output).toBe(0);
    expect(again.output).toContain('4 points, 4 done, 0 to run');
    expect(again.output).not.toMatch(/epoch 1\/1/);
    expect(statSync(join(out, 'runs', 'kaiming-sgd-s2', 'last.safetensors')).mtimeMs).toBe(before);
    const report = await ikun(['experiment', 'report', out, '--target', '0.3']);
    expect(report.status, report.output).toBe(0);
    expect(report.output).toMatch(/epochs to 30\.00%/);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).target).toBe(0.3);
  }, 90_000);

  it('--hessian measures each best checkpoint honestly and the report shows the spectra', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-exp-')), 'exp');
    const r = await ikun(['experiment', '--sample', '--inits', 'ikun_v1', '--opts', 'sgd', '--seeds', '1', '--epochs', '1', '--channels', '4', '--subset', '512',
      '--device', 'cpu', '--hessian', '--hessian-top', '2', '--hessian-max-iter', '6', '--hessian-iter', '20', '--out', out]);
    expect(r.status, r.output).toBe(0);
    const h = JSON.parse(readFileSync(join(out, 'runs', 'ikun_v1-sgd-s1', 'hessian.json'), 'utf8'));
    expect(h.eigenvalues).toHaveLength(2);
    expect(h.iterations.every((n: number) => n >= 1 && n <= 6)).toBe(true);
    h.converged.forEach((ok: boolean, i: number) => expect(ok).toBe(h.last_relative_change[i] !== null && h.last_relative_change[i] < 1e-3));
    expect(h.trace.sample_count).toBe(h.trace.samples.length);
    expect(h.sample).toBe(true);
    expect(h.data).toBe('bundled Fashion-MNIST sample');
    if (h.converged.includes(false)) expect(r.output).toMatch(/warning: .*did not converge within 6 iterations/);
    const g = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).groups[0];
    expect(g.hessian.top_eigenvalue.mean).toBe(h.eigenvalues[0]);
    expect(g.hessian.trace.mean).toBe(h.trace.value);
    expect(g.hessian.converged).toBe(h.converged.every(Boolean) && h.trace.converged);
    expect(h.density.nodes.length).toBe(h.density.steps);
    expect(h.density.steps).toBeLessThanOrEqual(20);
    expect(h.density.weights.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    expect(g.hessian.density.grid).toHaveLength(400);
    expect(Object.keys(reportSpecs(readFileSync(join(out, 'report.html'), 'utf8')))).toEqual(expect.arrayContaining(['spectrum', 'top-eigenvalue', 'density', 'trace']));
  }, 90_000);

  it('continues a killed grid where it stopped', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-exp-')), 'exp');
    const args = ['experiment', '--sample', '--inits', 'kaiming', '--opts', 'sgd', '--seeds', '1', '--epochs', '3', '--channels', '8', '--subset', '2048', '--device', 'cpu', '--out', out];
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'ignore' });
    const runDir = join(out, 'runs', 'kaiming-sgd-s1');
    const metrics = join(runDir, 'metrics.jsonl');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(join(runDir, 'last.safetensors')) && existsSync(metrics) && lines(metrics).length >= 1)) {
      if (Date.now() > deadline) throw new Error('the first epoch never finished');
      await new Promise((done) => setTimeout(done, 50));
    }
    child.kill('SIGKILL'); // the coordinator dies at once; its worker sees its stdin close and stops too
    await new Promise((done) => child.on('close', done));
    await new Promise((done) => setTimeout(done, 1500));
    const stopped = lines(metrics).length;
    expect(stopped).toBeLessThan(3);
    await new Promise((done) => setTimeout(done, 1500));
    expect(lines(metrics)).toHaveLength(stopped); // nothing trains on unwatched
    const r = await ikun(args);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`kaiming-sgd-s1: resuming after epoch ${stopped} of 3`);
    expect(lines(metrics).map((l) => JSON.parse(l).epoch)).toEqual([1, 2, 3]);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).groups[0].epochs).toBe(3);
  }, 90_000);

  it('keeps going when a point fails, reports the others and exits 1 with the reason', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-exp-')), 'exp');
    makeDirectories(join(out, 'runs'));
    writeFileSync(join(out, 'runs', 'kaiming-sgd-s1'), 'a file where the run folder should be');
    const r = await ikun(['experiment', '--sample', '--inits', 'kaiming', '--opts', 'sgd', '--seeds', '1,2', '--epochs', '1', '--channels', '4', '--subset', '512',
      '--device', 'cpu', '--out', out]);
    expect(r.status, r.output).toBe(1);
    expect(r.output).toMatch(/ikun: runs\/kaiming-sgd-s1 failed: .*cannot write to the output folder/);
    expect(r.output).toMatch(/1 point failed; fix the cause and run the same command again to retry it/);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.groups[0].seeds).toEqual([2]);
    expect(results.points.pending).toEqual([{ run: 'runs/kaiming-sgd-s1', state: 'pending', epochs_done: 0, epochs: 1 }]);
  }, 60_000);

  it('exits 2 with the reason on bad flags, before writing anything', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-exp-')), 'exp');
    const cases: Array<[string[], RegExp]> = [
      [['--init', 'kaiming'], /--init is set per point by the grid; give --inits/],
      [['--seeds', '1,1'], /seeds lists 1 twice/],
      [['--inits', 'he'], /--inits: unknown init 'he'/],
      [['--opts', 'rmsprop'], /--opts: unknown optimiser 'rmsprop'/],
      [['--epochs', '0'], /epochs must be an integer >= 1/],
      [['--workers', '0'], /--workers.*must be between 1 and 256/],
      [['--bogus'], /unknown flag --bogus/],
      [['--resume', 'x'], /--resume does not apply to an experiment/],
      [['--target', '90'], /--target.*must be a test accuracy in \(0, 1\]/],
      [['--hessian-top', '3'], /--hessian-top, --hessian-max-iter and --hessian-iter need --hessian/],
    ];
    for (const [flags, message] of cases) {
      const r = spawnSync(process.execPath, [bin, 'experiment', '--sample', ...flags, '--out', out], { encoding: 'utf8' });
      expect(r.status, flags.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^ikun: /);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
    const help = spawnSync(process.execPath, [bin, 'experiment', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const flag of ['--inits', '--opts', '--seeds', '--workers', '--hessian', '--target', '--slurm', '--dry-run', 'run-one', 'report'])
      expect(help.stdout).toContain(flag);
    const one = spawnSync(process.execPath, [bin, 'experiment', 'run-one', out], { encoding: 'utf8' });
    expect(one.status).toBe(2);
    expect(one.stderr).toMatch(/required option '--index <i>' not specified/);
  });
});
