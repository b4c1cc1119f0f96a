// The README's GPU section runs as written on the emulated CUDA device.
import { describe, expect, it } from 'vitest';
import { readmeBlocks, runBlocks } from '../helpers/readme.js';

describe('README GPU section on the emulated device', () => {
  it('runs as written', () => {
    const r = runBlocks(readmeBlocks('GPU (CUDA)'), { ...process.env, IKUN_CUDA_EMULATE: '1' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^1 ikun emulated CUDA device/);
    expect(lines[1]).toMatch(/^0\.\d+ 18$/); // the loss and the 18 values of the first conv's weight gradient [2, 1, 3, 3]
    expect(lines[2]).toBe('true true');
  }, 120_000);
});
