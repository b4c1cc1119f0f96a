// ikun's CUDA kernels under ThreadSanitizer and AddressSanitizer: the family_* cases of the sanitizer programs
// (native/tests/kernel_families.cu) run every host entry point of native/cuda/kernels.h on small shapes on the
// emulated device and compare with naive references. ThreadSanitizer runs them under the concurrent schedule (the
// only one with real concurrency, its program's default); AddressSanitizer and UBSan under all three schedules.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectCleanRun, listCases, run, type Tool } from '../helpers/sanitizer-programs.js';

const root = resolve(__dirname, '../..');

async function families(tool: Tool): Promise<string[]> {
  return (await listCases(tool)).filter((c) => c.name.startsWith('family_')).map((c) => c.name);
}

describe('CUDA kernel families under the sanitizers', () => {
  it('every host entry point of kernels.h is called by a case', () => {
    const header = readFileSync(resolve(root, 'native/cuda/kernels.h'), 'utf8');
    const cases = readFileSync(resolve(root, 'native/tests/kernel_families.cu'), 'utf8');
    // Declarations such as `template <class T> void gemm(` or `void sqrtOfSum(` at namespace level.
    const entryPoints = [...header.matchAll(/^(?:template <[^>]*>\s*)?void (\w+)\(/gm)].map((m) => m[1]);
    expect(entryPoints.length).toBeGreaterThanOrEqual(40);
    const missing = entryPoints.filter((name) => !new RegExp(`cuda::${name}\\s*[<(]`).test(cases));
    expect(missing).toEqual([]);
  });

  it('under ThreadSanitizer (the concurrent schedule), with no report', async () => {
    const cases = await families('tsan');
    expect(cases.length).toBeGreaterThanOrEqual(12);
    expectCleanRun(await run('tsan', ['--run', ...cases], { IKUN_CUDA_EMULATE_SCHEDULE: 'concurrent' }), cases);
  }, 600_000);

  for (const schedule of ['serial', 'reverse', 'concurrent']) {
    it(`under AddressSanitizer and UBSan (the ${schedule} schedule), with no report`, async () => {
      const cases = await families('asan');
      expectCleanRun(await run('asan', ['--run', ...cases], { IKUN_CUDA_EMULATE_SCHEDULE: schedule }), cases);
    }, 300_000);
  }
});
