// scripts/tf32-loop-stats.cjs, the static count of what the tensor-core GEMM kernels (TF32 and bf16) issue
// per k slice (the figure their loader changes are judged by without a GPU): it compiles linear.cu's and
// conv2d.cu's whole-slice paths to PTX and finds each kernel's main loop (it needs nvcc, which every dev and
// CI machine has).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const hasNvcc = spawnSync('nvcc', ['--version']).status === 0;
const script = resolve(__dirname, '../../scripts/tf32-loop-stats.cjs');

describe.skipIf(!hasNvcc)('scripts/tf32-loop-stats.cjs', () => {
  it('prints one row per tensor-core kernel of a file: TF32 loops with the 64 mma of a 128x128 tile over 16 k, bf16 twins with 32 and fewer instructions', () => {
    const r = spawnSync(process.execPath, [script, 'native/cuda/linear.cu'], { encoding: 'utf8', cwd: resolve(__dirname, '../..') });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('linear.cu |')).map((l) => l.split('|').map((c) => c.trim()));
    const tf32 = rows.filter((cells) => !cells[1]!.endsWith(' [bf16]')), bf16 = rows.filter((cells) => cells[1]!.endsWith(' [bf16]'));
    expect(tf32.length).toBeGreaterThanOrEqual(6); // forward, input and weight gradients, each direct and split
    expect(bf16.length).toBe(tf32.length);
    for (const cells of tf32) {
      expect(cells[1]).toMatch(/^DenseMatrix<(true|false)>, DenseMatrix<(true|false)>, \w+Store$/);
      expect(Number(cells[3])).toBe(64);
      // every slice stages 32 elements per thread: 32 loads, or 8 where both operands take 16-byte loads (the
      // forward), and stores them into shared memory; far from the ~20 instructions per mma the conv
      // loaders took before their tap tables
      expect(Number(cells[5])).toBeGreaterThanOrEqual(8);
      expect(Number(cells[5])).toBeLessThanOrEqual(32);
      expect(Number(cells[6])).toBeGreaterThanOrEqual(64); // the fragments of 64 mma
      expect(Number(cells[2])).toBeGreaterThan(64 + 64 + 32);
      expect(Number(cells[4])).toBeLessThan(12);
    }
    for (const cells of bf16) {
      const twin = tf32.find((t) => `${t[1]} [bf16]` === cells[1]);
      expect(twin, cells[1]).toBeDefined();
      expect(Number(cells[3])).toBe(32); // m16n8k16: the same products in half the instructions
      expect(cells[5]).toBe(twin![5]); // the same global loads
      expect(Number(cells[6])).toBeGreaterThanOrEqual(32); // the fragments of 32 mma: A's 16 once per slice, B's 16
      expect(Number(cells[6])).toBeLessThanOrEqual(Number(twin![6]) / 2);
      expect(Number(cells[2])).toBeLessThan(Number(twin![2]));
    }
  }, 180_000);

  it('finds the conv kernels of small kernels (masked taps) cheaper than their row-and-column twins, TF32 and bf16', () => {
    const r = spawnSync(process.execPath, [script, 'native/cuda/conv2d.cu'], { encoding: 'utf8', cwd: resolve(__dirname, '../..') });
    expect(r.status, r.stderr).toBe(0);
    const rows = new Map(
      r.stdout.split('\n').filter((l) => l.startsWith('conv2d.cu |')).map((l) => {
        const cells = l.split('|').map((c) => c.trim());
        return [cells[1]!, Number(cells[2])] as const;
      }),
    );
    const masked = [...rows.keys()].filter((k) => k.includes(' (masked taps)'));
    // forward, stride-1 input gradient and weight gradient, each direct and split, TF32 and bf16
    expect(masked.length).toBe(12);
    for (const kernel of masked) {
      const twin = rows.get(kernel.replace(' (masked taps)', ''));
      expect(twin, kernel).toBeDefined();
      expect(rows.get(kernel)!, kernel).toBeLessThan(twin!);
    }
  }, 180_000);

  it('refuses a bad flag', () => {
    const r = spawnSync(process.execPath, [script, '--arch', 'ampere'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--arch must look like sm_90, got 'ampere'/);
  });
});
