// bench:gpu-memory: the paper configuration's peak device memory on the emulated device with its kernels
// skipped. What makes the figure trustworthy is that skipping kernels leaves the allocation sequence as it is:
// a smoke run must give the same peak, to the byte, with the kernels run.
import { describe, expect, it } from 'vitest';
import { spawnToEnd } from '../helpers/spawn.js';

const script = new URL('../../dist/bench/gpu-memory.js', import.meta.url).pathname;

async function peakOf(args: string[]): Promise<{ peak: number; output: string }> {
  const r = await spawnToEnd(process.execPath, [script, ...args], process.env);
  expect(r.status, r.output).toBe(0);
  const m = /\npeakAllocated: (\d+)\n/.exec(r.output);
  expect(m, r.output).not.toBeNull();
  return { peak: Number(m![1]), output: r.output };
}

describe('bench:gpu-memory', () => {
  it('a TF32 smoke run peaks at the same bytes with the kernels skipped and run', async () => {
    const skipped = await peakOf(['--smoke', '--epochs', '1']);
    expect(skipped.output).toMatch(/kernels skipped/);
    const run = await peakOf(['--smoke', '--epochs', '1', '--run-kernels']);
    expect(run.output).toMatch(/kernels run/);
    expect(skipped.peak).toBeGreaterThan(1e6);
    expect(skipped.peak).toBe(run.peak);
  }, 600_000);

  it('so does an fp32 smoke run over two epochs', async () => {
    const skipped = await peakOf(['--smoke', '--precision', 'fp32']);
    const run = await peakOf(['--smoke', '--precision', 'fp32', '--run-kernels']);
    expect(skipped.peak).toBe(run.peak);
  }, 600_000);

  it("the paper's configuration stays within the issue's 3.7 GB goal", async () => {
    const { peak, output } = await peakOf([]);
    expect(output).toMatch(/CSNN-128, T=4, batch 128, SGD, precision tf32/);
    expect(output).toMatch(/\npeak device memory \(GB\) +\| +[\d.]+ \| +7\.36 \| <= 3\.7\n/);
    // the step's activations at batch 128 alone are hundreds of MB: a far smaller peak means a broken run
    expect(peak).toBeGreaterThan(2e8);
    expect(peak).toBeLessThanOrEqual(3.7e9);
  }, 600_000);

  it('refuses bad flags before it starts anything', async () => {
    for (const [args, message] of [
      [['--precision', 'fp16'], /--precision must be tf32 or fp32, got 'fp16'/],
      [['--epochs', '0'], /--epochs must be a positive whole number, got '0'/],
      [['--fast'], /unknown flag --fast/],
    ] as const) {
      const r = await spawnToEnd(process.execPath, [script, ...args], process.env);
      expect(r.status).toBe(2);
      expect(r.output).toMatch(message);
    }
  });
});
