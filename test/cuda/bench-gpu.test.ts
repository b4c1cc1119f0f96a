// bench:gpu's code path on the emulated device (--smoke: a tiny run); without --smoke it refuses to time
// the emulation.
import { describe, expect, it } from 'vitest';
import { spawnToEnd } from '../helpers/spawn.js';

const script = new URL('../../dist/bench/gpu.js', import.meta.url).pathname;

describe('bench:gpu on the emulated device', () => {
  it('refuses to measure the emulation without --smoke', async () => {
    const r = await spawnToEnd(process.execPath, [script], process.env);
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/the emulated one of the tests, not a GPU; nothing to measure/);
  });

  // Spawned without blocking the worker's event loop (vitest's RPC times out behind a long spawnSync).
  it('--smoke prints the table and the per-op split of a profiled epoch', async () => {
    const r = await spawnToEnd(process.execPath, [script, '--smoke', '--precision', 'fp32'], process.env);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/precision fp32/);
    for (const row of ['training epoch \\(s\\)', 'samples/s', 'test pass over 128 images', 'peak device memory', 'TFLOP/s', 'speed-up'])
      expect(r.output).toMatch(new RegExp(row));
    for (const op of ['conv2dForward', 'neuronPoolForward', 'batchNormForward', 'linearForward', 'sgdStep']) expect(r.output).toMatch(new RegExp(`\\n${op} +\\| `));
    // the launch count: 4 steps of 64 (256 images), each about 30 ops plus the test pass's share
    const launches = /; (\d+) ops, ([\d.]+) per training step/.exec(r.output);
    expect(launches, r.output).not.toBeNull();
    expect(Number(launches![2])).toBeGreaterThan(25);
    expect(Number(launches![2])).toBeLessThan(60);
  }, 600_000);
});
