import { defineConfig } from 'vitest/config';

// The native addon is not thread-safe across vitest worker threads: run test files in child processes.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
