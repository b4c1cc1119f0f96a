// npm run bench:train — one epoch of the paper's configuration on the CPU: CSNN-128, T=4, batch 128,
// SGD, the seeded 20,000-image subset of Fashion-MNIST (156 steps), then the test pass over 10,000.
// Needs the full data set (apt-get install dataset-fashion-mnist, or --data / IKUN_DATA).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getNumThreads, native, train } from '../lib/index.js';

/** The BLAS sgemm rate right now: on a shared machine, the context for every time below. */
function sgemmRate(size = 2048): number {
  const a = new native.Storage(0, size * size, false), b = new native.Storage(0, size * size, false), c = new native.Storage(0, size * size, true);
  a.fill(0.5);
  b.fill(0.25);
  native.gemm(a, b, c, [size, size, size], false, false, 1, 0);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) native.gemm(a, b, c, [size, size, size], false, false, 1, 0);
  const ms = (performance.now() - t0) / 3;
  for (const s of [a, b, c]) s.dispose();
  return (2 * size ** 3) / ms / 1e6;
}

async function main(): Promise<void> {
  const gemmBefore = sgemmRate();
  const dataArg = process.argv.indexOf('--data');
  const out = join(mkdtempSync(join(tmpdir(), 'ikun-bench-train-')), 'run');
  let stepsDone = 0;
  const result = await train(
    { epochs: 1, device: 'cpu', out, ...(dataArg > 0 ? { data: process.argv[dataArg + 1]! } : {}) },
    { log: (l) => console.error(l), onStep: (s) => { if (s.phase === 'train') stepsDone = s.step; } },
  );
  const gemmAfter = sgemmRate();
  const m = result.metrics[0]!;
  const trainSeconds = m.epoch_s - m.test_s;
  const rows: Array<[string, string]> = [
    ['threads', String(getNumThreads())],
    ['BLAS sgemm 2048^3 before / after (GFLOP/s)', `${gemmBefore.toFixed(1)} / ${gemmAfter.toFixed(1)}`],
    ['training steps (batch 128)', String(stepsDone)],
    ['training epoch (s)', trainSeconds.toFixed(1)],
    ['training samples/s', m.samples_per_s.toFixed(1)],
    ['ms per step', ((1000 * trainSeconds) / stepsDone).toFixed(1)],
    ['test pass over 10,000 (s)', m.test_s.toFixed(1)],
    ['epoch incl. test (s)', m.epoch_s.toFixed(1)],
    ['train acc / test acc after 1 epoch', `${(100 * m.train_acc).toFixed(2)}% / ${(100 * m.test_acc).toFixed(2)}%`],
    ['reference: SpikingJelly cupy on an H200 (s/epoch)', '1.19'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('ikun bench:train  paper config (CSNN-128, T=4, batch 128, SGD lr 0.1, 20k subset), CPU, float32');
  console.log(`${'metric'.padEnd(width)} | value`);
  console.log(`${'-'.repeat(width)}-|-${'-'.repeat(20)}`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)} | ${v}`);
  rmSync(join(out, '..'), { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
