// npm run bench:hessian — CSNN-128 (T=4) in eval mode on one image: the time of one Hessian-vector
// product relative to one gradient evaluation (goal <= 3x), and the time for the top-50 eigenvalues plus
// the trace with the paper's defaults (power iteration / Hutchinson, at most 100 iterations, tol 1e-3).
import { Generator, hessian, init, loss, models, optim, Tensor, getNumThreads } from '../lib/index.js';
import { loadSample } from '../lib/data.js';

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function main(): void {
  const top = Number(process.env.IKUN_BENCH_TOP ?? 50);
  const model = models.csnn({ channels: 128, T: 4 });
  init.apply(model, 'ikun_v1', { seed: 42 });
  model.eval();
  const { test } = loadSample();
  const x = Tensor.empty([1, 1, 28, 28], 'float32');
  x.copyFrom(test.images.subarray(0, 784));
  const labels = [test.labels[0]!];
  const params = model.parameters();

  const gradientTimes: number[] = [], hvpTimes: number[] = [];
  const v = hessian.randomNormal(params, new Generator(0));
  for (let r = 0; r < 6; r++) {
    let t0 = performance.now();
    model.zeroGrad();
    const rate = model.forward(x);
    model.backwardImpl(loss.mseRate(rate, labels).grad, false);
    optim.gradNorm(params);
    model.resetState();
    gradientTimes.push(performance.now() - t0);
    t0 = performance.now();
    hessian.disposeVector(hessian.hvp(model, x, labels, v));
    hvpTimes.push(performance.now() - t0);
  }
  const gradMs = median(gradientTimes.slice(1)), hvpMs = median(hvpTimes.slice(1));

  let products = 0;
  let t0 = performance.now();
  let found = 0;
  const eig = hessian.topEigenvalues(model, x, labels, {
    k: top, maxIter: 100, tol: 1e-3, seed: 0,
    onProgress: (p) => {
      products++;
      if (p.index > found + 1 || (p.index === top && p.iteration === p.maxIterations)) {
        found = p.index - 1;
        console.error(`  eigenvalue ${found} of ${top} after ${((performance.now() - t0) / 1000).toFixed(0)} s (${products} HVPs)`);
      }
    },
  });
  const eigSeconds = (performance.now() - t0) / 1000;
  hessian.disposeVector(eig.eigenvectors.flat());
  const eigProducts = products;
  t0 = performance.now();
  const tr = hessian.trace(model, x, labels, { maxIter: 100, tol: 1e-3, seed: 0, onProgress: () => { products++; } });
  const traceSeconds = (performance.now() - t0) / 1000;

  const rows: Array<[string, string]> = [
    ['threads', String(getNumThreads())],
    ['parameters', String(model.parameterCount())],
    ['gradient evaluation, 1 image (ms, median)', gradMs.toFixed(1)],
    ['Hessian-vector product (ms, median)', hvpMs.toFixed(1)],
    ['HVP / gradient', `${(hvpMs / gradMs).toFixed(2)}x  (goal <= 3x)`],
    [`top-${top} eigenvalues (s, ${eigProducts} HVPs)`, eigSeconds.toFixed(1)],
    [`trace (s, ${tr.samples.length} HVPs)`, traceSeconds.toFixed(1)],
    [`top-${top} + trace (s)`, (eigSeconds + traceSeconds).toFixed(1)],
    ['largest |eigenvalue|, trace', `${eig.eigenvalues[0]!.toPrecision(5)}, ${tr.trace.toPrecision(5)}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('ikun bench:hessian  CSNN-128, T=4, eval mode, one sample (ikun_v1 init), CPU, float32');
  console.log(`${'metric'.padEnd(width)} | value`);
  console.log(`${'-'.repeat(width)}-|-${'-'.repeat(24)}`);
  for (const [k, val] of rows) console.log(`${k.padEnd(width)} | ${val}`);
}

main();
