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
    // the measured epoch waits for the device only to read its totals; its steps' blocks come from the cache
    // (a cudaMalloc or two at the epoch's start, where the allocator's cache is still settling, are allowed)
    const queued = /host waits \/ cudaMalloc calls in the epoch +\| +(\d+) \/ (\d+) /.exec(r.output);
    expect(queued, r.output).not.toBeNull();
    expect(Number(queued![1])).toBeLessThanOrEqual(3);
    expect(Number(queued![2])).toBeLessThanOrEqual(4);
    expect(Number(/kernels \+ memsets queued per epoch +\| +(\d+) /.exec(r.output)?.[1])).toBeGreaterThan(100);
  }, 600_000);
});
