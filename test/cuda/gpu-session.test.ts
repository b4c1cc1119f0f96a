// scripts/gpu-session.sh, the one prepared command of a lent GPU session, end to end on the emulated device at
// smoke sizes: every step runs and logs, the summary has a line per step, and the budget cuts later steps off.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const script = join(root, 'scripts/gpu-session.sh');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function session(args: string[], timeout = 200_000) {
  const out = mkdtempSync(join(tmpdir(), 'ikun-gpu-session-'));
  dirs.push(out);
  const r = spawnSync('bash', [script, ...args], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, OUT: out, IKUN_CUDA_EMULATE: '1' } });
  const summary = existsSync(join(out, 'summary.txt')) ? readFileSync(join(out, 'summary.txt'), 'utf8') : '';
  return { ...r, out, summary };
}

describe('scripts/gpu-session.sh', () => {
  it('refuses bad flags before running anything', () => {
    for (const [args, message] of [
      [['--budget', 'soon'], /--budget needs a positive whole number of seconds, got 'soon'/],
      [['--budget'], /--budget needs a positive whole number of seconds, got ''/],
      [['--fast'], /unknown flag '--fast'/],
    ] as const) {
      const r = session([...args]);
      expect(r.status, r.stdout).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.summary).toBe('');
    }
  });

  it('runs gpu-check, the bench, the PyTorch anchor and both training runs, one summary line each', () => {
    const r = session(['--smoke']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.summary.trim().split('\n');
    for (const name of ['gpu-check', 'bench-gpu-fp32', 'train-sgd', 'train-adam'])
      expect(lines, r.summary).toContainEqual(expect.stringMatching(new RegExp(`^${name}: exit 0, \\d+ s$`)));
    // PyTorch is not on the CI machines: the anchor says so and exits 0 (or, where it is, runs its smoke size)
    expect(r.summary).toMatch(/^(torch-anchor: exit 0, \d+ s|torch-anchor: skipped, no python3 here)$/m);
    for (const opt of ['sgd', 'adam']) {
      expect(r.summary).toMatch(new RegExp(`^train-${opt}: 1 epochs, test accuracy last \\d+\\.\\d\\d% best \\d+\\.\\d\\d%, mean training epoch \\d+\\.\\d{3} s, test pass \\d+\\.\\d{3} s$`, 'm'));
      expect(existsSync(join(r.out, `train-${opt}`, 'last.safetensors'))).toBe(true);
    }
    expect(lines.at(-1)).toMatch(/^gpu-session: \d+ s of a 540 s budget$/);
    const check = readFileSync(join(r.out, 'gpu-check.log'), 'utf8');
    expect(check).toMatch(/mma\.m16n8k8 TF32 fragment layout .*: max error 0, pass/);
    expect(check).toMatch(/mma\.m16n8k16 bf16 fragment layout .*: max error 0, pass/);
    expect(readFileSync(join(r.out, 'bench-gpu-fp32.log'), 'utf8')).toMatch(/training epoch \(s\)/);
  }, 240_000);

  it('stops a step at what the budget leaves and skips the steps after it', () => {
    const r = session(['--smoke', '--budget', '8']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.summary).toMatch(/^gpu-check: exit 0, \d+ s$/m);
    expect(r.summary).toMatch(/^bench-gpu-fp32: exit (124|130) \(stopped at its limit\), \d+ s$/m);
    expect(r.summary).toMatch(/^train-sgd: skipped, the budget is spent$/m);
    expect(r.summary).toMatch(/^train-adam: skipped, the budget is spent$/m);
    expect(r.summary).not.toMatch(/no epoch finished/);  // no figures read for a run that did not start
  }, 120_000);
});
