// `ikun train` on a diverged run, as the issue met it: resumed from a checkpoint with a NaN weight, the
// command must stop at the first step with a message naming where and what, exit non-zero, and leave
// last.safetensors as it was.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensorsAtomic } from '../../lib/safetensors.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('ikun train and a NaN weight', () => {
  it('--resume stops at epoch 2, step 1 naming the tensors, exits 1 and keeps last.safetensors; --resume --on-nan skip skips every batch and stops too', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'ikun-cli-nan-')), 'run');
    const r = run(['train', '--sample', '--epochs', '1', '--channels', '4', '--subset', '256', '--batch', '32', '--device', 'cpu', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const file = join(out, 'last.safetensors');
    const saved = readSafetensors(file);
    const [name, weight] = [...saved.tensors].find(([n, t]) => n.endsWith('weight') && t.dtype === 'F32')!;
    (weight.data as Float32Array)[0] = Number.NaN;
    writeSafetensorsAtomic(file, saved.tensors, saved.metadata);
    const poisoned = readFileSync(file);

    const resumed = run(['train', '--resume', out, '--epochs', '2']);
    expect(resumed.status).toBe(1);
    expect(resumed.stdout).not.toMatch(/epoch 2\/2/); // no epoch line of NaN numbers
    expect(resumed.stderr).toMatch(/^ikun: training diverged in epoch 2, step 1 of 8: /);
    expect(resumed.stderr).toContain(`'${name}'`);
    expect(resumed.stderr).toContain('last.safetensors (after epoch 1) is left as it was');
    expect(resumed.stderr).toContain('pass --on-nan skip');
    expect(readFileSync(file).equals(poisoned)).toBe(true);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);

    // --on-nan may be changed on resume; a NaN weight spoils every batch, so skipping them all still stops
    const skipping = run(['train', '--resume', out, '--epochs', '2', '--on-nan', 'skip']);
    expect(skipping.status).toBe(1);
    expect(skipping.stderr).toMatch(/^ikun: training diverged in epoch 2, step 8 of 8: every batch of the epoch had a non-finite loss or gradient and was skipped/);
    expect(readFileSync(file).equals(poisoned)).toBe(true);

    const bad = run(['train', '--sample', '--on-nan', 'maybe']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^ikun: --on-nan must be one of stop, skip, got 'maybe'/);
  });
});
