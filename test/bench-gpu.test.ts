// bench:gpu without a GPU says so and exits 0 (the CI machines have none).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cuda } from '../lib/index.js';

describe.skipIf(cuda.isAvailable())('bench:gpu on a machine without a GPU', () => {
  it('says there is no GPU and why, and exits 0', () => {
    const script = new URL('../dist/bench/gpu.js', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bench:gpu: .*(no CUDA GPU|no CUDA support).*; nothing to measure\.\n$/);
    const bad = spawnSync(process.execPath, [script, '--precision', 'fp16'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--precision must be tf32, fp32 or bf16, got 'fp16'/);
  });
});
