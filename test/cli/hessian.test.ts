// `ikun hessian`: flag parsing, the SVG writer, and an end-to-end run on a freshly trained tiny CSNN.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hessianCommand } from '../../lib/cli/hessian.js';
import { HESSIAN_DEFAULTS, hessianHelp, parseHessianArgs } from '../../lib/cli/hessian-flags.js';
import { densitiesPlot, densityPlot, eigenvaluePlot, niceTicks } from '../../lib/svg.js';
import { train } from '../../lib/train.js';

/** Runs the command with console output captured. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await hessianCommand(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** A small XML well-formedness check: every tag closes in order, attributes are quoted. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  const body = svg.replace(/<\?xml[^>]*\?>/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) {
      if (stack.pop() !== name) return false;
    } else if (!self) stack.push(name!);
  }
  const stripped = body.replace(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '');
  return stack.length === 0 && !/[<>]/.test(stripped);
}

afterEach(() => vi.restoreAllMocks());

describe('parseHessianArgs', () => {
  it('parses defaults, repeated checkpoints and values', () => {
    expect(parseHessianArgs(['--checkpoint', 'a.safetensors'])).toMatchObject({ checkpoints: ['a.safetensors'], ...HESSIAN_DEFAULTS, trace: false, density: false, sample: false, progress: true });
    expect(HESSIAN_DEFAULTS).toEqual({ samples: 1, top: 50, iter: 100, maxIter: 100, tol: 1e-3, seed: 0 });
    const a = parseHessianArgs(['--checkpoint', 'a', '--checkpoint=b', '--top', '3', '--trace', '--density', '--iter=10', '--max-iter', '20',
      '--tol', '1e-4', '--seed', '7', '--samples', '2', '--sample', '--data', 'd', '--out', 'o', '--no-progress', '--threads', '2']);
    expect(a).toMatchObject({ checkpoints: ['a', 'b'], top: 3, trace: true, density: true, iter: 10, maxIter: 20, tol: 1e-4, seed: 7, samples: 2,
      sample: true, data: 'd', out: 'o', progress: false, threads: 2 });
    expect(parseHessianArgs(['--help']).help).toBe(true);
  });

  it('rejects bad flags with the reason', () => {
    const bad: Array<[string[], RegExp]> = [
      [[], /at least one --checkpoint/],
      [['--checkpoint'], /--checkpoint needs a value/],
      [['--checkpoint', 'a', '--bogus'], /unknown flag --bogus/],
      [['--checkpoint', 'a', 'extra'], /unexpected argument 'extra'/],
      [['--checkpoint', 'a', '--top', '0'], /--top must be at least 1/],
      [['--checkpoint', 'a', '--top', 'ten'], /--top must be a number/],
      [['--checkpoint', 'a', '--iter', '1.5'], /--iter must be an integer/],
      [['--checkpoint', 'a', '--tol', '0'], /--tol must be a number > 0/],
      [['--checkpoint', 'a', '--seed', '-1'], /--seed must be at least 0/],
      [['--checkpoint', 'a', '--trace=yes'], /--trace takes no value/],
      [['--checkpoint', 'a', '--top', '2', '--top', '3'], /--top given twice/],
      [['--checkpoint', 'a', '--out', '--trace'], /--out needs a value/],
    ];
    for (const [argv, reason] of bad) expect(() => parseHessianArgs(argv), argv.join(' ')).toThrow(reason);
  });

  it('exits 2 on bad flags and 0 on --help', async () => {
    for (const argv of [['--bogus'], ['--checkpoint', 'a', '--max-iter', 'x'], []]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^ikun: .*\nRun 'ikun hessian --help' for the flags\.$/);
    }
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--checkpoint', '--samples', '--top', '--trace', '--density', '--iter', '--max-iter', '--tol', '--seed', '--data', '--sample', '--out', '--no-progress'])
      expect(help.stdout).toContain(flag);
    expect(hessianHelp()).toContain('Usage: ikun hessian');
  });
});

describe('svg', () => {
  it('writes well-formed eigenvalue and density plots', () => {
    const eig = eigenvaluePlot([{ label: 'ikun <v1> & "x"', eigenvalues: [5, 3, 1, -0.5] }, { label: 'kaiming', eigenvalues: [7, 2] }]);
    expect(eig.startsWith('<svg')).toBe(true);
    expect(eig.trimEnd().endsWith('</svg>')).toBe(true);
    expect(eig).toMatch(/<path d="M/);
    expect(eig).toContain('ikun &lt;v1&gt; &amp; &quot;x&quot;');
    expect(eig).toContain('kaiming');
    expect(eig).toContain('>Rank</text>');
    expect(wellFormed(eig)).toBe(true);
    const grid = Array.from({ length: 10_000 }, (_, i) => -1 + (i * 4) / 9999);
    const density = grid.map((x) => Math.exp(-((x - 1) ** 2) / 0.01));
    const d = densityPlot(grid, density);
    expect(d.startsWith('<svg')).toBe(true);
    expect(d).toMatch(/<path d="M/);
    expect(d).toContain('Density (log scale)');
    expect(d).toContain('>1e-8</text>'); // clipped at 1e-8
    expect(wellFormed(d)).toBe(true);
    expect(d.length).toBeLessThan(100_000); // decimated per pixel column
    expect(wellFormed(densitiesPlot([{ label: 'a', grid, density }, { label: 'b', grid, density: density.map((v) => v / 2) }]))).toBe(true);
    expect(wellFormed('<svg><g></svg>')).toBe(false);
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
    expect(() => eigenvaluePlot([])).toThrow(/non-empty/);
    expect(() => densityPlot([1, 2], [1])).toThrow(/as many density values as grid points/);
  });
});

describe('ikun hessian end to end', () => {
  let runDir = '';
  beforeAll(async () => {
    runDir = join(mkdtempSync(join(tmpdir(), 'ikun-hessian-')), 'run');
    await train({ sample: true, epochs: 1, channels: 2, subset: 256, batch: 64, device: 'cpu', out: runDir });
  }, 120_000);

  it('writes eigenvalues, trace and density for a trained checkpoint', async () => {
    const out = join(runDir, 'analysis');
    const r = await run(['--checkpoint', join(runDir, 'best.safetensors'), '--top', '3', '--trace', '--density', '--iter', '10', '--max-iter', '30', '--no-progress', '--out', out]);
    // Only the convergence warnings may reach stderr (30 steps need not settle every eigenvalue).
    expect(r.stderr).toMatch(/^(ikun: warning: [^\n]*(\n|$))*$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/top 3 eigenvalue\(s\): /);
    expect(r.stdout).toMatch(/trace: /);
    for (const f of ['hessian.json', 'eigenvalues.csv', 'trace.csv', 'density.csv', 'eigenvalues.svg', 'density.svg']) expect(existsSync(join(out, f)), f).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'hessian.json'), 'utf8'));
    const c = json.checkpoints[0];
    expect(c.eigenvalues).toHaveLength(3);
    expect(c.eigenvalues.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(c.trace.trace)).toBe(true);
    expect(c.density.nodes[0].length).toBeGreaterThan(0);
    expect(c.density.nodes[0].length).toBeLessThanOrEqual(10);
    expect(c.config.channels).toBe(2);
    // Honest numbers: per eigenvalue its steps, last relative change and whether it settled; the trace's
    // standard error and sample count; the data actually used (the run trained on the bundled sample).
    expect(c.eigen_iterations).toHaveLength(3);
    expect(c.eigen_converged).toHaveLength(3);
    c.eigen_converged.forEach((ok: boolean, i: number) => {
      const change = c.eigen_last_relative_change[i];
      if (ok) expect(change).toBeLessThan(1e-3);
      else expect(c.eigen_iterations[i]).toBe(30);
    });
    expect(r.stdout).toMatch(/#1 -?[\d.e+-]+ {2}\d+ iterations, .*(converged|NOT converged)/);
    expect(c.trace.sample_count).toBe(c.trace.samples.length);
    if (c.trace.sample_count > 1) expect(c.trace.standard_error).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/trace: [-\d.e+]+ (± [\d.e+-]+ standard error|no standard error from 1 sample) \(\d+ Rademacher samples, samples from/);
    expect(c.sample).toBe(true);
    expect(json.sample).toBe(true);
    expect(json.data.sources).toEqual(['bundled Fashion-MNIST sample']);
    expect(json.options).toMatchObject({ top: 3, iter: 10, maxIter: 30, samples: 1 });
    const csv = readFileSync(join(out, 'eigenvalues.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('rank,eigenvalue');
    expect(csv.slice(1).map((l) => Number(l.split(',')[1]))).toEqual(c.eigenvalues);
    const dens = readFileSync(join(out, 'density.csv'), 'utf8').trim().split('\n');
    expect(dens[0]).toBe('grid,density');
    expect(dens).toHaveLength(10_001);
    expect(readFileSync(join(out, 'trace.csv'), 'utf8').split('\n')[0]).toBe('sample,value,running_mean');
    for (const f of ['eigenvalues.svg', 'density.svg']) expect(wellFormed(readFileSync(join(out, f), 'utf8'))).toBe(true);
  }, 120_000);

  it('overlays several checkpoints and defaults --out to the checkpoint folder', async () => {
    const r = await run(['--checkpoint', join(runDir, 'best.safetensors'), '--checkpoint', join(runDir, 'last.safetensors'), '--top', '2', '--max-iter', '10', '--no-progress']);
    expect(r.stderr).toMatch(/^(ikun: warning: [^\n]*(\n|$))*$/);
    expect(r.code).toBe(0);
    const out = join(runDir, 'hessian');
    const csv = readFileSync(join(out, 'eigenvalues.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('rank,eigenvalue,checkpoint');
    expect(csv).toHaveLength(5);
    expect(csv[1]).toMatch(/,run\/best\.safetensors$/);
    expect(csv[3]).toMatch(/,run\/last\.safetensors$/);
    const svg = readFileSync(join(out, 'eigenvalues.svg'), 'utf8');
    expect(svg).toContain('run/best.safetensors');
    expect(svg).toContain('run/last.safetensors');
    // best and last are the same weights after one epoch, and the seed is the same: the same numbers
    const json = JSON.parse(readFileSync(join(out, 'hessian.json'), 'utf8'));
    expect(json.checkpoints[1].eigenvalues).toEqual(json.checkpoints[0].eigenvalues);
  }, 120_000);

  it('warns on stderr, naming the eigenvalues, when --max-iter ends them still moving', async () => {
    const r = await run(['--checkpoint', join(runDir, 'best.safetensors'), '--top', '2', '--max-iter', '2', '--tol', '1e-12', '--no-progress',
      '--out', join(runDir, 'capped')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ikun: warning: .*eigenvalues 1, 2 did not converge within --max-iter 2/);
    expect(r.stdout).toMatch(/#1 .* 2 iterations, last relative change [\d.e+-]+, NOT converged/);
    const json = JSON.parse(readFileSync(join(runDir, 'capped', 'hessian.json'), 'utf8'));
    expect(json.checkpoints[0].eigen_converged).toEqual([false, false]);
  }, 120_000);

  it('fails with exit 1 on a missing or corrupt checkpoint and on an unwritable --out, before computing', async () => {
    const missing = await run(['--checkpoint', join(runDir, 'nope.safetensors')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/checkpoint .*nope\.safetensors not found/);
    const corrupt = join(runDir, 'corrupt.safetensors');
    writeFileSync(corrupt, 'not a safetensors file at all');
    const bad = await run(['--checkpoint', corrupt, '--out', join(runDir, 'corrupt-out')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cannot read the checkpoint .*corrupt\.safetensors/);
    const file = join(runDir, 'a-file');
    writeFileSync(file, 'x');
    const unwritable = await run(['--checkpoint', join(runDir, 'best.safetensors'), '--out', join(file, 'out')]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/cannot write to the output folder/);
    expect(unwritable.stdout).toBe('');
  });
});
