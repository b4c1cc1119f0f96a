// Every op on the emulated CUDA device against the CPU (fp32: relative error <= 1e-5), through the same
// catalogue that gpu-check runs on a real GPU (bench/gpu-cases.ts).
import { describe, expect, it } from 'vitest';
import { cuda } from '../../lib/index.js';
import { checkCase, opCases } from '../../bench/gpu-cases.js';

describe('CUDA kernels on the emulated device vs the CPU', () => {
  it('runs on the emulated device', () => {
    expect(cuda.isAvailable()).toBe(true);
    expect(cuda.isEmulated()).toBe(true);
    expect(cuda.deviceName(0)).toMatch(/emulated/);
  });

  const cases = opCases('small').map((c) => [`${c.op}: ${c.shape} (${c.dtype})`, c] as const);
  it.each(cases)('%s', (_, c) => {
    const r = checkCase(c, 'cuda');
    expect(r.problem).toBeUndefined();
    expect(r.error, `max relative error ${r.error}`).toBeLessThanOrEqual(c.tolerance);
  });
});
