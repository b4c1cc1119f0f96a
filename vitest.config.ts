import { defineConfig } from 'vitest/config';

// The native addon is not thread-safe across vitest worker threads: run test files in child processes.
// Two projects: the suite on the built addon, and test/cuda/ on the emulated CUDA build
// (IKUN_CUDA_EMULATE=1, built by `npm run build:emulated`), where device 'cuda' runs the CUDA kernels on
// host threads.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'cpu', include: ['test/**/*.test.ts'], exclude: ['test/cuda/**'] } },
      { extends: true, test: { name: 'cuda-emulated', include: ['test/cuda/**/*.test.ts'], env: { IKUN_CUDA_EMULATE: '1' } } },
    ],
  },
});
