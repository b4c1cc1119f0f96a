// The `ikun` command as a user runs it: the compiled bin (npm test compiles before running vitest).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTrainArgs } from '../../lib/cli/train-flags.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('ikun train', () => {
  it('trains on the bundled sample into --out and prints one line per epoch off a terminal', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'ikun-cli-')), 'run');
    const r = run(['train', '--sample', '--epochs', '1', '--channels', '4', '--subset', '512', '--device', 'cpu', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/epoch 1\/1 {2}train loss [\d.]+ acc [\d.]+% {2}test loss/);
    for (const f of ['config.json', 'metrics.jsonl', 'metrics.csv', 'best.safetensors', 'last.safetensors']) expect(existsSync(join(out, f))).toBe(true);
    const m = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim());
    expect(m.test_acc).toBeGreaterThanOrEqual(0);
    expect(m.test_acc).toBeLessThanOrEqual(1);
  });

  it('documents every flag in --help', () => {
    const r = run(['train', '--help']);
    expect(r.status).toBe(0);
    for (const flag of ['--init', '--beta-mode', '--opt', '--lr', '--momentum', '--epochs', '--batch', '--T', '--channels', '--subset',
      '--seed', '--neuron', '--surrogate', '--device', '--out', '--data', '--sample', '--resume', '--weight-decay', '--schedule',
      '--checkpoint-every', '--on-nan'])
      expect(r.stdout).toContain(flag);
  });

  it('exits 2 with the reason on bad flags, 1 on an unwritable output folder before training', () => {
    for (const args of [['train', '--bogus'], ['train', '--epochs', 'ten'], ['train', '--opt', 'rmsprop'], ['train', '--epochs'],
      ['train', '--seed', '1.5'], ['fly'], ['train', '--resume', 'x', '--lr', '0.1']]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^ikun: /);
    }
    const file = join(mkdtempSync(join(tmpdir(), 'ikun-cli-')), 'file');
    writeFileSync(file, 'x');
    const r = run(['train', '--sample', '--out', join(file, 'run')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot write to the output folder/);
    for (const args of [['--surrogate', 'tanh:2'], ['--epochs', '0'], ['--lr', '-1'], ['--momentum', '1'], ['--device', 'gpu'],
      ['--out='], ['--data='], ['--threads', '0']]) {
      const bad = run(['train', '--sample', ...args]);
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/^ikun: /);
    }
    expect(run(['train', '--surrogate', 'tanh:2']).stderr).toMatch(/unknown surrogate "tanh"/);
  });

  it("rephrases the API's coded errors in flags: --out, --resume, --data, --sample, --device", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ikun-cli-'));
    writeFileSync(join(dir, 'last.safetensors'), '');
    const exists = run(['train', '--sample', '--out', dir]);
    expect(exists.status).toBe(1);
    expect(exists.stderr).toContain(`'${dir}' already holds a run (last.safetensors); continue it with --resume ${dir} or choose another --out`);
    const empty = mkdtempSync(join(tmpdir(), 'ikun-cli-'));
    expect(run(['train', '--resume', empty]).stderr).toContain(`--resume: '${empty}' is not a run folder (no config.json)`);
    const noData = run(['train', '--data', join(empty, 'absent'), '--out', join(empty, 'r')]);
    expect(noData.status).toBe(1);
    expect(noData.stderr).toMatch(/Fashion-MNIST not found: the folder .*absent does not exist/);
    expect(noData.stderr).toContain('`--data DIR`');
    expect(noData.stderr).toContain('`--sample`');
    const gpu = run(['train', '--sample', '--device', 'cuda', '--out', join(empty, 'g')]);
    expect(gpu.status).toBe(1);
    expect(gpu.stderr).toMatch(/device 'cuda' cannot be used: .*Use --device cpu\./);
  });

  it('parses the paper defaults and values', () => {
    expect(parseTrainArgs(['--init', 'kaiming', '--lr=0.05', '--nesterov', '--T', '8']).config).toEqual({ init: 'kaiming', lr: 0.05, nesterov: true, T: 8 });
    expect(() => parseTrainArgs(['--T', '4', '--T', '5'])).toThrow(/--T given twice/);
  });
});
