// The README's API section runs as written: its ts blocks, in order, type-check against the built
// package and run as one ES module importing 'ikun'.
import { describe, expect, it } from 'vitest';
import { cuda } from '../lib/index.js';
import { readmeBlocks, runBlocks } from './helpers/readme.js';

describe('README API section', () => {
  it('type-checks and runs as written', () => {
    const blocks = readmeBlocks('API');
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const r = runBlocks(blocks);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('tensor([[0.1000, 0.9000, 0.3000]');
    expect(r.stdout).toContain('CSNN(');
    expect(r.stdout).toContain('Total params:');
    expect(r.stdout).toContain("[ '1.weight', '2.weight', '2.bias' ]");
    expect(r.stdout).toContain("shape mismatch for 'conv_fc.0.weight'");
    const accuracy = Number(/epoch 2: test accuracy (0\.\d+)/.exec(r.stdout)?.[1]);
    expect(accuracy).toBeGreaterThan(0.2); // chance is 0.1
  });

  it.skipIf(cuda.isAvailable())('the GPU section says why there is no GPU on a machine without one', () => {
    const r = runBlocks(readmeBlocks('GPU (CUDA)'), { ...process.env, IKUN_CUDA_EMULATE: '' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^no GPU: .+\n$/);
  });
});
