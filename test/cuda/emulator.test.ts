// The emulated CUDA device (native/cuda/emulator): its self-test under ThreadSanitizer and AddressSanitizer, and the
// planted bugs that each tool, or the emulator itself, must catch. The test programs and the emulated addon are built
// by `npm run build:emulated` (npm test runs it first); sanitizers cannot practically be loaded into node, so the
// kernels are checked in standalone programs (native/tests) spawned here.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { built, dir, expectCleanRun, listCases, reports, run, type Tool } from '../helpers/sanitizer-programs.js';

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
    // The self-test's cases: not the planted ones, and not ikun's kernel families (family_*, in their own test
    // file, test/cuda/kernel-families.test.ts, so that the two run in parallel).
    const clean = async (tool: Tool) =>
      (await listCases(tool)).filter((c) => !c.planted && !c.name.startsWith('family_')).map((c) => c.name);
    const selfTest = async (tool: Tool, env: Record<string, string> = {}) => {
      const cases = await clean(tool);
      expectCleanRun(await run(tool, ['--run', ...cases], env), cases);
    };

    // The ThreadSanitizer program's default schedule is concurrent (host threads: the only one with real
    // concurrency). The cases that switch to the serial schedules (schedules_agree, schedule_order) run those on
    // fibers, through TSan's fiber interface; a whole run under them would only repeat that, at some 12 ms per
    // fiber for TSan's per-fiber state.
    it('under ThreadSanitizer (the concurrent schedule)', () => selfTest('tsan'), 600_000);

    // The default schedule elsewhere is serial (fibers); AddressSanitizer follows the fiber switches through its
    // fiber interface (stack bounds and fake stacks).
    it('under AddressSanitizer and UBSan (the serial schedule)', () => selfTest('asan'), 300_000);

    it('under AddressSanitizer with the concurrent and the reverse schedule', async () => {
      for (const schedule of ['concurrent', 'reverse']) await selfTest('asan', { IKUN_CUDA_EMULATE_SCHEDULE: schedule });
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
