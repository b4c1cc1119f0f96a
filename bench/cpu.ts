// npm run bench:cpu — CSNN-128 (T=4, batch 128) training step on the CPU next to the BLAS sgemm rate
// measured in the same run, and the same network built by hand as an nn.Sequential (the fusion is
// Sequential's, so the two should take the same time). Prints a table; nothing here is asserted.
import { loss, models, native, nn, surrogate, getCpuKernels, getNumThreads, Tensor } from '../lib/index.js';

interface Row { what: string; value: string }

function gemmFlops(m: number, n: number, k: number): number {
  return 2 * m * n * k;
}

function measure(fn: () => void, minMs = 1500, minReps = 3): number {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!; // median
}

function sgemmRate(size: number): number {
  const a = new native.Storage(0, size * size, false), b = new native.Storage(0, size * size, false), c = new native.Storage(0, size * size, true);
  a.fill(0.5);
  b.fill(0.25);
  native.gemm(a, b, c, [size, size, size], false, false, 1, 0);
  const ms = measure(() => native.gemm(a, b, c, [size, size, size], false, false, 1, 0), 300, 3);
  for (const s of [a, b, c]) s.dispose();
  return gemmFlops(size, size, size) / ms / 1e6;
}

/** Conv and linear GEMM work of one CSNN training step as ikun runs it (first block on N images once). */
function csnnStepFlops(c: number, T: number, n: number): { executed: number; reference: number } {
  const conv1 = gemmFlops(c, 28 * 28, 9), conv2 = gemmFlops(c, 14 * 14, 9 * c);
  const fc1 = gemmFlops(1, 16 * c, 49 * c), fc2 = gemmFlops(1, 10, 16 * c);
  // forward + weight gradient for conv1 (its input gradient is not needed); three GEMMs for the rest
  const executed = n * 2 * conv1 + T * n * 3 * (conv2 + fc1 + fc2);
  const reference = T * n * (2 * conv1 + 3 * (conv2 + fc1 + fc2));
  return { executed, reference };
}

/** RepeatOverTime(T), the 13 layers of models.csnn's conv_fc, MeanOverTime(): the CSNN as a user builds it. */
function handBuiltCsnn(c: number, T: number): nn.Sequential {
  const node = (): nn.Module => new nn.IFNode({ surrogate: surrogate.atan({ alpha: 2 }) });
  return new nn.Sequential(new nn.RepeatOverTime(T),
    new nn.Conv2d(1, c, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(c), node(), new nn.MaxPool2d(2),
    new nn.Conv2d(c, c, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(c), node(), new nn.MaxPool2d(2),
    new nn.Flatten({ startDim: 2 }), new nn.Linear(c * 49, c * 16, { bias: false }), node(), new nn.Linear(c * 16, 10, { bias: false }), node(),
    new nn.MeanOverTime());
}

function main(): void {
  const channels = Number(process.env.IKUN_BENCH_CHANNELS ?? 128);
  const T = 4, batch = 128, rounds = Number(process.env.IKUN_BENCH_ROUNDS ?? 5);
  const rows: Row[] = [];
  rows.push({ what: 'threads', value: String(getNumThreads()) });
  rows.push({ what: 'CPU neuron kernels', value: getCpuKernels().active });

  const model = models.csnn({ channels, T });
  model.train();
  const images = new Float32Array(batch * 784);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7919 % 256) / 255;
  const x = Tensor.empty([batch, 1, 28, 28], 'float32');
  x.copyFrom(images);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const handBuilt = handBuiltCsnn(channels, T);
  handBuilt.train();
  handBuilt.parameters().forEach((p, i) => p.copyFrom(model.parameters()[i]!));
  let forwardMs = 0;
  const stepOf = (m: nn.Module) => (): void => {
    m.zeroGrad();
    const t0 = performance.now();
    const rate = m.forward(x);
    forwardMs = performance.now() - t0;
    const { grad } = loss.mseRate(rate, labels);
    m.backwardImpl(grad, false);
    m.resetState();
  };
  const step = stepOf(model), handBuiltStep = stepOf(handBuilt);
  // sgemm and the steps alternate, so a shared or throttled machine slows all alike and the ratios hold.
  const stepTimes: number[] = [], gemmRates: number[] = [], forwardTimes: number[] = [], handBuiltTimes: number[] = [];
  step();
  handBuiltStep();
  for (let r = 0; r < rounds; r++) {
    gemmRates.push(sgemmRate(2048));
    // the two models take turns going first, so neither always runs right after the sgemm
    if (r % 2 === 1) handBuiltTimes.push(measure(handBuiltStep, 0, 1));
    stepTimes.push(measure(step, 0, 1));
    forwardTimes.push(forwardMs);
    if (r % 2 === 0) handBuiltTimes.push(measure(handBuiltStep, 0, 1));
  }
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const stepMs = median(stepTimes);
  forwardMs = median(forwardTimes);
  const gflops = median(gemmRates);
  const ratios = stepTimes.map((ms, i) => csnnStepFlops(channels, T, batch).executed / ms / 1e6 / gemmRates[i]!);
  rows.push({ what: 'BLAS sgemm 2048^3 (GFLOP/s, median)', value: gflops.toFixed(1) });
  const { executed, reference } = csnnStepFlops(channels, T, batch);
  const achieved = executed / stepMs / 1e6;
  rows.push({ what: `CSNN-${channels} params`, value: String(model.parameterCount()) });
  rows.push({ what: 'step: forward + backward (ms, median)', value: stepMs.toFixed(1) });
  rows.push({ what: 'forward alone in that step (ms)', value: forwardMs.toFixed(1) });
  rows.push({ what: 'samples/s', value: (batch / (stepMs / 1000)).toFixed(1) });
  rows.push({ what: 'conv+linear GFLOP per step (executed)', value: (executed / 1e9).toFixed(2) });
  rows.push({ what: 'conv+linear GFLOP per step (T copies of block 1)', value: (reference / 1e9).toFixed(2) });
  rows.push({ what: 'achieved conv+linear GFLOP/s (whole step)', value: achieved.toFixed(1) });
  rows.push({ what: 'whole step vs sgemm rate (median of rounds)', value: `${(median(ratios) * 100).toFixed(1)}%  (goal >= 60%)` });
  rows.push({ what: 'epoch estimate, 156 steps (s)', value: ((156 * stepMs) / 1000).toFixed(1) });
  const handBuiltMs = median(handBuiltTimes);
  const perRound = handBuiltTimes.map((ms, i) => ms / stepTimes[i]!);
  rows.push({ what: 'hand-built nn.Sequential CSNN step (ms, median)', value: handBuiltMs.toFixed(1) });
  rows.push({ what: 'hand-built vs models.csnn step (median of rounds)', value: `${(median(perRound) * 100).toFixed(1)}%  (goal <= 110%)` });

  const width = Math.max(...rows.map((r) => r.what.length));
  console.log(`ikun bench:cpu  CSNN-${channels}, T=${T}, batch ${batch}, float32`);
  console.log(`${'metric'.padEnd(width)} | value`);
  console.log(`${'-'.repeat(width)}-|-${'-'.repeat(24)}`);
  for (const r of rows) console.log(`${r.what.padEnd(width)} | ${r.value}`);
}

main();
