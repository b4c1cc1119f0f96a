// The catalogue of CUDA-vs-CPU checks: every op of the native layer, run on the same random data on the
// CPU and on a CUDA device, and whole-model steps (a CSNN training step with two SGD steps, a Hessian-vector
// product). One list serves `node dist/bench/gpu-check.js` on a real GPU and the test suite on the emulated
// device (test/cuda/ops.test.ts); `small` sizes keep the emulation (a host thread per CUDA thread) fast.
import * as F from '../lib/functional.js';
import { native, type NeuronParamsNative } from '../lib/native.js';
import { Generator } from '../lib/random.js';
import * as surrogate from '../lib/surrogate.js';
import { Parameter, Tensor, tensor, type DType, type Device } from '../lib/tensor.js';
import type { CudaPrecision } from '../lib/precision.js';
import * as lossFns from '../lib/loss.js';
import * as optim from '../lib/optim.js';
import * as models from '../lib/models.js';
import * as init from '../lib/init.js';
import { hvp } from '../lib/hvp.js';

export type CaseSize = 'small' | 'medium';

export interface OpCase {
  /** what runs, e.g. 'conv2d backward' */
  op: string;
  /** the shapes and settings, for the table */
  shape: string;
  dtype: DType;
  /** largest relative error accepted (max |cuda - cpu| / max |cpu| per output) */
  tolerance: number;
  /** the CUDA precision of convolutions and matrix products while it runs (default 'fp32': exact) */
  precision?: CudaPrecision;
  /** runs the op on `device` from the case's own seeded data; returns every output */
  run(device: Device): ArrayLike<number>[];
}

export interface CaseResult {
  op: string;
  shape: string;
  dtype: DType;
  error: number;
  tolerance: number;
  pass: boolean;
  /** a failure that was not a numeric difference (an exception, a different output count or size) */
  problem?: string;
}

/** max |a - b| / max |b| (0 when both are zero); NaN anywhere makes it NaN. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return NaN;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

export function checkCase(c: OpCase, device: Device): CaseResult {
  const base = { op: c.op, shape: c.shape, dtype: c.dtype, tolerance: c.tolerance };
  let expected: ArrayLike<number>[], actual: ArrayLike<number>[];
  const before = native.cudaPrecision();
  try {
    expected = c.run('cpu');
    native.cudaSetPrecision(c.precision ?? 'fp32');
    actual = c.run(device);
  } catch (error) {
    return { ...base, error: NaN, pass: false, problem: (error as Error).message };
  } finally {
    native.cudaSetPrecision(before);
  }
  if (expected.length !== actual.length) return { ...base, error: NaN, pass: false, problem: `${actual.length} outputs, expected ${expected.length}` };
  let error = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i]!.length !== actual[i]!.length)
      return { ...base, error: NaN, pass: false, problem: `output ${i} has ${actual[i]!.length} values, expected ${expected[i]!.length}` };
    error = Math.max(error, relativeError(actual[i]!, expected[i]!));
  }
  return { ...base, error, pass: error <= c.tolerance };
}

// ---- data --------------------------------------------------------------------------------------------------

function values(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  const g = new Generator(seed);
  return Float64Array.from({ length: n }, () => offset + scale * (2 * g.uniform() - 1));
}

function random(shape: number[], seed: number, dtype: DType, device: Device, scale = 1, offset = 0): Tensor {
  return tensor(values(shape.reduce((a, b) => a * b, 1), seed, scale, offset), shape, { dtype, device });
}

/** Spikes in {0, 1} (max-pool ties) from a seed. */
function binary(shape: number[], seed: number, dtype: DType, device: Device): Tensor {
  const v = values(shape.reduce((a, b) => a * b, 1), seed);
  return tensor(v.map((x) => (x > 0.2 ? 1 : 0)), shape, { dtype, device });
}

const out = (...ts: Tensor[]): Float32Array[] | Float64Array[] => ts.map((t) => t.toArray()) as Float64Array[];
const tolerance = (dtype: DType): number => (dtype === 'float32' ? 1e-5 : 1e-12);

// ---- the cases ---------------------------------------------------------------------------------------------

function elementwiseCases(dtype: DType, n: number): OpCase[] {
  const c = (op: string, run: (d: Device) => ArrayLike<number>[]): OpCase => ({ op, shape: `[${n}]`, dtype, tolerance: tolerance(dtype), run });
  return [
    c('fill', (d) => out(Tensor.zeros([n], dtype, d).fill(-2.5))),
    c('copy, convert to the other dtype', (d) => {
      const x = random([n], 1, dtype, d);
      return out(x.clone(), x.to(dtype === 'float32' ? 'float64' : 'float32'));
    }),
    c('axpy, scale', (d) => {
      const y = random([n], 2, dtype, d), x = random([n], 3, dtype, d);
      F.addInto(y, x);
      native.scale(y.storage, -0.75);
      return out(y);
    }),
    c('repeat over time, sum over time', (d) => {
      const x = random([n], 4, dtype, d);
      const r = F.repeatOverTime(x, 3, 0.5);
      return out(r, F.sumOverTime(r, 1 / 3));
    }),
    c('zeroAll over 19 tensors of both dtypes and int32 (one launch per 16)', (d) => {
      const other: DType = dtype === 'float32' ? 'float64' : 'float32';
      const ts = Array.from({ length: 19 }, (_, i) => random([[n, 0, 5, 17][i % 4]!], 20 + i, i % 3 === 2 ? 'int32' : i % 3 === 1 ? other : dtype, d, 50, 60));
      F.zeroAll(ts);
      const left = ts.findIndex((t) => t.toArray().some((v) => v !== 0));
      if (left >= 0) throw new Error(`zeroAll left tensor ${left} non-zero`);
      return ts.map((t) => Float64Array.from(t.toArray()));
    }),
    c('add to totals, counting the finite ones (NaN and infinities among the steps)', (d) => {
      const bad = values(n, 7).map((v, i) => (i % 7 === 3 ? NaN : i % 11 === 5 ? Infinity : i % 13 === 6 ? -Infinity : v));
      const totals = random([n], 8, dtype, d), finite = Tensor.zeros([n], dtype, d), plain = random([n], 9, dtype, d);
      const steps = [tensor(bad, [n], { dtype, device: d }), random([n], 10, dtype, d)];
      for (const step of steps) native.addToTotals(step.storage, totals.storage, finite.storage);
      native.addToTotals(steps[1]!.storage, plain.storage, null);
      // NaN and the infinities as finite codes, so that the comparison sees them
      const coded = (t: Tensor): Float64Array => Float64Array.from(t.toArray(), (v) => (Number.isFinite(v) ? v : Number.isNaN(v) ? 7e7 : Math.sign(v) * 8e7));
      return [coded(totals), finite.toArray(), plain.toArray()];
    }),
    c('sum, sum of squares, dot (returned and accumulated)', (d) => {
      const x = random([n], 5, dtype, d), y = random([n], 6, dtype, d);
      const acc = Tensor.zeros([3], 'float64', d);
      native.sum(x.storage, acc.storage, 0, 2);
      native.sumOfSquares(x.storage, acc.storage, 1, 1);
      native.dot(x.storage, y.storage, acc.storage, 2, -1);
      return [Float64Array.of(native.sum(x.storage), native.sumOfSquares(x.storage), native.dot(x.storage, y.storage)), acc.toArray()];
    }),
    c('sums into slots (19 tensors of both float dtypes, two sharing a slot)', (d) => {
      const other: DType = dtype === 'float32' ? 'float64' : 'float32';
      const ts = Array.from({ length: 19 }, (_, i) => random([[n, 0, 5, 17][i % 4]!], 40 + i, i % 3 === 1 ? other : dtype, d));
      const acc = random([18], 39, 'float64', d);
      native.sumsInto(ts.map((t) => t.storage), acc.storage, ts.map((_, i) => (i === 18 ? 0 : i)), ts.map((_, i) => 1 / (i + 1)));
      return [acc.toArray()];
    }),
  ];
}

function gemmCases(dtype: DType, m: number, n: number, k: number): OpCase[] {
  return [false, true].flatMap((ta) => [false, true].map((tb): OpCase => ({
    op: `gemm${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`, shape: `${m}x${n}x${k}, beta 0.5`, dtype, tolerance: tolerance(dtype),
    run: (d) => {
      const a = random([m * k], 7, dtype, d), b = random([k * n], 8, dtype, d), c = random([m * n], 9, dtype, d);
      native.gemm(a.storage, b.storage, c.storage, [m, n, k], ta, tb, 1.5, 0.5);
      return out(c);
    },
  })));
}

interface ConvSpec { n: number; cin: number; h: number; w: number; cout: number; kh: number; kw: number; stride: number; padding: number; bias: boolean }

function convCases(dtype: DType, specs: ConvSpec[]): OpCase[] {
  return specs.flatMap((s): OpCase[] => {
    const shape = `x [${s.n},${s.cin},${s.h},${s.w}], w [${s.cout},${s.cin},${s.kh},${s.kw}], stride ${s.stride}, pad ${s.padding}${s.bias ? ', bias' : ''}`;
    const make = (d: Device) => {
      const x = random([s.n, s.cin, s.h, s.w], 10, dtype, d), w = random([s.cout, s.cin, s.kh, s.kw], 11, dtype, d, 0.5);
      const bias = s.bias ? random([s.cout], 12, dtype, d) : null;
      return { x, w, bias, g: { stride: s.stride, padding: s.padding } };
    };
    return [
      { op: 'conv2d forward', shape, dtype, tolerance: tolerance(dtype), run: (d) => {
        const { x, w, bias, g } = make(d);
        return out(F.conv2dForward(x, w, bias, g));
      } },
      { op: 'conv2d backward (input, weight, bias)', shape, dtype, tolerance: tolerance(dtype), run: (d) => {
        const { x, w, bias, g } = make(d);
        const y = F.conv2dForward(x, w, bias, g);
        const dy = random([...y.shape], 13, dtype, d);
        const dw = random([...w.shape], 14, dtype, d), db = bias ? random([s.cout], 15, dtype, d) : null; // accumulates
        const dx = F.conv2dBackward(x, w, dy, g, dw, db, true)!;
        return db ? out(dx, dw, db) : out(dx, dw);
      } },
    ];
  });
}

function linearCases(dtype: DType, batch: number, inF: number, outF: number): OpCase[] {
  const shape = `x [${batch},${inF}], w [${outF},${inF}], bias`;
  return [
    { op: 'linear forward, backward', shape, dtype, tolerance: tolerance(dtype), run: (d) => {
      const x = random([batch, inF], 16, dtype, d), w = random([outF, inF], 17, dtype, d, 0.3), b = random([outF], 18, dtype, d);
      const y = F.linearForward(x, w, b);
      const dy = random([batch, outF], 19, dtype, d), dw = random([outF, inF], 20, dtype, d), db = random([outF], 21, dtype, d);
      const dx = F.linearBackward(x, w, dy, dw, db, true)!;
      return out(y, dx, dw, db);
    } },
  ];
}

function batchNormCases(dtype: DType, n: number, c: number, hw: number): OpCase[] {
  const shape = `[${n},${c},${hw},${hw}]`;
  const setup = (d: Device, training: boolean, replicas: number) => {
    const x = random([n, c, hw, hw], 22, dtype, d, 2, 0.5), gamma = random([c], 23, dtype, d, 0.5, 1), beta = random([c], 24, dtype, d);
    const rm = random([c], 25, dtype, d, 0.1), rv = random([c], 26, dtype, d, 0.2, 1);
    const { y, ctx } = F.batchNormForward(x, gamma, beta, rm, rv, training, 0.1, 1e-5, replicas);
    return { x, gamma, beta, rm, rv, y, ctx };
  };
  return [true, false].flatMap((training) => [1, 3].filter((r) => training || r === 1).flatMap((replicas): OpCase[] => {
    const mode = `${training ? 'train' : 'eval'}${replicas > 1 ? `, ${replicas} replicas` : ''}`;
    return [
      { op: `batchnorm forward, backward (${mode})`, shape, dtype, tolerance: tolerance(dtype), run: (d) => {
        const { x, gamma, rm, rv, y, ctx } = setup(d, training, replicas);
        const dy = random([...x.shape], 27, dtype, d), dg = Tensor.zeros([c], dtype, d), db = Tensor.zeros([c], dtype, d);
        const dx = F.batchNormBackward(ctx, gamma, dy, dg, db, true)!;
        return out(y, ctx.savedMean, ctx.savedInvStd, rm, rv, dx, dg, db);
      } },
      { op: `batchnorm tangents (${mode})`, shape, dtype, tolerance: tolerance(dtype), run: (d) => {
        const { x, gamma, ctx } = setup(d, training, replicas);
        const xDot = random([...x.shape], 28, dtype, d), gDot = random([c], 29, dtype, d), bDot = random([c], 30, dtype, d);
        const yDot = F.batchNormForwardTangent(ctx, xDot, gamma, gDot, bDot);
        const dy = random([...x.shape], 31, dtype, d), dyDot = random([...x.shape], 32, dtype, d);
        const dgDot = Tensor.zeros([c], dtype, d), dbDot = Tensor.zeros([c], dtype, d);
        const [dx, dxDot] = F.batchNormBackwardTangent(ctx, xDot, gamma, gDot, dy, dyDot, dgDot, dbDot);
        return out(yDot, dx, dxDot, dgDot, dbDot);
      } },
    ];
  }));
}

function poolCases(dtype: DType, n: number, c: number, hw: number): OpCase[] {
  return ([[2, 2], [3, 2], [3, 1]] as const).flatMap(([kernel, stride]) => [false, true].map((spikes): OpCase => ({
    op: `max-pool forward, backward, gather${spikes ? ' (binary input: ties)' : ''}`, shape: `[${n},${c},${hw},${hw}], kernel ${kernel}, stride ${stride}`,
    dtype, tolerance: tolerance(dtype), run: (d) => {
      const x = spikes ? binary([n, c, hw, hw], 33, dtype, d) : random([n, c, hw, hw], 33, dtype, d);
      const { y, ctx } = F.maxPool2dForward(x, kernel, stride);
      const dy = random([...y.shape], 34, dtype, d);
      const dx = F.maxPool2dBackward(ctx, dy);
      const g = F.maxPool2dForwardTangent(ctx, random([...x.shape], 35, dtype, d));
      return [...out(y, dx, g), ctx.argmax.read()];
    },
  })));
}

interface NeuronVariant { kind: 0 | 1; surrogate: string; spiking: boolean; soft: boolean; detach: boolean; decayInput: boolean; staticInput: boolean }

function neuronParams(v: NeuronVariant, steps: number, width: number): NeuronParamsNative {
  const s = surrogate.create(v.surrogate as surrogate.SurrogateName, { spiking: v.spiking });
  return { kind: v.kind, vThreshold: 1, vReset: v.soft ? null : 0.1, tau: 1.7, decayInput: v.decayInput, detachReset: v.detach,
    surrogate: s.code, alpha: s.alpha, spiking: v.spiking, staticInput: v.staticInput, steps, width };
}

function describeVariant(v: NeuronVariant): string {
  return `${v.kind === 0 ? 'IF' : `LIF${v.decayInput ? '' : ' (no input decay)'}`} ${v.surrogate}${v.spiking ? '' : ' smooth'}${v.soft ? ' soft' : ' hard'}` +
    `${v.detach ? ' detach' : ''}${v.staticInput ? ' static input' : ''}`;
}

function neuronVariants(all: boolean): NeuronVariant[] {
  const variants: NeuronVariant[] = [];
  for (const name of surrogate.SURROGATE_NAMES)
    for (const spiking of [true, false])
      for (const soft of [false, true])
        for (const detach of [false, true]) {
          variants.push({ kind: 0, surrogate: name, spiking, soft, detach, decayInput: true, staticInput: false });
          if (all || name === 'atan' || name === 'sigmoid')
            variants.push({ kind: 1, surrogate: name, spiking, soft, detach, decayInput: !soft, staticInput: detach });
        }
  return variants;
}

function neuronCases(dtype: DType, steps: number, planes: number, hw: number, all: boolean): OpCase[] {
  const width = planes * hw * hw;
  return neuronVariants(all).flatMap((v): OpCase[] => {
    const p = neuronParams(v, steps, width);
    const stepShape = [1, planes, hw, hw]; // [N, C, H, W] as the fused op reads it
    const inputShape = v.staticInput ? stepShape : [steps, ...stepShape];
    const shape = `${describeVariant(v)}, T ${steps}, [1,${planes},${hw},${hw}]`;
    return [
      { op: 'neuron forward, backward, tangents', shape, dtype, tolerance: tolerance(dtype), run: (d) => {
        const x = random(inputShape, 36, dtype, d, 1.2, 0.6);
        const { spikes, h } = F.neuronForward(x, p);
        const ds = random([steps, ...stepShape], 37, dtype, d);
        const dx = F.neuronBackward(h, ds, p);
        const { hDot, sDot } = F.neuronForwardTangent(h, random(inputShape, 38, dtype, d), p);
        const [dxT, dxDot] = F.neuronBackwardTangent(h, hDot, ds, random([steps, ...stepShape], 39, dtype, d), p);
        return out(spikes, h, dx, hDot, sDot, dxT, dxDot);
      } },
      ...([[2, 2], [3, 2]] as const).map(([kernel, stride]): OpCase => ({
        op: `neuron + max-pool fused${kernel === 2 ? '' : ' (unfused twin)'}`, shape: `${shape}, pool ${kernel}/${stride}`, dtype,
        tolerance: tolerance(dtype), run: (d) => {
          const x = random(inputShape, 40, dtype, d, 1.2, 0.6);
          const fused = F.neuronPoolForward(x, p, kernel, stride);
          const dx = F.neuronPoolBackward(fused.ctx, random([...fused.pooled.shape], 41, dtype, d));
          return [...out(fused.pooled, dx), Float64Array.of(native.sum(fused.spikeCounts.storage))];
        },
      })),
      ...([[2, 2], [3, 2]] as const).map(([kernel, stride]): OpCase => ({
        op: `batchnorm + neuron + max-pool fused${kernel === 2 ? '' : ' (unfused twin)'}`, shape: `${shape}, pool ${kernel}/${stride}`, dtype,
        tolerance: tolerance(dtype), run: (d) => {
          const x = random(inputShape, 42, dtype, d, 2, 0.3);
          const folded = x.reshape([x.size / (planes * hw * hw), planes, hw, hw]);
          const gamma = random([planes], 43, dtype, d, 0.5, 1), beta = random([planes], 44, dtype, d, 0.5, 0.6);
          const stats = F.batchNormStatistics(folded, gamma, beta, Tensor.zeros([planes], dtype, d), Tensor.zeros([planes], dtype, d).fill(1),
            true, 0.1, 1e-5, v.staticInput ? steps : 1);
          const fused = F.neuronPoolForward(x, p, kernel, stride, { gamma, beta, stats });
          const dx = F.neuronPoolBackward(fused.ctx, random([...fused.pooled.shape], 45, dtype, d));
          return [...out(fused.pooled, dx, stats.savedMean, stats.savedInvStd), Float64Array.of(native.sum(fused.spikeCounts.storage))];
        },
      })),
    ];
  });
}

function lossCases(dtype: DType, batch: number, classes: number): OpCase[] {
  const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7) % classes);
  return [
    { op: 'mse and cross-entropy on rates, correct count', shape: `[${batch},${classes}]`, dtype, tolerance: tolerance(dtype), run: (d) => {
      const rate = random([batch, classes], 42, dtype, d, 0.5, 0.5);
      const mse = lossFns.mseRate(rate, labels), ce = lossFns.ceRate(rate, labels);
      const acc = Tensor.zeros([3], 'float64', d), deviceLabels = F.labelsOn(labels, d);
      const grad = Tensor.empty(rate.shape, dtype, d);
      native.mseRateLoss(rate.storage, deviceLabels, grad.storage, [batch, classes], acc.storage, 0, 2);
      native.crossEntropyRateLoss(rate.storage, deviceLabels, grad.storage, [batch, classes], acc.storage, 1, 1);
      native.countCorrect(rate.storage, deviceLabels, [batch, classes], acc.storage, 2, 1);
      return [Float64Array.of(mse.loss, ce.loss, native.countCorrect(rate.storage, labels, [batch, classes])), ...out(mse.grad, ce.grad, grad, acc)];
    } },
  ];
}

function optimiserCases(dtype: DType, sizes: number[]): OpCase[] {
  const makers: Array<[string, (ps: optim.NamedParameters) => optim.Optimizer]> = [
    ['SGD momentum 0.9', (ps) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9 })],
    ['SGD nesterov, weight decay', (ps) => new optim.SGD(ps, { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 1e-2 })],
    ['Adam', (ps) => new optim.Adam(ps, { lr: 1e-2 })],
    ['AdamW', (ps) => new optim.AdamW(ps, { lr: 1e-2, weightDecay: 0.1 })],
  ];
  return makers.map(([name, make]): OpCase => ({
    op: `${name}: 3 steps over ${sizes.length} parameters (one launch each)`, shape: sizes.map((n) => `[${n}]`).join(' '), dtype,
    tolerance: tolerance(dtype), run: (d) => {
      const params = sizes.map((n, i): [string, Parameter] => [`p${i}`, Parameter.fromTensor(random([n], 50 + i, dtype, d))]);
      const opt = make(params);
      for (let step = 0; step < 3; step++) {
        params.forEach(([, p], i) => {
          p.grad = random([sizes[i]!], 60 + 10 * step + i, dtype, d);
        });
        opt.step();
      }
      const norm = optim.gradNorm(params);
      return [...out(...params.map(([, p]) => p)), ...opt.stateDict().tensors.map(([, t]) => t.toArray()), Float64Array.of(norm)];
    },
  }));
}

// A global gradient norm over more tensors than one launch's table holds (16), every third in the other dtype,
// with empty ones: returned and added into an accumulation.
function gradNormCase(dtype: DType, sizes: number[]): OpCase {
  const other: DType = dtype === 'float32' ? 'float64' : 'float32';
  return {
    op: `gradNorm over ${sizes.length} tensors (every third ${other}; returned and accumulated)`, shape: `[${sizes.join(',')}]`, dtype,
    tolerance: tolerance(dtype), run: (d) => {
      const grads = sizes.map((n, i) => random([n], 90 + i, i % 3 === 2 ? other : dtype, d));
      const storages = grads.map((g) => g.storage);
      const acc = Tensor.zeros([2], 'float64', d);
      acc.fill(0.5);
      native.gradNorm(storages, acc.storage, 1, -2);
      return [Float64Array.of(native.gradNorm(storages), native.gradNorm(storages.slice(0, 3))), acc.toArray()];
    },
  };
}

// The CSNN training step on the TF32 tensor cores is checked by what it computes for training: the loss, the rates and
// the model after the SGD steps (all parameters and buffers as one vector, relative to its largest entry). Its
// gradients are not compared entry by entry: in this small model the weight gradients of the first layers are sums
// that cancel (the BatchNorm backward gives a zero-mean gradient), which amplifies TF32's 2^-11 rounding of the
// GEMM inputs to errors of several per cent in single entries, as it would in any TF32 library; each op's TF32 path
// is held to 5e-3 entry by entry in the op cases above.
function csnnTrainingStepCase(dtype: DType, channels: number, batch: number, cores: 'tf32' | 'bf16' | null): OpCase {
  const shape = `CSNN-${channels}, T 3, batch ${batch}, smooth atan`;
  const tf32 = cores !== null; // on tensor cores: compared by the loss, the rates and the model after the steps
  const images = values(batch * 784, 70, 0.5, 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => (3 * i) % 10);
  const concat = (arrays: ArrayLike<number>[]): Float64Array => Float64Array.from(arrays.flatMap((a) => Array.from(a)));
  return {
    op: cores ? `CSNN training steps, the model after them (${cores === 'tf32' ? 'TF32' : 'bf16'} tensor cores)` : 'CSNN training step, then two SGD steps',
    shape, dtype, tolerance: cores === 'bf16' ? 3e-2 : tf32 ? 5e-3 : dtype === 'float32' ? 1e-4 : 1e-10, ...(cores ? { precision: cores } : {}),
    run: (d) => {
      const m = models.csnn({ channels, T: 3, dtype, surrogate: surrogate.atan({ alpha: 2, spiking: false }) });
      init.apply(m, 'ikun_v1', { seed: 3 });
      m.to(d);
      const opt = new optim.SGD(m.namedParameters(), { lr: 0.1, momentum: 0.9 });
      const x = tensor(images, [batch, 1, 28, 28], { dtype, device: d });
      const results: ArrayLike<number>[] = [];
      for (let step = 0; step < 2; step++) {
        m.train();
        opt.zeroGrad();
        const rate = m.forward(x);
        const { loss: value, grad } = lossFns.mseRate(rate, labels);
        m.backward(grad);
        results.push(Float64Array.of(value), rate.toArray());
        if (!tf32) results.push(...m.parameters().map((p) => p.grad!.toArray()));
        opt.step();
        m.resetState();
      }
      const model = [...m.parameters().map((p) => p.toArray()), ...m.namedBuffers().map(([, b]) => b.toArray())];
      return tf32 ? [...results, concat(model)] : [...results, ...model];
    },
  };
}

function modelCases(dtype: DType, channels: number, batch: number): OpCase[] {
  const shape = `CSNN-${channels}, T 3, batch ${batch}, smooth atan`;
  const images = values(batch * 784, 70, 0.5, 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => (3 * i) % 10);
  const build = (d: Device) => {
    const m = models.csnn({ channels, T: 3, dtype, surrogate: surrogate.atan({ alpha: 2, spiking: false }) });
    init.apply(m, 'ikun_v1', { seed: 3 });
    return m.to(d);
  };
  return [
    csnnTrainingStepCase(dtype, channels, batch, null),
    ...(dtype === 'float32' ? [csnnTrainingStepCase(dtype, channels, batch, 'tf32'), csnnTrainingStepCase(dtype, channels, batch, 'bf16')] : []),
    { op: 'hessian.hvp (eval mode)', shape, dtype, tolerance: dtype === 'float32' ? 1e-4 : 1e-10, run: (d) => {
      const m = build(d);
      m.eval();
      const x = tensor(images.subarray(0, 2 * 784), [2, 1, 28, 28], { dtype, device: d });
      const v = m.parameters().map((p, i) => random([...p.shape], 80 + i, dtype, d));
      return hvp(m, x, [labels[0]!, labels[1]!], v).map((t) => t.toArray());
    } },
  ];
}

// The tensor basics of users' scripts (argmax, sum, mean, arithmetic with broadcasting, eq, casts).
function tensorBasicsCases(dtype: DType, rows: number, cols: number): OpCase[] {
  const shape = `[${rows},${cols}] and [${cols}], [${rows},1]`;
  return [
    { op: 'tensor basics: add/sub/mul/div broadcast, eq, argmax, sum, mean, casts', shape, dtype, tolerance: tolerance(dtype), run: (d) => {
      const a = random([rows, cols], 100, dtype, d), row = random([cols], 101, dtype, d, 1, 2), column = random([rows, 1], 102, dtype, d);
      const ints = a.mul(10).to('int32');
      const sums = [a.sum(), a.sum(0), a.sum(1, { keepdim: true }), a.mean(), a.mean(0)];
      return out(a.add(row), a.sub(column), a.mul(row), a.div(row), a.add(2.5), a.mul(-3), a.eq(a.mul(1)), a.argmax(1), a.argmax(0), a.argmax(),
        ...sums, ints, ints.add(ints), ints.sub(7), ints.sum(1), ints.to(dtype === 'float32' ? 'float64' : 'float32'));
    } },
  ];
}

// Reductions in a fixed order: the same inputs give the same bits every run. The outputs are the
// differences between two runs of each op (all zero, on every device).
function determinismCase(dtype: DType, size: CaseSize): OpCase {
  const n = size === 'small' ? 20_011 : 3_000_017;
  return { op: 'same bits every run (sums, conv weight gradient, batchnorm, loss)', shape: `[${n}]`, dtype, tolerance: 0, run: (d) => {
    const x = random([n], 90, dtype, d, 1e3);
    const conv = { x: random([4, 8, 10, 10], 91, dtype, d), w: random([8, 8, 3, 3], 92, dtype, d), dy: random([4, 8, 10, 10], 93, dtype, d) };
    const once = (): number[] => {
      const dw = Tensor.zeros([8, 8, 3, 3], dtype, d);
      F.conv2dBackward(conv.x, conv.w, conv.dy, { stride: 1, padding: 1 }, dw, null, false);
      const gamma = Tensor.zeros([8], dtype, d).fill(1), beta = Tensor.zeros([8], dtype, d);
      const { y, ctx } = F.batchNormForward(conv.x, gamma, beta, Tensor.zeros([8], dtype, d), Tensor.zeros([8], dtype, d), true, 0.1, 1e-5);
      const dg = Tensor.zeros([8], dtype, d), db = Tensor.zeros([8], dtype, d);
      const dx = F.batchNormBackward(ctx, gamma, conv.dy, dg, db, true)!;
      const rate = random([33, 10], 94, dtype, d, 0.5, 0.5);
      return [native.sum(x.storage), native.sumOfSquares(x.storage), lossFns.mseRate(rate, Array.from({ length: 33 }, (_, i) => i % 10)).loss,
        ...dw.toArray(), ...y.toArray(), ...dx.toArray(), ...dg.toArray()];
    };
    const first = once(), second = once();
    return [Float64Array.from(first, (v, i) => v - second[i]!)];
  } };
}

/** Every check, at the given size; float64 where it costs little. */
export function opCases(size: CaseSize): OpCase[] {
  const small = size === 'small';
  const convSpecs: ConvSpec[] = small
    ? [
        { n: 2, cin: 3, h: 9, w: 9, cout: 5, kh: 3, kw: 3, stride: 1, padding: 1, bias: false },
        { n: 2, cin: 2, h: 8, w: 7, cout: 3, kh: 5, kw: 3, stride: 2, padding: 2, bias: true },
        { n: 1, cin: 4, h: 5, w: 5, cout: 3, kh: 1, kw: 1, stride: 1, padding: 0, bias: true },
      ]
    : [
        { n: 32, cin: 64, h: 14, w: 14, cout: 64, kh: 3, kw: 3, stride: 1, padding: 1, bias: false },
        { n: 16, cin: 1, h: 28, w: 28, cout: 32, kh: 3, kw: 3, stride: 1, padding: 1, bias: false },
        { n: 8, cin: 16, h: 17, w: 15, cout: 24, kh: 5, kw: 3, stride: 2, padding: 2, bias: true },
      ];
  const cases: OpCase[] = [];
  for (const dtype of ['float32', 'float64'] as const) {
    const all = dtype === 'float32';
    cases.push(...elementwiseCases(dtype, small ? 3001 : 1 << 20));
    cases.push(...gemmCases(dtype, small ? 37 : 300, small ? 29 : 257, small ? 45 : 500));
    cases.push(...convCases(dtype, all ? convSpecs : convSpecs.slice(0, 1)));
    cases.push(...linearCases(dtype, small ? 6 : 256, small ? 40 : 1568, small ? 7 : 512));
    cases.push(...batchNormCases(dtype, small ? 3 : 32, small ? 4 : 32, small ? 5 : 14));
    if (all) cases.push(...poolCases(dtype, small ? 2 : 16, small ? 3 : 32, small ? 7 : 28));
    cases.push(...neuronCases(dtype, 3, small ? 3 : 64, small ? 6 : 28, all));
    cases.push(...lossCases(dtype, small ? 9 : 128, 10));
    cases.push(...tensorBasicsCases(dtype, small ? 13 : 1000, small ? 300 : 5000));
    cases.push(...optimiserCases(dtype, small ? [70000, 5, 33] : [1 << 20, 1000, 7]));
    cases.push(gradNormCase(dtype, Array.from({ length: 19 }, (_, i) => [small ? 9000 : 1 << 18, 0, 7, 33][i % 4]!)));
    cases.push(...modelCases(dtype, small ? 2 : 16, small ? 2 : 16));
    cases.push(determinismCase(dtype, size));
  }
  // The tensor-core paths of every float32 op that has them: TF32 inputs, fp32 sums (relative error <= 5e-3), and
  // bf16 inputs, fp32 sums (<= 3e-2: bf16 keeps 8 significant bits, 2^-8 = 3.9e-3 per rounded input, 8 times TF32's).
  const tensorCore = /^(gemm|conv2d|linear)/;
  for (const c of cases.filter((c) => c.dtype === 'float32' && tensorCore.test(c.op))) {
    cases.push({ ...c, op: `${c.op} (TF32 tensor cores)`, precision: 'tf32', tolerance: 5e-3 });
    cases.push({ ...c, op: `${c.op} (bf16 tensor cores)`, precision: 'bf16', tolerance: 3e-2 });
  }
  return cases;
}
