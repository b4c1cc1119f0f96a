// npm run bench:gpu — the paper's configuration (CSNN-128, T = 4, batch 128, a 20,000-image training subset,
// SGD) on a CUDA GPU: seconds per training epoch, samples/s, the test pass over 10,000 images, peak device
// memory, the conv+linear TFLOP/s achieved and the per-op split of the GPU time (CUDA events), next to the
// reference figures of SpikingJelly measured on an H200. Without a GPU it says so and exits 0.
// Flags: --precision tf32|fp32|bf16 (default tf32), --smoke (a tiny run, also on the emulated device: for tests).
import { cuda, fit, getCudaPrecision, init, models, native, setCudaPrecision, type CudaPrecision } from '../lib/index.js';
import type { CudaRuntimeCounters } from '../lib/cuda.js';
import { GOAL, PAPER_SGD, REFERENCE, paperData, paperSizes } from './paper-config.js';

interface Flags {
  smoke: boolean;
  precision: CudaPrecision;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { smoke: false, precision: 'tf32' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--smoke') flags.smoke = true;
    else if (argv[i] === '--precision') {
      const p = argv[++i];
      if (p !== 'tf32' && p !== 'fp32' && p !== 'bf16') throw new Error(`--precision must be tf32, fp32 or bf16, got '${p}'`);
      flags.precision = p;
    } else throw new Error(`unknown flag ${argv[i]}`);
  }
  return flags;
}

/** Conv and linear FLOPs of one training step as ikun runs it (the first block once on the N images). */
function stepFlops(c: number, T: number, n: number): number {
  const gemm = (m: number, nn: number, k: number): number => 2 * m * nn * k;
  const conv1 = gemm(c, 28 * 28, 9), conv2 = gemm(c, 14 * 14, 9 * c), fc1 = gemm(1, 16 * c, 49 * c), fc2 = gemm(1, 10, 16 * c);
  return n * 2 * conv1 + T * n * 3 * (conv2 + fc1 + fc2);
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    console.error(`bench:gpu: ${(error as Error).message}`);
    return 2;
  }
  if (!cuda.isAvailable()) {
    console.log(`bench:gpu: ${cuda.unavailableReason()}; nothing to measure.`);
    return 0;
  }
  if (cuda.isEmulated() && !flags.smoke) {
    console.log('bench:gpu: the CUDA device is the emulated one of the tests, not a GPU; nothing to measure (--smoke runs a tiny check of this bench).');
    return 0;
  }
  const { channels, T, batch } = paperSizes(flags.smoke);
  const { train, test, source } = paperData(flags.smoke);
  setCudaPrecision(flags.precision);
  const props = cuda.getDeviceProperties(0);
  console.log(`ikun bench:gpu on ${props.name} (compute capability ${props.major}.${props.minor}), CSNN-${channels}, T=${T}, batch ${batch}, ` +
    `SGD, precision ${getCudaPrecision()}; data: ${source}`);

  const model = models.csnn({ channels, T });
  init.apply(model, 'ikun_v1', { seed: 42 });
  model.to('cuda');
  cuda.synchronize();
  cuda.resetPeakMemoryStats();
  // Epoch 1 warms the allocator's cache up; epoch 2 is the one measured; epoch 3 runs with CUDA events
  // around every op for the split (the events cost a little, so it is not the one timed).
  const times: Array<{ train: number; test: number; samples: number }> = [];
  let profiled = false;
  // What the host asked of the device in the measured epoch (epoch 2, between the waits of the synchronize below)
  const counters: CudaRuntimeCounters[] = [];
  await fit(model, { train, test }, {
    epochs: 3, batchSize: batch, ...PAPER_SGD,
    onEpoch: (m) => {
      if (m.epoch === 2) counters.push(cuda.runtimeCounters());
      cuda.synchronize();
      if (m.epoch === 1) counters.push(cuda.runtimeCounters());
      times.push({ train: m.epoch_s - m.test_s, test: m.test_s, samples: m.samples_per_s });
      if (m.epoch === 2) {
        native.cudaTakeOpProfile(0);
        native.cudaSetOpProfiling(true);
        profiled = true;
      }
    },
  });
  const profile = profiled ? native.cudaTakeOpProfile(0) : [];
  native.cudaSetOpProfiling(false);
  const peak = cuda.memoryStats().peakAllocated;
  const measured = times[1]!;
  const steps = Math.floor(train.count / batch);
  const tflops = (stepFlops(channels, T, batch) * steps) / measured.train / 1e12;
  const used = (key: keyof CudaRuntimeCounters): number => counters[1]![key] - counters[0]![key];

  const rows: Array<[string, string, string, string]> = [
    ['training epoch (s)', measured.train.toFixed(3), String(REFERENCE.epochSeconds), `<= ${GOAL.epochSeconds}`],
    ['samples/s', measured.samples.toFixed(0), String(REFERENCE.samplesPerSecond), ''],
    [`test pass over ${test.count} images (s)`, measured.test.toFixed(3), String(REFERENCE.testSeconds), `<= ${GOAL.testSeconds}`],
    ['peak device memory (GB)', (peak / 1e9).toFixed(2), String(REFERENCE.peakGB), `<= ${GOAL.peakGB}`],
    ['conv+linear TFLOP/s achieved', tflops.toFixed(2), '', ''],
    ['speed-up over SpikingJelly (epoch)', (REFERENCE.epochSeconds / measured.train).toFixed(2), '1', '>= 5'],
    ['kernels + memsets queued per epoch', String(used('kernelLaunches') + used('memoryOps')), '', ''],
    ['host waits / cudaMalloc calls in the epoch', `${used('hostWaits')} / ${used('deviceAllocations')}`, '', ''],
  ];
  const w = [Math.max(...rows.map((r) => r[0].length)), 10, 22, 8];
  console.log(`${'metric'.padEnd(w[0]!)} | ${'ikun'.padStart(w[1]!)} | ${'SpikingJelly cupy, H200'.padStart(w[2]!)} | goal`);
  console.log(`${'-'.repeat(w[0]!)}-|-${'-'.repeat(w[1]!)}-|-${'-'.repeat(w[2]!)}-|-${'-'.repeat(w[3]!)}`);
  for (const r of rows) console.log(`${r[0].padEnd(w[0]!)} | ${r[1].padStart(w[1]!)} | ${r[2].padStart(w[2]!)} | ${r[3]}`);

  const total = profile.reduce((s, p) => s + p.ms, 0);
  const calls = profile.reduce((s, p) => s + p.calls, 0);
  console.log(`\nGPU time per op in one profiled epoch (CUDA events; ${total.toFixed(1)} ms in all, ` +
    `${((total / 1000 / (times[2]!.train + times[2]!.test)) * 100).toFixed(0)}% of that epoch's wall time; ` +
    `${calls} ops, ${(calls / steps).toFixed(1)} per training step with the test pass's share):`);
  const ow = Math.max(...profile.map((p) => p.op.length), 2);
  console.log(`${'op'.padEnd(ow)} | ${'ms'.padStart(9)} | ${'share'.padStart(6)} | calls`);
  for (const p of [...profile].sort((a, b) => b.ms - a.ms))
    console.log(`${p.op.padEnd(ow)} | ${p.ms.toFixed(2).padStart(9)} | ${((100 * p.ms) / total).toFixed(1).padStart(5)}% | ${p.calls}`);
  console.log(`\nReference split of SpikingJelly (cupy): BatchNorm 24%, max-pool 18%, IF kernels 13%, linear GEMMs 17%, convolutions 14%; ` +
    `about 40% of its wall time is host overhead.`);
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
