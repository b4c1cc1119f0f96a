// npm run bench:gpu-host — what the paper's configuration (CSNN-128, T = 4, batch 128, SGD, the 20,000-image
// subset and the 10,000 test images) asks of the GPU, measured without one: fit() on the emulated CUDA device
// with its device work skipped (IKUN_CUDA_EMULATE_KERNELS=skip: kernels, memsets and device-to-device copies
// are checked, not run). What is left is the host's side, as on a GPU:
// - the caching allocator's requests, so its peak device memory (they do not depend on what kernels compute);
// - the host's own seconds per training epoch and test pass: the floor under the epoch time on a GPU, since
//   the device cannot run ahead of the host that queues its work (this machine's CPU, not the GPU host's);
// - kernels and memsets queued per step, cudaMalloc calls, and the host's full garbage collections.
// The emulator could not compute this configuration in reasonable time. Needs the emulated build (npm run
// build:emulated, in a clone).
// Flags: --precision tf32|fp32|bf16 (default tf32); --epochs N (default 3; the last one is measured); --smoke (a
// tiny configuration: CSNN-4, batch 64, 128 training and 64 test images); --run-kernels (compute for real:
// the test checks that a smoke run's peak is the same both ways).
import { spawnSync } from 'node:child_process';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { CudaPrecision } from '../lib/precision.js';

// The H200's memory as its driver reports it (143,771 MiB); the caps nothing here comes near.
const H200_MEMORY_MB = 143_771;
const CHILD = 'IKUN_BENCH_GPU_HOST_CHILD';

interface Flags {
  smoke: boolean;
  runKernels: boolean;
  precision: CudaPrecision;
  epochs: number;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { smoke: false, runKernels: false, precision: 'tf32', epochs: 3 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--smoke') flags.smoke = true;
    else if (argv[i] === '--run-kernels') flags.runKernels = true;
    else if (argv[i] === '--precision') {
      const p = argv[++i];
      if (p !== 'tf32' && p !== 'fp32' && p !== 'bf16') throw new Error(`--precision must be tf32, fp32 or bf16, got '${p}'`);
      flags.precision = p;
    } else if (argv[i] === '--epochs') {
      const text = argv[++i] ?? '';
      if (!/^[1-9]\d*$/.test(text)) throw new Error(`--epochs must be a positive whole number, got '${text}'`);
      flags.epochs = Number(text);
    } else throw new Error(`unknown flag ${argv[i]}`);
  }
  return flags;
}

// The emulated device is chosen when the addon loads, so the measurement runs in a child process started with
// the emulator's settings.
function runInEmulator(flags: Flags): number {
  const env = {
    ...process.env,
    [CHILD]: '1',
    IKUN_CUDA_EMULATE: '1',
    IKUN_CUDA_EMULATE_KERNELS: flags.runKernels ? 'run' : 'skip',
    IKUN_EMULATED_MEMORY_MB: process.env.IKUN_EMULATED_MEMORY_MB ?? String(H200_MEMORY_MB),
  };
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { env, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

/** Start times (performance.now() ms) of the host's full (mark-compact) garbage collections from now on. */
function watchFullCollections(): { starts: number[]; stop(): void } {
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) starts.push(e.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  return { starts, stop: () => observer.disconnect() };
}

const gb = (bytes: number): string => (bytes / 1e9).toFixed(3);

async function measure(flags: Flags): Promise<number> {
  const { cuda, fit, init, models, setCudaPrecision } = await import('../lib/index.js');
  const { GOAL, PAPER_SGD, REFERENCE, paperData, paperSizes } = await import('./paper-config.js');
  if (!cuda.isEmulated()) throw new Error('the emulated CUDA device did not load (IKUN_CUDA_EMULATE=1)');
  const { channels, T, batch } = paperSizes(flags.smoke);
  const { train, test, source } = paperData(flags.smoke, { train: 128, test: 64 });
  setCudaPrecision(flags.precision);
  console.log(`ikun bench:gpu-host: CSNN-${channels}, T=${T}, batch ${batch}, SGD, precision ${flags.precision}; data: ${source}; ` +
    `the emulated CUDA device, ${flags.runKernels ? 'kernels run' : 'device work skipped (the host side as on a GPU, no numbers computed)'}`);
  const model = models.csnn({ channels, T });
  init.apply(model, 'ikun_v1', { seed: 42 });
  model.to('cuda');
  cuda.synchronize();
  const parameters = cuda.memoryStats().allocated;
  cuda.resetPeakMemoryStats();
  // The first epoch settles the allocator's cache and the JIT; the last one is measured.
  const peaks: number[] = [];
  const epochs: Array<{ train: number; test: number; end: number; counters: ReturnType<typeof cuda.runtimeCounters> }> = [];
  const collections = watchFullCollections();
  const started = { at: performance.now(), counters: cuda.runtimeCounters() };
  await fit(model, { train, test }, {
    epochs: flags.epochs, batchSize: batch, ...PAPER_SGD,
    onEpoch: (m) => {
      peaks.push(cuda.memoryStats().peakAllocated);
      epochs.push({ train: m.epoch_s - m.test_s, test: m.test_s, end: performance.now(), counters: cuda.runtimeCounters() });
    },
  });
  await new Promise((resolve) => setImmediate(resolve)); // the observer's last entries
  collections.stop();
  const last = epochs.at(-1)!, before = epochs.at(-2) ?? { end: started.at, counters: started.counters };
  const used = (key: keyof typeof last.counters): number => last.counters[key] - before.counters[key];
  const steps = Math.floor(train.count / batch) + Math.ceil(test.count / batch);
  const end = cuda.memoryStats();
  const n = epochs.length;
  const rows: Array<[string, string, string, string]> = [
    ['peak device memory (GB)', gb(end.peakAllocated), String(REFERENCE.peakGB), `<= ${GOAL.peakGB}`],
    [`peak after epoch ${peaks.map((_, i) => i + 1).join(' / ')} (bytes)`, peaks.join(' / '), '', ''],
    ['parameters on the device (GB)', gb(parameters), '', ''],
    ['reserved at the end, cache included (GB)', gb(end.reserved), '', ''],
    [`host seconds, training epoch ${n}`, last.train.toFixed(3), String(REFERENCE.epochSeconds), `<= ${GOAL.epochSeconds} (all of it)`],
    [`host seconds, test pass of epoch ${n}`, last.test.toFixed(3), String(REFERENCE.testSeconds), `<= ${GOAL.testSeconds} (all of it)`],
    [`kernels + memsets per step, epoch ${n}`, ((used('kernelLaunches') + used('memoryOps')) / steps).toFixed(1), '', ''],
    [`cudaMalloc calls / host waits, epoch ${n}`, `${used('deviceAllocations')} / ${used('hostWaits')}`, '', ''],
    [`full garbage collections, epoch ${n}`, String(collections.starts.filter((t) => t > before.end && t <= last.end).length), '', ''],
  ];
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(10, ...rows.map((r) => r[1].length)), 22];
  console.log(`${'metric'.padEnd(w[0]!)} | ${'ikun'.padStart(w[1]!)} | ${'SpikingJelly cupy, H200'.padStart(w[2]!)} | goal`);
  console.log(`${'-'.repeat(w[0]!)}-|-${'-'.repeat(w[1]!)}-|-${'-'.repeat(w[2]!)}-|-----`);
  for (const r of rows) console.log(`${r[0].padEnd(w[0]!)} | ${r[1].padStart(w[1]!)} | ${r[2].padStart(w[2]!)} | ${r[3]}`);
  console.log(`peakAllocated: ${end.peakAllocated}`);
  return 0;
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    console.error(`bench:gpu-host: ${(error as Error).message}`);
    return 2;
  }
  if (process.env[CHILD] !== '1') return runInEmulator(flags);
  try {
    return await measure(flags);
  } catch (error) {
    console.error(`bench:gpu-host: ${(error as Error).message}`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
