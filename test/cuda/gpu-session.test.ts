// scripts/gpu-session.sh, the one prepared command of a lent GPU session, end to end on the emulated device at
// smoke sizes: every step runs and logs, the summary has a line per step, and the budget cuts later steps off.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const script = join(root, 'scripts/gpu-session.sh');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// A stand-in python3 for the anchor step (PyTorch is not on the CI machines; test/torch-anchor.test.ts tests
// the real script): it records its arguments and writes the anchor's JSON with a training epoch of 2 s.
function fakePython(): string {
  const bin = mkdtempSync(join(tmpdir(), 'ikun-fake-python-'));
  dirs.push(bin);
  writeFileSync(join(bin, 'python3'), `#!/usr/bin/env node
const args = process.argv.slice(2), json = args[args.indexOf('--json') + 1];
require('fs').writeFileSync(json, JSON.stringify({ epoch_s: 2, precision: 'default', args }));
console.log('fake torch-anchor');
`, { mode: 0o755 });
  return bin;
}

// Asynchronous, so that the test worker's event loop keeps answering vitest while the script runs for a minute.
async function session(args: string[], timeout = 200_000, extraPath = '') {
  const out = mkdtempSync(join(tmpdir(), 'ikun-gpu-session-')), work = mkdtempSync(join(tmpdir(), 'ikun-gpu-session-work-'));
  dirs.push(out, work);
  const path = extraPath ? `${extraPath}:${process.env.PATH}` : process.env.PATH;
  const env = { ...process.env, PATH: path, OUT: out, WORK: work, IKUN_CUDA_EMULATE: '1' };
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done, failed) => {
    const child = spawn('bash', [script, ...args], { cwd: root, env, timeout });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', failed);
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
  const read = (name: string): string => (existsSync(join(out, name)) ? readFileSync(join(out, name), 'utf8') : '');
  return { ...r, out, work, summary: read('summary.txt'), log: read('session.log') };
}

describe('scripts/gpu-session.sh', () => {
  it('refuses bad flags before running anything', async () => {
    for (const [args, message] of [
      [['--budget', 'soon'], /--budget needs a positive whole number of seconds, got 'soon'/],
      [['--budget'], /--budget needs a positive whole number of seconds, got ''/],
      [['--fast'], /unknown flag '--fast'/],
      [['--steps', 'check,train,'], /--steps takes a comma-separated list of check, bench, anchor, train and sanitize, got 'check,train,'/],
      [['--steps', 'bench,hessian'], /--steps takes .* got 'bench,hessian'/],
    ] as const) {
      const r = await session([...args]);
      expect(r.status, r.stdout).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.summary).toBe('');
    }
  });

  it('runs gpu-check, the bench, the PyTorch anchor and both training runs, one summary line each', async () => {
    const r = await session(['--smoke'], 200_000, fakePython());
    expect(r.status, r.stderr).toBe(0);
    const lines = r.summary.trim().split('\n');
    for (const name of ['gpu-check', 'bench-gpu-fp32', 'train-sgd', 'train-adam'])
      expect(lines, r.summary).toContainEqual(expect.stringMatching(new RegExp(`^${name}: exit 0, \\d+ s$`)));
    expect(r.summary).toMatch(/^torch-anchor: exit 0, \d+ s$/m);
    const anchor = JSON.parse(readFileSync(join(r.out, 'torch-anchor.json'), 'utf8'));
    expect(anchor.args).toEqual(['bench/torch-anchor.py', '--json', join(r.out, 'torch-anchor.json'), '--smoke', '--data', 'data/sample']);
    // the same-session ratio: the anchor's 2 s against the bench's training epoch
    const benchEpoch = Number(/^training epoch \(s\)\s*\|\s*([\d.]+)/m.exec(r.log)![1]);
    const ratio = /^same-session ratio, fp32: ikun ([\d.]+) s per training epoch, plain PyTorch \(its default precision\) 2\.000 s: ([\d.]+)x \(the goal, 5x SpikingJelly-cupy, is about 4\.76x plain PyTorch by the reference figures\)$/m.exec(r.summary);
    expect(ratio, r.summary).not.toBeNull();
    expect(Number(ratio![1])).toBe(benchEpoch);
    expect(Number(ratio![2])).toBeCloseTo(2 / benchEpoch, 2);
    for (const opt of ['sgd', 'adam']) {
      expect(r.summary).toMatch(new RegExp(`^train-${opt}: 1 epochs, test accuracy last \\d+\\.\\d\\d% best \\d+\\.\\d\\d%, median training epoch \\d+\\.\\d{3} s, test pass \\d+\\.\\d{3} s \\(epoch 1: \\d+\\.\\d{3} s\\)$`, 'm'));
      expect(existsSync(join(r.work, `train-${opt}`, 'last.safetensors'))).toBe(true);  // the checkpoints stay in WORK
      const metrics = readFileSync(join(r.out, `train-${opt}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(metrics.map((m) => m.epoch)).toEqual([1]);
    }
    expect(lines.at(-1)).toMatch(/^gpu-session: \d+ s of a 540 s budget$/);
    // what the device tool brings back: at most 8 plain files, none in a folder
    const files = readdirSync(r.out);
    expect(files.length).toBeLessThanOrEqual(8);
    for (const f of files) expect(statSync(join(r.out, f)).isFile(), f).toBe(true);
    expect(files.sort()).toEqual(['session.log', 'summary.txt', 'torch-anchor.json', 'train-adam.jsonl', 'train-sgd.jsonl']);
    // session.log: each step's output under its header, and its summary line
    expect(r.log).toMatch(/^== gpu-check \(limit \d+ s\): node dist\/bench\/gpu-check\.js --small/m);
    expect(r.log).toMatch(/mma\.m16n8k8 TF32 fragment layout .*: max error 0, pass/);
    expect(r.log).toMatch(/mma\.m16n8k16 bf16 fragment layout .*: max error 0, pass/);
    expect(r.log).toMatch(/^== bench-gpu-fp32 [^]*training epoch \(s\)[^]*^bench-gpu-fp32: exit 0, \d+ s$/m);
    expect(r.log).toMatch(/^== train-adam [^]*epoch 1\/1 [^]*^train-adam: exit 0/m);
  }, 240_000);

  it('runs only the steps --steps names', async () => {
    const r = await session(['--smoke', '--steps', 'check']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.summary).toMatch(/^gpu-check: exit 0, \d+ s\ngpu-session: \d+ s of a 540 s budget\n$/);
    // sanitize is asked for by name only; without compute-sanitizer (the CI machines) it says so
    const sanitize = await session(['--smoke', '--steps', 'sanitize']);
    expect(sanitize.status, sanitize.stderr).toBe(0);
    expect(sanitize.summary).toMatch(/^(sanitize: skipped, no compute-sanitizer here|sanitize-memcheck: exit \d+.*)$/m);
  });

  it('stops a step at what the budget leaves and skips the steps after it', async () => {
    const r = await session(['--smoke', '--budget', '32']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.summary).toMatch(/^gpu-check: exit 0, \d+ s$/m);
    expect(r.summary).toMatch(/^bench-gpu-fp32: exit (124|130) \(stopped at its limit\), \d+ s$/m);
    expect(r.summary).toMatch(/^train-sgd: skipped, the budget is spent$/m);
    expect(r.summary).toMatch(/^train-adam: skipped, the budget is spent$/m);
    expect(r.summary).not.toMatch(/no epoch finished/);  // no figures read for a run that did not start
  }, 120_000);

  it('scripts/gpu-pack.sh names the missing device-pack tool before it stages anything', () => {
    const r = spawnSync('bash', [join(root, 'scripts/gpu-pack.sh')], { cwd: root, encoding: 'utf8', env: { ...process.env, IKUN_DEVICE_PACK: '/nonexistent/device-pack.sh' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/gpu-pack: the device-pack tool is not at \/nonexistent\/device-pack\.sh \(set IKUN_DEVICE_PACK to it\)/);
    expect(existsSync(join(root, 'dist/node_modules'))).toBe(false);
  });
});
