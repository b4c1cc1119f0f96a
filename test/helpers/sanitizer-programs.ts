// The sanitizer test programs of the emulated CUDA device (build-emulated/Release/ikun_emulator_tests_tsan and
// _asan, built by `npm run build:emulated`): running them from vitest and reading their reports. Shared by
// test/cuda/emulator.test.ts (the emulator's self-test, planted bugs) and test/cuda/kernel-families.test.ts
// (ikun's CUDA kernels under the sanitizers).
import { existsSync } from 'node:fs';
import { arch } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { spawnToEnd, type Run } from './spawn.js';

export const dir = resolve(__dirname, '../../build-emulated/Release');
const programs = { tsan: join(dir, 'ikun_emulator_tests_tsan'), asan: join(dir, 'ikun_emulator_tests_asan') } as const;
export type Tool = keyof typeof programs;
export type { Run };

export function built(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build:emulated\` first (npm test does)`);
  return path;
}

// atexit_sleep_ms=0: ThreadSanitizer otherwise sleeps a second at every exit. UBSan prints a stack with its report.
const sanitizerEnv = { TSAN_OPTIONS: 'atexit_sleep_ms=0', UBSAN_OPTIONS: 'print_stacktrace=1' };

// oneCpu: pinned to one CPU (taskset), so that the OS runs the CUDA threads of a block one after another.
export async function run(tool: Tool, args: string[], env: Record<string, string> = {}, oneCpu = false): Promise<Run> {
  const fullEnv = { ...process.env, ...sanitizerEnv, ...env };
  const command = (prefix: string[]): [string, string[]] => {
    const all = [...(oneCpu ? ['taskset', '-c', '0'] : []), ...prefix, built(programs[tool]), ...args];
    return [all[0], all.slice(1)];
  };
  let r = await spawnToEnd(...command([]), fullEnv);
  // On kernels with a high mmap randomisation (vm.mmap_rnd_bits above 28) ThreadSanitizer cannot map its shadow
  // memory ("FATAL: ThreadSanitizer: unexpected memory mapping"); run it again without address randomisation.
  if (tool === 'tsan' && r.output.includes('unexpected memory mapping'))
    r = await spawnToEnd(...command(['setarch', arch() === 'x64' ? 'x86_64' : arch(), '-R']), fullEnv);
  return r;
}

export async function listCases(tool: Tool = 'asan'): Promise<{ name: string; planted: string | null }[]> {
  const r = await run(tool, ['--list']);
  expect(r.status, r.output).toBe(0);
  return r.output
    .trim()
    .split('\n')
    .map((line) => ({ name: line.split(/\s+/)[0], planted: /\[planted: (.+?) must report it\]/.exec(line)?.[1] ?? null }));
}

// Any report of the sanitizers or the emulator.
export const reports = /ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:|ikun CUDA emulator: hard error/;

export function expectCleanRun(r: Run, cases: string[]) {
  expect(r.output).not.toMatch(reports);
  expect(r.status, r.output.slice(-4000)).toBe(0);
  for (const name of cases) expect(r.output).toContain(`[   OK ] ${name} `);
  expect(r.output).toContain(`${cases.length} case(s) run, 0 failed`);
  // Checked at exit by a static destroyed after the runtime's teardown, which the teardown_unloading case creates.
  if (cases.includes('teardown_unloading'))
    expect(r.output).toContain('teardown probe: cudaFree at exit returned cudaErrorCudartUnloading');
}

