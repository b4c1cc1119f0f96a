// bench:gpu-host: the host's side of the paper configuration on the emulated device with its device work
// skipped. What makes its peak memory trustworthy is that skipping leaves the allocation sequence as it is: a
// smoke run must give the same peak, to the byte, with the kernels run.
import { describe, expect, it } from 'vitest';
import { spawnToEnd } from '../helpers/spawn.js';

const script = new URL('../../dist/bench/gpu-host.js', import.meta.url).pathname;

async function peakOf(args: string[]): Promise<{ peak: number; output: string }> {
  const r = await spawnToEnd(process.execPath, [script, ...args], process.env);
  expect(r.status, r.output).toBe(0);
  const m = /\npeakAllocated: (\d+)\n/.exec(r.output);
  expect(m, r.output).not.toBeNull();
  return { peak: Number(m![1]), output: r.output };
}

describe('bench:gpu-host', () => {
  it('a TF32 smoke run peaks at the same bytes with the kernels skipped and run', async () => {
    const skipped = await peakOf(['--smoke', '--epochs', '1']);
    expect(skipped.output).toMatch(/device work skipped/);
    const run = await peakOf(['--smoke', '--epochs', '1', '--run-kernels']);
    expect(run.output).toMatch(/kernels run/);
    expect(skipped.peak).toBeGreaterThan(1e6);
    expect(skipped.peak).toBe(run.peak);
  }, 600_000);

  it('so does an fp32 smoke run over two epochs', async () => {
    const skipped = await peakOf(['--smoke', '--precision', 'fp32', '--epochs', '2']);
    const run = await peakOf(['--smoke', '--precision', 'fp32', '--epochs', '2', '--run-kernels']);
    expect(skipped.peak).toBe(run.peak);
  }, 600_000);

  it("the paper's configuration stays within the issue's 3.7 GB goal, and its steps leave V8 no reason to collect", async () => {
    const { peak, output } = await peakOf([]);
    // CUDA tensors once reported their bytes to V8 as external memory: 125 full collections in the measured
    // epoch, most of the host's time. Now only growth of the allocator's reserved memory is reported.
    const full = /\nfull garbage collections, epoch 3 +\| +(\d+) \|/.exec(output);
    expect(full, output).not.toBeNull();
    expect(Number(full![1])).toBeLessThanOrEqual(3);
    expect(output).toMatch(/\ncudaMalloc calls \/ host waits, epoch 3 +\| +0 \/ [0-3] \|/);
    expect(output).toMatch(/CSNN-128, T=4, batch 128, SGD, precision tf32/);
    expect(output).toMatch(/\npeak device memory \(GB\) +\| +[\d.]+ \| +7\.36 \| <= 3\.7\n/);
    // the step's activations at batch 128 alone are hundreds of MB: a far smaller peak means a broken run
    expect(peak).toBeGreaterThan(2e8);
    expect(peak).toBeLessThanOrEqual(3.7e9);
  }, 600_000);

  it('refuses bad flags before it starts anything', async () => {
    for (const [args, message] of [
      [['--precision', 'fp16'], /--precision must be tf32, fp32 or bf16, got 'fp16'/],
      [['--epochs', '0'], /--epochs must be a positive whole number, got '0'/],
      [['--fast'], /unknown flag --fast/],
    ] as const) {
      const r = await spawnToEnd(process.execPath, [script, ...args], process.env);
      expect(r.status).toBe(2);
      expect(r.output).toMatch(message);
    }
  });
});
