import { describe, expect, it } from 'vitest';
import { nn, tensor, zeros, type Tensor } from '../../lib/index.js';
import { gradCheck, randomArray, randomTensor } from '../helpers/gradcheck.js';
import * as F from '../../lib/functional.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

/** Direct-loop convolution, the definition the im2col + GEMM kernel must reproduce. */
function naiveConv2d(x: Float64Array, [n, cin, h, w]: number[], weight: Float64Array, [cout, , kh, kw]: number[],
  bias: Float64Array | null, stride: number, pad: number): Float64Array {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const y = new Float64Array(n * cout * oh * ow);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let sum = bias ? bias[co]! : 0;
          for (let ci = 0; ci < cin; ci++)
            for (let a = 0; a < kh; a++)
              for (let c = 0; c < kw; c++) {
                const ih = i * stride - pad + a, iw = j * stride - pad + c;
                if (ih >= 0 && ih < h && iw >= 0 && iw < w)
                  sum += x[((b * cin + ci) * h + ih) * w + iw]! * weight[((co * cin + ci) * kh + a) * kw + c]!;
              }
          y[((b * cout + co) * oh + i) * ow + j] = sum;
        }
  return y;
}

describe('Conv2d', () => {
  const cases: Array<[string, number, number, number | [number, number], number, number, boolean, number[]]> = [
    ['3x3 pad 1 with bias', 3, 4, 3, 1, 1, true, [2, 3, 6, 5]],
    ['3x3 stride 2 no pad', 2, 3, 3, 2, 0, false, [2, 2, 7, 7]],
    ['2x3 kernel pad 2', 2, 2, [2, 3], 1, 2, true, [1, 2, 4, 5]],
    ['many channels (flipped-kernel input gradient)', 20, 17, 3, 1, 1, false, [2, 20, 5, 4]],
    // output rows as wide as the input rows: im2col copies one shifted block per patch row
    ['5x5 pad 2 (same width)', 2, 3, 5, 1, 2, false, [2, 2, 6, 5]],
    ['5x5 pad 2 on a 2-row image (patch rows entirely in the padding)', 2, 2, 5, 1, 2, true, [1, 2, 2, 5]],
    ['3x5 kernel pad 2 (same width, taller output)', 3, 2, [3, 5], 1, 2, false, [2, 3, 4, 6]],
    ['1x1 no pad', 4, 3, 1, 1, 0, true, [2, 4, 3, 5]],
    // one sample's patch columns (576 x 2025) exceed the per-thread cache block: the chunked paths
    ['columns of one sample larger than the cache block', 64, 2, 3, 1, 1, true, [2, 64, 45, 45]],
  ];

  it.each(cases)('%s: forward equals the direct definition', (_, cin, cout, k, stride, padding, bias, shape) => {
    const conv = new nn.Conv2d(cin, cout, k, { stride, padding, bias, dtype: 'float64' });
    const x = randomTensor(shape, 1);
    const expected = naiveConv2d(x.toArray() as Float64Array, shape, conv.weight.toArray() as Float64Array,
      [...conv.weight.shape], bias ? (conv.bias!.toArray() as Float64Array) : null, stride, padding);
    const y = conv.forward(x);
    values(y).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 12));
  });

  it.each(cases)('%s: gradients match finite differences', (_, cin, cout, k, stride, padding, bias, shape) => {
    const conv = new nn.Conv2d(cin, cout, k, { stride, padding, bias, dtype: 'float64' });
    const r = gradCheck(conv, randomTensor(shape, 2), { maxCoords: 30 });
    for (const norm of Object.values(r.norms)) expect(norm).toBeGreaterThan(1e-6);
    expect(r.worst).toBeLessThan(1e-6);
  });

  it('large batch: weight and bias gradients summed over partial sums and cache blocks equal the direct definition', () => {
    // 20 samples of 576x1024 patch columns: 16 partial sums of 1-2 samples, one sample per GEMM
    const [n, cin, cout, h, w] = [20, 64, 3, 32, 32];
    const conv = new nn.Conv2d(cin, cout, 3, { padding: 1, dtype: 'float64' });
    const x = randomTensor([n, cin, h, w], 7), dy = randomTensor([n, cout, h, w], 8);
    conv.zeroGrad();
    conv.forward(x);
    conv.backward(dy);
    const xs = x.toArray(), dys = dy.toArray();
    const dw = new Float64Array(cout * cin * 9), db = new Float64Array(cout);
    for (let b = 0; b < n; b++)
      for (let co = 0; co < cout; co++) {
        const dyPlane = (b * cout + co) * h * w;
        for (let p = 0; p < h * w; p++) db[co]! += dys[dyPlane + p]!;
        for (let ci = 0; ci < cin; ci++) {
          const xPlane = (b * cin + ci) * h * w;
          for (let ki = 0; ki < 3; ki++)
            for (let kj = 0; kj < 3; kj++) {
              let sum = 0;
              for (let i = 0; i < h; i++) {
                const ih = i - 1 + ki;
                if (ih < 0 || ih >= h) continue;
                for (let j = 0; j < w; j++) {
                  const iw = j - 1 + kj;
                  if (iw >= 0 && iw < w) sum += dys[dyPlane + i * w + j]! * xs[xPlane + ih * w + iw]!;
                }
              }
              dw[((co * cin + ci) * 3 + ki) * 3 + kj]! += sum;
            }
        }
      }
    values(conv.weight.grad!).forEach((v, i) => expect(v).toBeCloseTo(dw[i]!, 9));
    values(conv.bias!.grad!).forEach((v, i) => expect(v).toBeCloseTo(db[i]!, 9));
  });

  it('folds multi-step input [T, N, C, H, W] and accumulates weight gradients over calls', () => {
    const conv = new nn.Conv2d(2, 3, 3, { padding: 1, dtype: 'float64' });
    const x = randomTensor([2, 3, 2, 4, 4], 3);
    const y = conv.forward(x);
    expect(y.shape).toEqual([2, 3, 3, 4, 4]);
    const folded = new nn.Conv2d(2, 3, 3, { padding: 1, dtype: 'float64' });
    folded.weight.copyFrom(conv.weight);
    folded.bias!.copyFrom(conv.bias!);
    expect(values(folded.forward(x.reshape([6, 2, 4, 4])))).toEqual(values(y));
    conv.zeroGrad();
    const dy = randomTensor([2, 3, 3, 4, 4], 4);
    conv.backward(dy);
    const once = values(conv.weight.grad!);
    conv.forward(x);
    conv.backward(dy);
    values(conv.weight.grad!).forEach((v, i) => expect(v).toBeCloseTo(2 * once[i]!, 12));
  });

  it('float32 agrees with float64', () => {
    const c64 = new nn.Conv2d(8, 6, 3, { padding: 1, dtype: 'float64' });
    const c32 = new nn.Conv2d(8, 6, 3, { padding: 1, dtype: 'float32' });
    c32.weight.copyFrom(c64.weight);
    c32.bias!.copyFrom(c64.bias!);
    const x = randomTensor([3, 8, 9, 9], 5);
    const y64 = values(c64.forward(x)), y32 = values(c32.forward(x.to('float32')));
    const scale = Math.max(...y64.map(Math.abs));
    y32.forEach((v, i) => expect(Math.abs(v - y64[i]!)).toBeLessThan(1e-5 * scale));
  });

  it('rejects wrong rank, channels, dtype and geometry', () => {
    const conv = new nn.Conv2d(3, 4, 3);
    expect(() => conv.forward(zeros([3, 8, 8]))).toThrow(/input must have rank 4 \(\[N, \.\.\.\]\) or 5/);
    expect(() => conv.forward(zeros([1, 2, 8, 8]))).toThrow(/input has 2 channels .*expected inChannels = 3/);
    expect(() => conv.forward(zeros([1, 3, 8, 8], { dtype: 'float64' }))).toThrow(/input dtype is float64 but the module is float32/);
    expect(() => conv.forward(zeros([1, 3, 2, 2]))).toThrow(/smaller than the kernel 3x3/);
    const x = zeros([1, 3, 8, 8]);
    x.dispose();
    expect(() => conv.forward(x)).toThrow(/disposed/);
    expect(() => new nn.Conv2d(0, 4, 3)).toThrow(/inChannels must be an integer >= 1, got 0/);
    expect(() => new nn.Conv2d(3, 4, 3, { stride: 0 })).toThrow(/stride must be an integer >= 1/);
    expect(() => new nn.Conv2d(3, 4, 3, { padding: 1.5 })).toThrow(/padding must be an integer >= 0/);
  });
});

describe('Linear', () => {
  it('computes x W^T + b and matches finite differences, with leading dimensions', () => {
    const lin = new nn.Linear(5, 4, { dtype: 'float64' });
    const x = randomTensor([2, 3, 5], 8);
    const y = lin.forward(x);
    expect(y.shape).toEqual([2, 3, 4]);
    const w = lin.weight.toArray(), b = lin.bias!.toArray(), xv = x.toArray();
    let expected = b[1]!;
    for (let k = 0; k < 5; k++) expected += xv[5 + k]! * w[5 + k]!;
    expect(values(y)[5]).toBeCloseTo(expected, 13); // sample 1, output 1
    const r = gradCheck(lin, x, { maxCoords: 40 });
    expect(r.worst).toBeLessThan(1e-6);
  });

  it('without bias has only a weight', () => {
    const lin = new nn.Linear(3, 2, { bias: false });
    expect(lin.namedParameters().map(([n]) => n)).toEqual(['weight']);
    expect(() => lin.forward(zeros([2, 4]))).toThrow(/input must be \[\.\.\., 3\] \(inFeatures\), got shape \[2, 4\]/);
  });
});

describe('BatchNorm2d', () => {
  it('normalises with batch statistics and updates running statistics (momentum 0.1, unbiased variance)', () => {
    const bn = new nn.BatchNorm2d(2, { dtype: 'float64' });
    // channel 0 values: 1, 2, 3, 4 (two samples x 2 pixels); channel 1: 0, 0, 2, 2
    const x = tensor(new Float64Array([1, 2, 0, 0, 3, 4, 2, 2]), [2, 2, 1, 2], { dtype: 'float64' });
    const y = values(bn.forward(x));
    const invStd0 = 1 / Math.sqrt(1.25 + 1e-5), invStd1 = 1 / Math.sqrt(1 + 1e-5);
    const expected = [(1 - 2.5) * invStd0, (2 - 2.5) * invStd0, -invStd1, -invStd1, 0.5 * invStd0, 1.5 * invStd0, invStd1, invStd1];
    y.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 12));
    // running_mean = 0.9 * 0 + 0.1 * mean; running_var = 0.9 * 1 + 0.1 * unbiased var (5/3 and 4/3)
    values(bn.runningMean).forEach((v, i) => expect(v).toBeCloseTo([0.25, 0.1][i]!, 12));
    values(bn.runningVar).forEach((v, i) => expect(v).toBeCloseTo([0.9 + 0.1 * 5 / 3, 0.9 + 0.1 * 4 / 3][i]!, 12));
    expect(bn.numBatchesTracked.item()).toBe(1);
    bn.eval();
    const yEval = values(bn.forward(x));
    const rm = values(bn.runningMean), rv = values(bn.runningVar);
    expect(yEval[0]).toBeCloseTo((1 - rm[0]!) / Math.sqrt(rv[0]! + 1e-5), 12);
    expect(bn.numBatchesTracked.item()).toBe(1);
  });

  it('momentum null keeps a cumulative average', () => {
    const bn = new nn.BatchNorm2d(1, { momentum: null, dtype: 'float64' });
    bn.forward(tensor(new Float64Array([1, 3]), [2, 1, 1, 1], { dtype: 'float64' }));
    bn.forward(tensor(new Float64Array([5, 7]), [2, 1, 1, 1], { dtype: 'float64' }));
    expect(values(bn.runningMean)[0]).toBeCloseTo(4, 12); // (2 + 6) / 2
    bn.forward(tensor(new Float64Array([9, 11]), [2, 1, 1, 1], { dtype: 'float64' }));
    expect(values(bn.runningMean)[0]).toBeCloseTo(6, 12); // (2 + 6 + 10) / 3
    expect(bn.numBatchesTracked.item()).toBe(3);
  });

  it('counts each training batch once, in the statistics of its forward; a refused forward counts nothing', () => {
    const bn = new nn.BatchNorm2d(2, { dtype: 'float64' });
    for (let i = 0; i < 5; ++i) bn.forward(randomTensor([2, 2, 3, 3], 30 + i));
    expect(bn.numBatchesTracked.item()).toBe(5);
    expect(() => bn.forward(randomTensor([1, 2, 1, 1], 1))).toThrow(/more than one value per channel/);
    expect(bn.numBatchesTracked.item()).toBe(5);
    bn.eval();
    bn.forward(randomTensor([2, 2, 3, 3], 40));
    expect(bn.numBatchesTracked.item()).toBe(5);
  });

  it('the native forward refuses a batch counter that is not a float64 scalar, or one given in evaluation', () => {
    const c = 2, x = randomTensor([2, c, 2, 2], 50), per = (): Tensor => zeros([c], { dtype: 'float64' });
    const run = (counter: Tensor, training: boolean): void =>
      void F.batchNormForward(x, per(), per(), per(), per(), training, 0.1, 1e-5, 1, counter);
    expect(() => run(zeros([], { dtype: 'float32' }), true)).toThrow(/num_batches_tracked must be a float64 scalar/);
    expect(() => run(zeros([2], { dtype: 'float64' }), true)).toThrow(/num_batches_tracked must be a float64 scalar/);
    expect(() => run(zeros([], { dtype: 'float64' }), false)).toThrow(/counts training batches only/);
    const counter = zeros([], { dtype: 'float64' });
    run(counter, true);
    run(counter, true);
    expect(counter.item()).toBe(2);
  });

  it.each([true, false])('gradients match finite differences (training = %s)', (training) => {
    const bn = new nn.BatchNorm2d(3, { dtype: 'float64' });
    bn.weight.copyFrom(randomArray(3, 11, 0.5, 1));
    bn.bias.copyFrom(randomArray(3, 12));
    bn.runningMean.copyFrom(randomArray(3, 13, 0.2));
    bn.runningVar.copyFrom(randomArray(3, 14, 0.3, 1));
    bn.train(training);
    const r = gradCheck(bn, randomTensor([4, 3, 2, 3], 15, 2, 0.5), { maxCoords: 40 });
    expect(r.worst).toBeLessThan(1e-6);
  });

  it('statistics over T*N for multi-step input, and validation', () => {
    const bn = new nn.BatchNorm2d(2, { dtype: 'float64' });
    const y = bn.forward(randomTensor([3, 2, 2, 2, 2], 16));
    expect(y.shape).toEqual([3, 2, 2, 2, 2]);
    expect(() => bn.forward(randomTensor([1, 3, 2, 2], 1))).toThrow(/input has 3 channels .*expected numFeatures = 2/);
    expect(() => bn.forward(randomTensor([1, 2, 1, 1], 1))).toThrow(/more than one value per channel/);
    expect(() => new nn.BatchNorm2d(2, { momentum: 2 })).toThrow(/momentum must be in \[0, 1\] or null, got 2/);
    expect(() => new nn.BatchNorm2d(2, { eps: Number.NaN })).toThrow(/eps must be a finite number/);
    expect(bn.namedBuffers().map(([n]) => n)).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
  });
});

describe('MaxPool2d', () => {
  it('sends the gradient to the first maximum in row-major window order on ties', () => {
    const pool = new nn.MaxPool2d(2);
    // window 1: all ones (tie -> first); window 2: max at bottom-left (0, 1 tie at 1 -> first of the 1s)
    const x = tensor([1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 4, 4], { dtype: 'float64' });
    const y = pool.forward(x);
    expect(values(y)).toEqual([1, 1, 0, 0]);
    const dx = values(pool.backward(tensor([1, 2, 3, 4], [1, 1, 2, 2], { dtype: 'float64' })));
    expect(dx).toEqual([1, 0, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
  });

  it('gradients match finite differences on distinct values, stride option, multi-step input', () => {
    const pool = new nn.MaxPool2d(2, { stride: 1 });
    expect(pool.forward(randomTensor([1, 1, 3, 3], 1)).shape).toEqual([1, 1, 2, 2]);
    const pool2 = new nn.MaxPool2d(2);
    expect(gradCheck(pool2, randomTensor([2, 3, 2, 4, 6], 17), { maxCoords: 60 }).worst).toBeLessThan(1e-6);
    expect(() => pool2.forward(randomTensor([1, 1, 1, 4], 1))).toThrow(/smaller than the kernel 2/);
  });
});

describe('Flatten and Sequential', () => {
  it('flattens from startDim as a view and passes gradients back in shape', () => {
    const f = new nn.Flatten();
    const x = randomTensor([2, 3, 4], 1);
    const y = f.forward(x);
    expect(y.shape).toEqual([2, 12]);
    expect(f.backward(y).shape).toEqual([2, 3, 4]);
    expect(new nn.Flatten({ startDim: 2 }).forward(randomTensor([2, 3, 4, 5], 1)).shape).toEqual([2, 3, 20]);
  });

  it('chains children, names parameters like PyTorch and checks gradients end to end', () => {
    const model = new nn.Sequential(
      // no conv bias before BatchNorm: its true gradient is zero, which a relative check cannot test
      new nn.Conv2d(1, 2, 3, { padding: 1, bias: false, dtype: 'float64' }),
      new nn.BatchNorm2d(2, { dtype: 'float64' }),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Linear(8, 3, { dtype: 'float64' }),
    );
    expect(model.namedParameters().map(([n]) => n)).toEqual(['0.weight', '1.weight', '1.bias', '4.weight', '4.bias']);
    expect(gradCheck(model, randomTensor([3, 1, 4, 4], 21), { maxCoords: 20 }).worst).toBeLessThan(1e-6);
    expect(() => new nn.Sequential({} as never)).toThrow(/argument 0 must be a Module/);
  });
});
