// The emulated CUDA device (native/cuda/emulator): its self-test under ThreadSanitizer and AddressSanitizer, and the
// planted bugs that each tool, or the emulator itself, must catch. The test programs and the emulated addon are built
// by `npm run build:emulated` (npm test runs it first); sanitizers cannot practically be loaded into node, so the
// kernels are checked in standalone programs (native/tests) spawned here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = resolve(__dirname, '../../build-emulated/Release');
const programs = { tsan: join(dir, 'ikun_emulator_tests_tsan'), asan: join(dir, 'ikun_emulator_tests_asan') } as const;
type Tool = keyof typeof programs;

function built(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build:emulated\` first (npm test does)`);
  return path;
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string; // stdout and stderr together
}

// atexit_sleep_ms=0: ThreadSanitizer otherwise sleeps a second at every exit. UBSan prints a stack with its report.
const sanitizerEnv = { TSAN_OPTIONS: 'atexit_sleep_ms=0', UBSAN_OPTIONS: 'print_stacktrace=1' };

// Runs a program to its end without blocking this worker's event loop (spawnSync did, for minutes under
// ThreadSanitizer, and vitest's RPC to the main process then timed out: "Timeout calling onTaskUpdate").
function spawnToEnd(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${error.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolvePromise({ status, signal, output: `${stdout}${stderr}` });
    });
  });
}

// oneCpu: pinned to one CPU (taskset), so that the OS runs the CUDA threads of a block one after another.
async function run(tool: Tool, args: string[], env: Record<string, string> = {}, oneCpu = false): Promise<Run> {
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

async function listCases(tool: Tool = 'asan'): Promise<{ name: string; planted: string | null }[]> {
  const r = await run(tool, ['--list']);
  expect(r.status, r.output).toBe(0);
  return r.output
    .trim()
    .split('\n')
    .map((line) => ({ name: line.split(/\s+/)[0], planted: /\[planted: (.+?) must report it\]/.exec(line)?.[1] ?? null }));
}

// Any report of the sanitizers or the emulator.
const reports = /ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:|ikun CUDA emulator: hard error/;

function expectCleanRun(r: Run, cases: string[]) {
  expect(r.output).not.toMatch(reports);
  expect(r.status, r.output.slice(-4000)).toBe(0);
  for (const name of cases) expect(r.output).toContain(`[   OK ] ${name} `);
  expect(r.output).toContain(`${cases.length} case(s) run, 0 failed`);
  // Checked at exit by a static destroyed after the runtime's teardown (the teardown_unloading case).
  expect(r.output).toContain('teardown probe: cudaFree at exit returned cudaErrorCudartUnloading');
}

describe('emulated CUDA device', () => {
  it('the emulated addon loads and reports one device', () => {
    const addon = createRequire(import.meta.url)(built(join(dir, 'ikun.node'))) as { cudaInfo(): Record<string, unknown> };
    expect(addon.cudaInfo()).toMatchObject({ compiled: true, available: true, deviceCount: 1, runtimeVersion: 13000, reason: '' });
  });

  it('lists its cases, the planted bugs marked with the tool that must report them', async () => {
    const cases = await listCases();
    expect(cases.filter((c) => !c.planted).length).toBeGreaterThanOrEqual(20);
    expect(Object.fromEntries(cases.filter((c) => c.planted).map((c) => [c.name, c.planted]))).toEqual({
      planted_missing_barrier: 'ThreadSanitizer',
      planted_out_of_bounds: 'AddressSanitizer',
      planted_shared_out_of_bounds: 'AddressSanitizer',
      planted_divergent_barrier: 'the emulator',
      planted_partial_mask_shuffle: 'the emulator',
      planted_partial_warp_shuffle: 'the emulator',
      planted_exited_lane_shuffle: 'the emulator',
      planted_deadlock: 'the emulator',
    });
    const bad = await run('asan', ['--run', 'no_such_case']);
    expect(bad.status).toBe(2);
    expect(bad.output).toContain("no test case named 'no_such_case'");
  });

  describe('the self-test passes with no report', () => {
    // Each program's own list (the ThreadSanitizer one leaves out a case that runs a racy kernel on purpose).
    const clean = async (tool: Tool) => (await listCases(tool)).filter((c) => !c.planted).map((c) => c.name);

    // The ThreadSanitizer program's default schedule is concurrent (host threads: the only one with real
    // concurrency). The cases that switch to the serial schedules (schedules_agree, schedule_order) run those on
    // fibers, through TSan's fiber interface; a whole run under them would only repeat that, at some 12 ms per
    // fiber for TSan's per-fiber state.
    it('under ThreadSanitizer (the concurrent schedule)', async () => expectCleanRun(await run('tsan', ['--all']), await clean('tsan')), 600_000);

    // The default schedule elsewhere is serial (fibers); AddressSanitizer follows the fiber switches through its
    // fiber interface (stack bounds and fake stacks).
    it('under AddressSanitizer and UBSan (the serial schedule)', async () => expectCleanRun(await run('asan', ['--all']), await clean('asan')), 300_000);

    it('under AddressSanitizer with the concurrent and the reverse schedule', async () => {
      const cases = await clean('asan');
      for (const schedule of ['concurrent', 'reverse'])
        expectCleanRun(await run('asan', ['--all'], { IKUN_CUDA_EMULATE_SCHEDULE: schedule }), cases);
    }, 300_000);
  });

  it('takes the device memory from IKUN_EMULATED_MEMORY_MB; bad settings are hard errors', async () => {
    const ok = await run('asan', ['--run', 'memory_limit_and_oom', 'device_queries'], { IKUN_EMULATED_MEMORY_MB: '123' });
    expect(ok.output).not.toMatch(reports);
    expect(ok.status, ok.output).toBe(0);
    const badMemory = await run('asan', ['--run', 'device_queries'], { IKUN_EMULATED_MEMORY_MB: '12x' });
    expect(badMemory.signal).toBe('SIGABRT');
    expect(badMemory.output).toContain("IKUN_EMULATED_MEMORY_MB must be a whole number of megabytes from 1 to 16777216, got '12x'");
    const badSchedule = await run('asan', ['--run', 'reduce_shared'], { IKUN_CUDA_EMULATE_SCHEDULE: 'random' });
    expect(badSchedule.signal).toBe('SIGABRT');
    expect(badSchedule.output).toContain("IKUN_CUDA_EMULATE_SCHEDULE must be 'concurrent', 'serial' or 'reverse', got 'random'");
  });

  describe('planted bugs are caught by the right tool', () => {
    it('ThreadSanitizer: a missing __syncthreads between shared-memory writes and reads is a data race', async () => {
      // Also on one CPU, where the threads run one after another: the report rests on what orders them (nothing),
      // not on their timing. (It did not before the emulator hid its own bookkeeping from ThreadSanitizer.)
      for (const oneCpu of [false, true]) {
        const r = await run('tsan', ['--run', 'planted_missing_barrier'], {}, oneCpu);
        expect(r.status, r.output).toBe(66); // ThreadSanitizer's exit status after a report
        expect(r.output).toContain('WARNING: ThreadSanitizer: data race');
        expect(r.output).toMatch(/#0 void selftest::neighbour<false>\(float const\*, float\*\) \S*emulator_selftest\.cu:\d+/);
        expect(r.output).toMatch(/Location is heap block of size 1024/); // the block's shared array (256 floats)
      }
      // The same kernel with its barrier: no report (the race above is the missing barrier, not the emulator).
      const control = await run('tsan', ['--run', 'neighbour_with_barrier']);
      expect(control.output).not.toMatch(reports);
      expect(control.status).toBe(0);
    }, 300_000);

    it('AddressSanitizer: a kernel reading one element past a cudaMalloc buffer', async () => {
      const r = await run('asan', ['--run', 'planted_out_of_bounds']);
      expect(r.status).toBe(1);
      expect(r.output).toContain('ERROR: AddressSanitizer: heap-buffer-overflow');
      expect(r.output).toContain('READ of size 4');
      expect(r.output).toMatch(/#0 .* in selftest::copyPlusOne\(.*emulator_selftest\.cu:\d+/);
      expect(r.output).toContain('0 bytes to the right of 400-byte region'); // the 100 floats cudaMalloc gave
    });

    it('AddressSanitizer: a kernel reading one element past a shared array', async () => {
      const r = await run('asan', ['--run', 'planted_shared_out_of_bounds']);
      expect(r.status).toBe(1);
      expect(r.output).toContain('ERROR: AddressSanitizer: heap-buffer-overflow');
      expect(r.output).toMatch(/#0 .* in selftest::sharedOverrun\(.*emulator_selftest\.cu:\d+/);
      expect(r.output).toContain('0 bytes to the right of 256-byte region'); // IKUN_SHARED_ARRAY(float, s, 64)
    });

    const hardErrors: [string, RegExp, RegExp][] = [
      ['planted_divergent_barrier', /divergent barrier: this thread reached __syncthreads\(\) at \S*emulator_selftest\.cu:\d+ \(in divergentBarrier\) while \d+ thread\(s\) of the block wait at __syncthreads\(\) at \S*emulator_selftest\.cu:\d+/, /in kernel selftest::divergentBarrier\(int\*\)/],
      ['planted_partial_mask_shuffle', /__shfl_sync with mask 0x0000ffff at \S*emulator_selftest\.cu:\d+ \(in partialMaskShuffle\): the emulator runs warp collectives with the full mask 0xffffffff only/, /in kernel selftest::partialMaskShuffle\(int\*\)/],
      ['planted_partial_warp_shuffle', /__shfl_down_sync at \S*emulator_selftest\.cu:\d+ \(in shuffleAnyMask\) in warp 1, which has only 16 thread\(s\): the block has 48 threads, not a multiple of 32/, /in kernel selftest::shuffleAnyMask\(int\*\)/],
      // Which message, and how many lanes have exited by then, depends on whether the shuffling lanes or the
      // exiting ones come first (under the concurrent schedule, on the OS); both name the exit.
      ['planted_exited_lane_shuffle', /(exited while \d+ lane\(s\) of its warp 0 wait at __shfl_xor_sync|__shfl_xor_sync at \S*emulator_selftest\.cu:\d+ \(in exitedLaneShuffle\): \d+ lane\(s\) of warp 0 have exited)/, /in kernel selftest::exitedLaneShuffle\(int\*, int\)/],
      ['planted_deadlock', /deadlock: every thread of the block that has not exited waits[^\n]*\n\s+thread 0: waiting at __syncthreads\(\), \S*emulator_selftest\.cu:\d+\n\s+threads 1-31: waiting at __shfl_sync, \S*emulator_selftest\.cu:\d+/, /in kernel selftest::barrierShuffleDeadlock\(int\*\)/],
    ];
    for (const [name, message, kernel] of hardErrors) {
      it(`the emulator: ${name.replace('planted_', '').replaceAll('_', ' ')} is a hard error naming the call site, in every schedule`, async () => {
        for (const schedule of ['concurrent', 'serial', 'reverse']) {
          const r = await run('asan', ['--run', name], { IKUN_CUDA_EMULATE_SCHEDULE: schedule });
          expect(r.signal, `${schedule}: ${r.output}`).toBe('SIGABRT');
          expect(r.output).toContain('ikun CUDA emulator: hard error: ');
          expect(r.output, schedule).toMatch(message);
          expect(r.output, schedule).toMatch(kernel);
          expect(r.output).toContain(`schedule ${schedule}`);
          expect(r.output).not.toMatch(/AddressSanitizer|runtime error:/);
        }
      }, 120_000);
    }
  });
});
