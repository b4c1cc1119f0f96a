// bench:gpu's code path on the emulated device (--smoke: a tiny run); without --smoke it refuses to time
// the emulation.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const script = new URL('../../dist/bench/gpu.js', import.meta.url).pathname;

describe('bench:gpu on the emulated device', () => {
  it('refuses to measure the emulation without --smoke', () => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/the emulated one of the tests, not a GPU; nothing to measure/);
  });

  it('--smoke prints the table and the per-op split of a profiled epoch', () => {
    const r = spawnSync(process.execPath, [script, '--smoke', '--precision', 'fp32'], { encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/precision fp32/);
    for (const row of ['training epoch \\(s\\)', 'samples/s', 'test pass over 128 images', 'peak device memory', 'TFLOP/s', 'speed-up'])
      expect(r.stdout).toMatch(new RegExp(row));
    for (const op of ['conv2dForward', 'neuronPoolForward', 'batchNormForward', 'linearForward', 'sgdStep']) expect(r.stdout).toMatch(new RegExp(`\\n${op} +\\| `));
  }, 600_000);
});
