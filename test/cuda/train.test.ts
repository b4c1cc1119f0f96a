// Training on the emulated CUDA device: fit() gives the CPU's metrics (smooth surrogate, so that no spike
// flips at the threshold between the two), and `ikun train --device cuda` runs a short paper run and says
// which device it uses.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cuda, data, fit, getCudaPrecision, init, manualSeed, models, setCudaPrecision, surrogate, type EpochMetrics } from '../../lib/index.js';
import type { CudaRuntimeCounters } from '../../lib/cuda.js';
import { spawnToEnd } from '../helpers/spawn.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-cuda-train-'));

describe('training on the emulated CUDA device', () => {
  // The timeouts leave room for CI, about 2.5 times slower than the 2-core development machine, where the tests
  // take some 3 s and 15 s (the CLI's test pass covers the sample's 1,000 test images, on the emulated device).
  // fp32: the exact SIMT products, so the metrics agree to rounding; tf32 (CUDA's default): the tensor cores round
  // the products' inputs to 10 mantissa bits, so the losses and the gradient norm agree to 5e-3; bf16 (mixed
  // precision) rounds them to 7, so to 3e-2.
  for (const [precision, tolerance] of [['fp32', 1e-4], ['tf32', 5e-3], ['bf16', 3e-2]] as const) {
    it(`fit() on CUDA (${precision}) gives the metrics of the same run on the CPU`, async () => {
      const { train, test } = data.loadSample();
      const small = { train: data.subset(train, 48, 1), test: data.subset(test, 24, 2) };
      const run = async (device: 'cpu' | 'cuda'): Promise<EpochMetrics[]> => {
        manualSeed(3);
        const m = models.csnn({ channels: 2, T: 2, surrogate: surrogate.atan({ alpha: 2, spiking: false }) });
        init.apply(m, 'ikun_v1', { seed: 3 });
        m.to(device);
        return (await fit(m, small, { epochs: 2, batchSize: 16, optimizer: 'sgd', lr: 0.1 })).metrics;
      };
      const before = getCudaPrecision();
      setCudaPrecision(precision);
      try {
        const cpu = await run('cpu'), gpu = await run('cuda');
        for (let e = 0; e < 2; e++) {
          for (const key of ['train_loss', 'test_loss', 'grad_norm'] as const)
            expect(Math.abs(gpu[e]![key] - cpu[e]![key]) / Math.abs(cpu[e]![key]), `${key} of epoch ${e + 1}`).toBeLessThan(tolerance);
          if (precision === 'fp32') expect(gpu[e]!.train_acc).toBe(cpu[e]!.train_acc);
          for (const [layer, rate] of Object.entries(cpu[e]!.firing_rates))
            expect(Math.abs(gpu[e]!.firing_rates[layer]! - rate), `firing rate of ${layer}`).toBeLessThan(precision === 'fp32' ? 1e-5 : tolerance);
        }
      } finally {
        setCudaPrecision(before);
      }
    }, 120_000);
  }

  // On a GPU the host queues a step's kernels and goes on to the next step while the device works: nothing in a
  // step may wait for the device, call cudaMalloc or copy between host and device. Counted by the runtime over
  // every step of a second epoch (the allocator's cache is warm by then); the first step of each pass sends the
  // epoch's sample order, and the epoch's totals are read once its steps are done.
  for (const optimizer of ['sgd', 'adam'] as const) {
    it(`fit() on CUDA (${optimizer}): a step only launches work, the same every step; no waits, allocations or copies`, async () => {
      const { train, test } = data.loadSample();
      const small = { train: data.subset(train, 32, 4), test: data.subset(test, 16, 5) };
      const m = models.csnn({ channels: 2, T: 2 });
      init.apply(m, 'ikun_v1', { seed: 4 });
      m.to('cuda');
      let last = cuda.runtimeCounters();
      const since = (): CudaRuntimeCounters => {
        const now = cuda.runtimeCounters();
        const d = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - last[k as keyof CudaRuntimeCounters]]));
        last = now;
        return d as unknown as CudaRuntimeCounters;
      };
      const steps: Array<{ epoch: number; phase: string; step: number; counts: CudaRuntimeCounters }> = [];
      const epochWaits: number[] = [];
      let waitsAtEpochStart = last.hostWaits;
      await fit(m, small, {
        epochs: 2, batchSize: 8, testBatchSize: 8, optimizer,
        onStep: (info) => steps.push({ epoch: info.epoch, phase: info.phase, step: info.step, counts: since() }),
        onEpoch: () => {
          epochWaits.push(cuda.runtimeCounters().hostWaits - waitsAtEpochStart);
          waitsAtEpochStart = cuda.runtimeCounters().hostWaits;
          since();
        },
      });
      const quiet = { hostWaits: 0, deviceAllocations: 0, hostToDeviceCopies: 0, deviceToHostCopies: 0 };
      for (const phase of ['train', 'test']) {
        const inner = steps.filter((s) => s.epoch === 2 && s.phase === phase && s.step > 1);
        expect(inner.length, phase).toBeGreaterThanOrEqual(1);
        for (const s of inner) expect(s.counts, `${phase} step ${s.step} of epoch 2`).toMatchObject(quiet);
        const launches = new Set(inner.map((s) => s.counts.kernelLaunches));
        expect([...launches], `${phase}: the launches of every step`).toHaveLength(1);
        expect([...launches][0]!).toBeGreaterThan(phase === 'train' ? 40 : 10);
      }
      // the epoch's reads: the training totals and firing rates after its steps, the test totals after the test pass
      expect(epochWaits[1]).toBeLessThanOrEqual(3);
    }, 120_000);
  }

  // One run (the test pass covers the sample's 1,000 test images, slow on the emulated device): --device auto,
  // which must resolve to cuda:0 and say so; a device that does not exist fails before the run folder exists.
  it('ikun train --device auto picks the CUDA device, says so and trains on it (--precision bf16, recorded); --device cuda:1 does not exist', async () => {
    const cli = new URL('../../dist/lib/cli.js', import.meta.url).pathname;
    const env = { ...process.env, IKUN_CUDA_EMULATE: '1' };
    const flags = ['train', '--sample', '--subset', '32', '--batch', '16', '--test-batch', '250', '--epochs', '1', '--channels', '2', '--T', '2', '--no-progress'];
    const missing = join(tmp(), 'missing');
    const bad = await spawnToEnd(process.execPath, [cli, ...flags, '--device', 'cuda:1', '--out', missing], env);
    expect(bad.status).not.toBe(0);
    expect(bad.output).toMatch(/cuda:1/);
    expect(existsSync(missing)).toBe(false);
    const out = join(tmp(), 'run');
    // Spawned without blocking the worker's event loop (vitest's RPC times out behind a long spawnSync).
    const r = await spawnToEnd(process.execPath, [cli, ...flags, '--device', 'auto', '--precision', 'bf16', '--out', out], env);
    expect(r.status, r.output).toBe(0);
    expect((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { precision: string }).precision).toBe('bf16');
    expect(r.output.split('\n')[0]).toBe('device: cuda:0 (ikun emulated CUDA device (host threads))');
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]!.test_acc).toBeGreaterThan(0);
  }, 300_000);
});
