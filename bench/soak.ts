// npm run bench:soak — memory over a long training loop: the loop a user writes (zeroGrad, forward,
// mseRate, backward, SGD step, membranes reset; nothing disposed by hand) on one fixed batch, N steps of
// a CSNN. Every --every steps (after a full garbage collection when node runs with --expose-gc, as the
// npm script does) it prints the process RSS, the part of it outside V8's heap, the host tensor cache and,
// on a CUDA device, the device memory (cuda.memoryStats()); at the end the growth per 1,000 steps after
// the warm-up (least squares over the samples). Memory must plateau: caches may hold memory, but a
// growth that stays linear is a leak.
//
//   npm run bench:soak -- [--steps 2000] [--channels 32] [--batch 64] [--device cpu|cuda|cuda:N]
//                         [--every 200] [--warmup STEPS] [--no-yield] [--json]
//
// By default the loop yields to the event loop after every step, as fit() does: Node-API runs the
// finalizers of collected objects from the event loop only. --no-yield never yields; ikun still takes
// back the tensors' memory as the garbage collector finds them, but Node keeps some bookkeeping of its
// own per collected tensor until the loop yields.
import { cuda, loss, models, native, optim, tensor, type Device } from '../lib/index.js';

interface SoakOptions {
  steps: number;
  channels: number;
  batch: number;
  device: Device;
  every: number;
  warmup: number;
  yieldEachStep: boolean;
}

interface SoakSample {
  step: number;
  rssMB: number;
  /** RSS minus V8's heap (native memory: tensors, caches, Node's own). */
  outsideHeapMB: number;
  hostCacheMB: number;
  /** Host memory in blocks that live tensors hold (what a leak of tensors grows). */
  hostTensorsMB: number;
  deviceAllocatedMB: number | null;
  deviceReservedMB: number | null;
}

interface SoakResult {
  options: SoakOptions;
  samples: SoakSample[];
  /** MB per 1,000 steps after the warm-up (least-squares slope). */
  growth: { rss: number; outsideHeap: number; hostTensors: number; deviceReserved: number | null };
  msPerStep: number;
}

const MB = 1024 * 1024;

function sample(step: number, device: Device): SoakSample {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const stats = device === 'cpu' ? null : cuda.memoryStats(Number(device.split(':')[1] ?? 0));
  return {
    step, rssMB: m.rss / MB, outsideHeapMB: (m.rss - m.heapTotal) / MB, hostCacheMB: native.hostCacheBytes() / MB, hostTensorsMB: native.hostLiveBytes() / MB,
    deviceAllocatedMB: stats ? stats.allocated / MB : null, deviceReservedMB: stats ? stats.reserved / MB : null,
  };
}

/** Least-squares slope of y over x, times 1000 (per 1,000 steps). */
function slopePer1000(points: Array<[number, number]>): number {
  if (points.length < 2) return Number.NaN;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n, my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0), sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return (1000 * sxy) / sxx;
}

async function soak(o: SoakOptions, onSample: (s: SoakSample) => void = () => {}): Promise<SoakResult> {
  const model = models.csnn({ channels: o.channels, device: o.device });
  const opt = new optim.SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
  // A fixed batch of deterministic grey values, as in the issue's report.
  const images = new Float32Array(o.batch * 784).map((_, i) => ((i * 7919) % 255) / 255);
  const x = tensor(images, [o.batch, 1, 28, 28], { device: o.device });
  const labels = Array.from({ length: o.batch }, (_, i) => i % 10);
  model.train();
  const samples: SoakSample[] = [];
  const start = performance.now();
  for (let step = 0; step <= o.steps; step++) {
    if (step % o.every === 0) {
      const s = sample(step, o.device);
      samples.push(s);
      onSample(s);
    }
    if (step === o.steps) break;
    opt.zeroGrad();
    const rate = model.forward(x);
    const { grad } = loss.mseRate(rate, labels);
    model.backward(grad);
    opt.step();
    model.resetState();
    if (o.yieldEachStep) await new Promise((done) => setImmediate(done));
  }
  const msPerStep = (performance.now() - start) / o.steps;
  const after = samples.filter((s) => s.step >= o.warmup);
  const reserved = after.every((s) => s.deviceReservedMB !== null) ? slopePer1000(after.map((s) => [s.step, s.deviceReservedMB!])) : null;
  return {
    options: o, samples, msPerStep,
    growth: {
      rss: slopePer1000(after.map((s) => [s.step, s.rssMB])), outsideHeap: slopePer1000(after.map((s) => [s.step, s.outsideHeapMB])),
      hostTensors: slopePer1000(after.map((s) => [s.step, s.hostTensorsMB])), deviceReserved: reserved,
    },
  };
}

function parseArgs(argv: string[]): { options: SoakOptions; json: boolean } {
  const value = (name: string, fallback: string): string => {
    const i = argv.indexOf(name);
    if (i < 0) return fallback;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`bench:soak: ${name} needs a value`);
    return v;
  };
  const int = (name: string, fallback: number, min: number): number => {
    const n = Number(value(name, String(fallback)));
    if (!Number.isInteger(n) || n < min) throw new Error(`bench:soak: ${name} must be an integer >= ${min}, got '${value(name, '')}'`);
    return n;
  };
  const known = ['--steps', '--channels', '--batch', '--device', '--every', '--warmup', '--no-yield', '--json'];
  for (const a of argv) if (a.startsWith('--') && !known.includes(a)) throw new Error(`bench:soak: unknown flag ${a} (known: ${known.join(' ')})`);
  const steps = int('--steps', 2000, 1);
  const device = value('--device', 'cpu');
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`bench:soak: --device must be cpu, cuda or cuda:N, got '${device}'`);
  return {
    options: {
      steps, channels: int('--channels', 32, 1), batch: int('--batch', 64, 1), device: device as Device,
      every: int('--every', 200, 1), warmup: int('--warmup', Math.round(steps / 4), 0), yieldEachStep: !argv.includes('--no-yield'),
    },
    json: argv.includes('--json'),
  };
}

async function main(): Promise<void> {
  const { options, json } = parseArgs(process.argv.slice(2));
  const gc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  const fmt = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
  if (!json) {
    console.log(`ikun bench:soak  CSNN c=${options.channels}, batch ${options.batch}, ${options.steps} steps on ${options.device}, ` +
      `${options.yieldEachStep ? 'yielding to the event loop after each step' : 'never yielding'}` +
      `${gc ? ', full GC before each sample' : ' (run with node --expose-gc for a GC before each sample)'}`);
    console.log('  step |  RSS MB | outside V8 heap MB | host tensors MB | host cache MB | device allocated MB | device reserved MB');
  }
  const result = await soak(options, (s) => {
    if (!json) console.log(`${String(s.step).padStart(6)} | ${fmt(s.rssMB).padStart(7)} | ${fmt(s.outsideHeapMB).padStart(18)} | ` +
      `${fmt(s.hostTensorsMB).padStart(15)} | ${fmt(s.hostCacheMB).padStart(13)} | ${fmt(s.deviceAllocatedMB).padStart(19)} | ${fmt(s.deviceReservedMB).padStart(18)}`);
  });
  if (json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`growth per 1,000 steps after step ${options.warmup}: RSS ${result.growth.rss.toFixed(2)} MB, outside V8's heap ` +
    `${result.growth.outsideHeap.toFixed(2)} MB, host tensors ${result.growth.hostTensors.toFixed(2)} MB${result.growth.deviceReserved === null ? '' : `, device reserved ${result.growth.deviceReserved.toFixed(2)} MB`}` +
    `  (${result.msPerStep.toFixed(1)} ms per step)`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
