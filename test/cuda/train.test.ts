// Training on the emulated CUDA device: fit() gives the CPU's metrics (smooth surrogate, so that no spike
// flips at the threshold between the two), and `ikun train --device cuda` runs a short paper run and says
// which device it uses.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { data, fit, getCudaPrecision, init, manualSeed, models, setCudaPrecision, surrogate, type EpochMetrics } from '../../lib/index.js';
import { spawnToEnd } from '../helpers/spawn.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-cuda-train-'));

describe('training on the emulated CUDA device', () => {
  // The timeouts leave room for CI, about 2.5 times slower than the 2-core development machine, where the tests
  // take some 3 s and 15 s (the CLI's test pass covers the sample's 1,000 test images, on the emulated device).
  // fp32: the exact SIMT products, so the metrics agree to rounding; tf32 (CUDA's default): the tensor cores round
  // the products' inputs to 10 mantissa bits, so the losses and the gradient norm agree to 5e-3.
  for (const [precision, tolerance] of [['fp32', 1e-4], ['tf32', 5e-3]] as const) {
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
            expect(Math.abs(gpu[e]!.firing_rates[layer]! - rate), `firing rate of ${layer}`).toBeLessThan(precision === 'fp32' ? 1e-5 : 5e-3);
        }
      } finally {
        setCudaPrecision(before);
      }
    }, 120_000);
  }

  // One run (the test pass covers the sample's 1,000 test images, slow on the emulated device): --device auto,
  // which must resolve to cuda:0 and say so; a device that does not exist fails before the run folder exists.
  it('ikun train --device auto picks the CUDA device, says so and trains on it; --device cuda:1 does not exist', async () => {
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
    const r = await spawnToEnd(process.execPath, [cli, ...flags, '--device', 'auto', '--out', out], env);
    expect(r.status, r.output).toBe(0);
    expect(r.output.split('\n')[0]).toBe('device: cuda:0 (ikun emulated CUDA device (host threads))');
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]!.test_acc).toBeGreaterThan(0);
  }, 300_000);
});
