// npm run bench:gpu-memory — the peak device memory of the paper's configuration (CSNN-128, T = 4, batch 128,
// SGD, the 20,000-image subset and the 10,000 test images) without a GPU: two epochs of fit() on the emulated
// CUDA device with its kernels skipped (IKUN_CUDA_EMULATE_KERNELS=skip). What the caching allocator is asked
// for, and so its peak, does not depend on what the kernels compute; the step's sizes, the first block computed
// once, the compact spike masks and the resident data set are all as on a GPU. The emulator could not compute
// this configuration in reasonable time. Needs the emulated build (npm run build:emulated, in a clone).
// Flags: --precision tf32|fp32 (default tf32); --epochs N (default 2); --smoke (a tiny configuration: CSNN-4,
// batch 64, 128 training and 64 test images); --run-kernels (compute for real: the test checks that a smoke
// run's peak is the same both ways).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The H200's memory as its driver reports it (143,771 MiB); the caps nothing here comes near.
const H200_MEMORY_MB = 143_771;
const CHILD = 'IKUN_BENCH_GPU_MEMORY_CHILD';

interface Flags {
  smoke: boolean;
  runKernels: boolean;
  precision: 'tf32' | 'fp32';
  epochs: number;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { smoke: false, runKernels: false, precision: 'tf32', epochs: 2 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--smoke') flags.smoke = true;
    else if (argv[i] === '--run-kernels') flags.runKernels = true;
    else if (argv[i] === '--precision') {
      const p = argv[++i];
      if (p !== 'tf32' && p !== 'fp32') throw new Error(`--precision must be tf32 or fp32, got '${p}'`);
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

const gb = (bytes: number): string => (bytes / 1e9).toFixed(3);

async function measure(flags: Flags): Promise<number> {
  const { cuda, fit, init, models, setCudaPrecision } = await import('../lib/index.js');
  const { GOAL, PAPER_SGD, REFERENCE, paperData, paperSizes } = await import('./paper-config.js');
  if (!cuda.isEmulated()) throw new Error('the emulated CUDA device did not load (IKUN_CUDA_EMULATE=1)');
  const { channels, T, batch } = paperSizes(flags.smoke);
  const { train, test, source } = paperData(flags.smoke, { train: 128, test: 64 });
  setCudaPrecision(flags.precision);
  console.log(`ikun bench:gpu-memory: CSNN-${channels}, T=${T}, batch ${batch}, SGD, precision ${flags.precision}; data: ${source}; ` +
    `the emulated CUDA device, kernels ${flags.runKernels ? 'run' : 'skipped (allocation sizes as on a GPU, no numbers computed)'}`);
  const model = models.csnn({ channels, T });
  init.apply(model, 'ikun_v1', { seed: 42 });
  model.to('cuda');
  cuda.synchronize();
  const parameters = cuda.memoryStats().allocated;
  cuda.resetPeakMemoryStats();
  // Two epochs by default: the first settles the allocator's cache, the second shows that the peak holds.
  const peaks: number[] = [];
  await fit(model, { train, test }, {
    epochs: flags.epochs, batchSize: batch, ...PAPER_SGD,
    onEpoch: () => void peaks.push(cuda.memoryStats().peakAllocated),
  });
  const end = cuda.memoryStats();
  const rows: Array<[string, string, string, string]> = [
    ['peak device memory (GB)', gb(end.peakAllocated), String(REFERENCE.peakGB), `<= ${GOAL.peakGB}`],
    [`peak after epoch ${peaks.map((_, i) => i + 1).join(' / ')} (bytes)`, peaks.join(' / '), '', ''],
    ['parameters on the device (GB)', gb(parameters), '', ''],
    ['reserved at the end, cache included (GB)', gb(end.reserved), '', ''],
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
    console.error(`bench:gpu-memory: ${(error as Error).message}`);
    return 2;
  }
  if (process.env[CHILD] !== '1') return runInEmulator(flags);
  try {
    return await measure(flags);
  } catch (error) {
    console.error(`bench:gpu-memory: ${(error as Error).message}`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
