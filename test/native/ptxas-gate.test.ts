// The compiler gate of the CUDA build: ptxas runs with the flags of scripts/build-config.cjs (both builds, CMake
// and node-gyp, take them from there), which print registers and shared memory per kernel and turn any register
// spill or local-memory use into a build error. This checks the gate itself on planted kernels (it needs nvcc,
// which every dev and CI machine has).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const hasNvcc = spawnSync('nvcc', ['--version']).status === 0;

function gateFlags(): string {
  const config = createRequire(import.meta.url)('../../scripts/build-config.cjs') as { CUDA_FLAGS: string[] };
  const flags = config.CUDA_FLAGS.find((f) => f.startsWith('-Xptxas='));
  if (!flags) throw new Error('scripts/build-config.cjs passes no -Xptxas flags to nvcc');
  return flags;
}

function compile(source: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ikun-ptxas-'));
  try {
    writeFileSync(join(dir, 'k.cu'), source);
    const r = spawnSync('nvcc', ['-arch=sm_90', '-O3', gateFlags(), '-c', join(dir, 'k.cu'), '-o', join(dir, 'k.o')], { encoding: 'utf8' });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!hasNvcc)('the ptxas gate of the CUDA build', () => {
  it('passes a clean kernel and prints its registers and shared memory', () => {
    const r = compile('__global__ void clean(float* x, int n) { __shared__ float s[32]; int i = threadIdx.x; s[i % 32] = x[i]; __syncthreads(); if (i < n) x[i] = s[(i + 1) % 32]; }\n');
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/Used \d+ registers/);
    expect(r.output).toMatch(/bytes smem/);
  });

  it('fails a kernel that uses local memory', () => {
    // a per-thread array indexed at run time cannot live in registers
    const r = compile('__global__ void local(float* x, int k) { float a[64]; for (int i = 0; i < 64; ++i) a[(i * k) & 63] += x[i]; x[threadIdx.x] = a[k & 63]; }\n');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/[Ll]ocal memory|lmem|stack frame/);
  });

  it('fails a kernel that spills registers', () => {
    // 96 values live across a loop, with at most 32 registers per thread (1024 threads, 2 blocks per SM)
    const n = 96;
    const body = Array.from({ length: n }, (_, i) => `float v${i} = x[${i} * k + threadIdx.x];`).join(' ') +
      ' for (int r = 0; r < k; ++r) { ' + Array.from({ length: n }, (_, i) => `v${i} = v${i} * v${(i + 1) % n} + x[r + ${i}];`).join(' ') + ' } ' +
      'x[threadIdx.x] = ' + Array.from({ length: n }, (_, i) => `v${i}`).join(' + ') + ';';
    const r = compile(`__global__ void __launch_bounds__(1024, 2) spill(float* x, int k) { ${body} }\n`);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/Registers are spilled/);
  });
});
