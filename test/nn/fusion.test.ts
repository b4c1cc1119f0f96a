// nn.Sequential runs the fused kernels where its layers form their patterns (static prefix before the
// first neuron, neuron + max-pool) and the layers one by one elsewhere; both give the same numbers.
import { describe, expect, it, vi } from 'vitest';
import { functional as F, hessian, loss, models, native, nn, surrogate, tensor, type Tensor } from '../../lib/index.js';
import { randomTensor } from '../helpers/gradcheck.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

/** max |a - b| / max(1e-300, max |b|): the error relative to the reference's scale */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

function copyWeights(from: nn.Module, to: nn.Module): void {
  const target = to.namedParameters();
  from.namedParameters().forEach(([, p], i) => target[i]![1].copyFrom(p));
}

/** The 13 layers of models.csnn's conv_fc, built by hand. */
function csnnLayers(c: number, s: surrogate.Surrogate, neuron: 'if' | 'lif' = 'if'): nn.Module[] {
  const f = { dtype: 'float64' as const };
  const node = (): nn.Module => (neuron === 'if' ? new nn.IFNode({ surrogate: s }) : new nn.LIFNode({ surrogate: s }));
  return [
    new nn.Conv2d(1, c, 3, { padding: 1, bias: false, ...f }), new nn.BatchNorm2d(c, f), node(), new nn.MaxPool2d(2),
    new nn.Conv2d(c, c, 3, { padding: 1, bias: false, ...f }), new nn.BatchNorm2d(c, f), node(), new nn.MaxPool2d(2),
    new nn.Flatten({ startDim: 2 }), new nn.Linear(c * 49, c * 16, { bias: false, ...f }), node(),
    new nn.Linear(c * 16, 10, { bias: false, ...f }), node(),
  ];
}

interface Pass {
  out: number[];
  loss: number;
  dx: number[];
  grads: number[][];
  buffers: number[][];
  /** firing rates in spikingLayers() order (a Record's integer-like keys would come first) */
  rates: number[];
  layers: string[];
}

function trainPass(model: nn.Module, x: Tensor, labels: number[]): Pass {
  model.train();
  model.zeroGrad();
  const out = model.forward(x);
  const all = model.lastFiringRates();
  const layers = model.spikingLayers().map(([n]) => n);
  const rates = layers.map((n) => all[n]!);
  const { loss: value, grad } = loss.mseRate(out, labels);
  const dx = model.backward(grad);
  const pass = { out: values(out), loss: value, dx: values(dx), grads: model.parameters().map((p) => values(p.grad!)),
    buffers: model.namedBuffers().map(([, b]) => values(b)), rates, layers };
  model.resetState();
  return pass;
}

/** Equal passes; rates are compared in layer order (the two models may name their layers differently). */
function expectSamePass(a: Pass, b: Pass, tol: number): void {
  expect(relativeError(a.out, b.out)).toBeLessThanOrEqual(tol);
  expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(tol * Math.max(1e-300, Math.abs(b.loss)));
  expect(relativeError(a.dx, b.dx)).toBeLessThanOrEqual(tol);
  a.grads.forEach((g, i) => expect(relativeError(g, b.grads[i]!), `gradient ${i}`).toBeLessThanOrEqual(tol));
  a.buffers.forEach((t, i) => expect(relativeError(t, b.buffers[i]!), `buffer ${i}`).toBeLessThanOrEqual(tol));
  expect(a.rates.length).toBe(b.rates.length);
  a.rates.forEach((r, i) => expect(Math.abs(r - b.rates[i]!), `firing rate ${i}`).toBeLessThanOrEqual(tol));
}

/** H v along fixed vectors, in eval mode (the forward-mode and reverse tangents of every layer). */
function hvpOf(model: nn.Module, x: Tensor, labels: number[]): number[][] {
  model.eval();
  const vs = model.parameters().map((p, i) => tensor(Float64Array.from({ length: p.size }, (_, j) => Math.sin(0.7 * j + i)), [...p.shape]));
  return hessian.hvp(model, x, labels, vs).map(values);
}

describe('Sequential fuses the CSNN patterns', () => {
  it.each([true, false])('a hand-built Sequential equals models.csnn (spiking %s): rates, loss, gradients, H v; state names as PyTorch gives them', (spiking) => {
    const s = surrogate.atan({ alpha: 2, spiking });
    const reference = models.csnn({ channels: 3, T: 4, dtype: 'float64', surrogate: s });
    const mine = new nn.Sequential(new nn.RepeatOverTime(4), ...csnnLayers(3, s), new nn.MeanOverTime());
    copyWeights(reference, mine);
    const x = randomTensor([3, 1, 28, 28], 4, 0.5, 0.5);
    const labels = [1, 4, 9];
    const a = trainPass(mine, x, labels), b = trainPass(reference, x, labels);
    expectSamePass(a, b, 1e-12);
    expect(a.layers).toEqual(['3', '7', '11', '13']);
    expect(b.layers).toEqual(['conv_fc.2', 'conv_fc.6', 'conv_fc.10', 'conv_fc.12']);
    hvpOf(mine, x, labels).forEach((h, i) => expect(relativeError(h, hvpOf(reference, x, labels)[i]!)).toBeLessThanOrEqual(1e-12));
    expect(mine.namedParameters().map(([n]) => n)).toEqual(['1.weight', '2.weight', '2.bias', '5.weight', '6.weight', '6.bias', '10.weight', '12.weight']);
    expect(mine.namedBuffers().map(([n]) => n).slice(0, 3)).toEqual(['2.running_mean', '2.running_var', '2.num_batches_tracked']);
  });

  it('plans the CSNN as the static first block, BatchNorm + neuron + max-pool kernels, and the layers between', () => {
    expect(models.csnn({ channels: 2, T: 2 }).planLabels()).toEqual([
      'conv_fc.0 (Conv2d)',
      'conv_fc.1 (BatchNorm2d) + conv_fc.2 (IFNode) + conv_fc.3 (MaxPool2d)',
      'conv_fc.4 (Conv2d)',
      'conv_fc.5 (BatchNorm2d) + conv_fc.6 (IFNode) + conv_fc.7 (MaxPool2d)',
      'conv_fc.8 (Flatten)', 'conv_fc.9 (Linear)', 'conv_fc.10 (IFNode)', 'conv_fc.11 (Linear)', 'conv_fc.12 (IFNode)', 'mean (MeanOverTime)',
    ]);
    const net = models.csnn({ channels: 2, T: 2 });
    net.fusion = false;
    expect(net.planLabels()).toHaveLength(15);
  });

  it.each([
    ['IF, spiking', 'if', true], ['IF, smooth', 'if', false], ['LIF, spiking', 'lif', true], ['LIF, smooth', 'lif', false],
  ] as const)('fused and unfused paths agree to float64 rounding (%s): forward, backward, tangents', (_, neuron, spiking) => {
    const s = surrogate.sigmoid({ alpha: 4, spiking });
    const fused = new nn.Sequential(new nn.RepeatOverTime(3), ...csnnLayers(2, s, neuron), new nn.MeanOverTime());
    const plain = new nn.Sequential(new nn.RepeatOverTime(3), ...csnnLayers(2, s, neuron), new nn.MeanOverTime());
    copyWeights(fused, plain);
    plain.fusion = false;
    const x = randomTensor([4, 1, 28, 28], 8, 0.6, 0.5);
    const labels = [0, 3, 3, 7];
    expectSamePass(trainPass(fused, x, labels), trainPass(plain, x, labels), 1e-12);
    hvpOf(fused, x, labels).forEach((h, i) => expect(relativeError(h, hvpOf(plain, x, labels)[i]!)).toBeLessThanOrEqual(1e-12));
    // forwardDual outputs and their tangents with an input tangent too
    for (const m of [fused, plain]) m.eval();
    const xDot = randomTensor([4, 1, 28, 28], 9);
    const [yf, yfDot] = fused.forwardDual(x, xDot), [yp, ypDot] = plain.forwardDual(x, xDot);
    expect(relativeError(values(yf), values(yp))).toBeLessThanOrEqual(1e-12);
    expect(relativeError(values(yfDot), values(ypDot))).toBeLessThanOrEqual(1e-12);
  });

  it('takes the fused path: the first conv sees the N static images, neurons before a pool write no spike tensor', () => {
    const layers = csnnLayers(2, surrogate.atan());
    const net = new nn.Sequential(new nn.RepeatOverTime(4), ...layers, new nn.MeanOverTime());
    const convInputs: number[][] = [];
    const conv = layers[0] as nn.Conv2d, forward = conv.forward.bind(conv);
    vi.spyOn(conv, 'forward').mockImplementation((x) => (convInputs.push([...x.shape]), forward(x)));
    net.forward(randomTensor([3, 1, 28, 28], 2, 0.5, 0.5));
    expect(convInputs).toEqual([[3, 1, 28, 28]]);
    expect((layers[2] as nn.IFNode).lastSpikes).toBeNull();
    expect((layers[6] as nn.IFNode).lastSpikes).toBeNull();
    expect((layers[10] as nn.IFNode).lastSpikes?.shape).toEqual([4, 3, 32]);
    net.fusion = false;
    net.forward(randomTensor([3, 1, 28, 28], 2, 0.5, 0.5));
    expect(convInputs[1]).toEqual([4, 3, 1, 28, 28]);
    expect((layers[2] as nn.IFNode).lastSpikes?.shape).toEqual([4, 3, 2, 28, 28]);
  });

  it('fuses neuron + pool for multi-step input without a RepeatOverTime, and falls back where the layout does not fit', () => {
    const build = (): nn.Sequential => new nn.Sequential(new nn.LIFNode({ surrogate: surrogate.atan({ spiking: false }) }), new nn.MaxPool2d(2),
      new nn.Flatten({ startDim: 2 }), new nn.Linear(2 * 2 * 3, 5, { dtype: 'float64' }), new nn.IFNode());
    const fused = build(), plain = build();
    copyWeights(fused, plain);
    plain.fusion = false;
    const x = randomTensor([3, 2, 2, 4, 6], 12, 1.5, 0.5); // [T, N, C, H, W]
    const labels = [1, 4];
    const mean = (m: nn.Module): nn.Module => new nn.Sequential(m, new nn.MeanOverTime());
    expectSamePass(trainPass(mean(fused), x, labels), trainPass(mean(plain), x, labels), 1e-12);
    // rank 4 input [T, N, H, W]: the pair runs as two layers (same numbers as unfused)
    const pair = new nn.Sequential(new nn.IFNode(), new nn.MaxPool2d(2));
    const y = pair.forward(randomTensor([2, 3, 4, 4], 1, 2));
    expect(y.shape).toEqual([2, 3, 2, 2]);
    expect(Object.keys(pair.lastFiringRates())).toEqual(['0']);
    expect(pair.backward(tensor(new Float64Array(24).fill(1), [2, 3, 2, 2])).shape).toEqual([2, 3, 4, 4]);
  });

  it.each([
    ['3x3 windows with stride 2 (overlapping)', 3, 2, 7],
    ['2x2 windows with stride 1 (overlapping)', 2, 1, 5],
    ['2x2 windows with stride 2 (tiling)', 2, 2, 6],
  ] as const)('neuron + max-pool finds the maximum of each window again in backward (spikes tie, the first wins): %s', (_, k, stride, size) => {
    // spiking neurons: most windows hold equal spikes, so backward must pick the same (first) winner as forward
    const build = (): nn.Sequential => new nn.Sequential(new nn.IFNode({ surrogate: surrogate.atan() }), new nn.MaxPool2d(k, { stride }),
      new nn.Flatten({ startDim: 2 }), new nn.MeanOverTime());
    const fused = build(), plain = build();
    plain.fusion = false;
    const x = randomTensor([4, 2, 3, size, size], 21, 2, 0.6);
    const yFused = fused.forward(x), yPlain = plain.forward(x);
    expect(values(yFused)).toEqual(values(yPlain));
    const g = randomTensor([...yFused.shape], 22, 1);
    const dFused = values(fused.backward(g)), dPlain = values(plain.backward(g));
    expect(relativeError(dFused, dPlain)).toBeLessThanOrEqual(1e-12);
    expect(dFused.some((v) => v !== 0)).toBe(true);
  });

  it.each([
    ['an MLP (Linear in the static prefix)', () => [new nn.RepeatOverTime(3), new nn.Linear(12, 8, { dtype: 'float64' }),
      new nn.IFNode({ surrogate: surrogate.atan({ spiking: false }) }), new nn.Linear(8, 3, { dtype: 'float64' }), new nn.IFNode(), new nn.MeanOverTime()], [2, 12]],
    ['a max-pool on the images first', () => [new nn.RepeatOverTime(2), new nn.MaxPool2d(2), new nn.Conv2d(2, 3, 3, { padding: 1, bias: false, dtype: 'float64' }),
      new nn.BatchNorm2d(3, { dtype: 'float64' }), new nn.LIFNode({ surrogate: surrogate.erf({ spiking: false }) }), new nn.MaxPool2d(2),
      new nn.Flatten({ startDim: 2 }), new nn.Linear(12, 4, { dtype: 'float64' }), new nn.IFNode(), new nn.MeanOverTime()], [3, 2, 8, 8]],
  ] as const)('other static prefixes agree with the layers one by one: %s', (_, layers, shape) => {
    const fused = new nn.Sequential(...layers()), plain = new nn.Sequential(...layers());
    copyWeights(fused, plain);
    plain.fusion = false;
    const x = randomTensor([...shape], 5, 1, 0.7);
    const labels = Array.from({ length: shape[0] }, (_, i) => i % 3);
    expectSamePass(trainPass(fused, x, labels), trainPass(plain, x, labels), 1e-12);
    hvpOf(fused, x, labels).forEach((h, i) => expect(relativeError(h, hvpOf(plain, x, labels)[i]!)).toBeLessThanOrEqual(1e-12));
  });

  it('nested Sequentials are opened up; a prefix layer that is not per-sample leaves the layers unfused', () => {
    const s = surrogate.atan({ spiking: false });
    // no conv bias before BatchNorm: its gradient is zero up to rounding, which a relative comparison cannot test
    const block = (): nn.Module[] => [new nn.Conv2d(1, 2, 3, { padding: 1, bias: false, dtype: 'float64' }), new nn.BatchNorm2d(2, { dtype: 'float64' })];
    const tail = (): nn.Module[] => [new nn.Flatten({ startDim: 2 }), new nn.Linear(8, 3, { dtype: 'float64' }), new nn.IFNode({ surrogate: s }), new nn.MeanOverTime()];
    const nested = new nn.Sequential(new nn.RepeatOverTime(2), new nn.Sequential(...block(), new nn.IFNode({ surrogate: s }), new nn.MaxPool2d(2)), ...tail());
    const flat = new nn.Sequential(new nn.RepeatOverTime(2), ...block(), new nn.IFNode({ surrogate: s }), new nn.MaxPool2d(2), ...tail());
    // Flatten is not per-sample on the static images (its startDim counts T): no static prefix here
    const flattenFirst = new nn.Sequential(new nn.RepeatOverTime(2), new nn.Flatten({ startDim: 2 }), new nn.Linear(16, 3, { dtype: 'float64' }),
      new nn.IFNode({ surrogate: s }), new nn.MeanOverTime());
    copyWeights(nested, flat);
    flat.fusion = false;
    const x = randomTensor([2, 1, 4, 4], 3, 1, 0.5);
    expectSamePass(trainPass(nested, x, [0, 2]), trainPass(flat, x, [0, 2]), 1e-12);
    expect(trainPass(nested, x, [0, 2]).layers).toEqual(['1.2', '4']);
    const plainFlattenFirst = new nn.Sequential(...flattenFirst.children());
    plainFlattenFirst.fusion = false;
    expectSamePass(trainPass(flattenFirst, x, [1, 1]), trainPass(plainFlattenFirst, x, [1, 1]), 0);
  });

  it('errors name the layer; backward needs its forward; a fused pair checks its gradient', () => {
    const s = surrogate.atan();
    const net = new nn.Sequential(new nn.RepeatOverTime(2), ...csnnLayers(2, s), new nn.MeanOverTime());
    expect(() => net.backward(tensor(new Float64Array(10), [1, 10]))).toThrow(/Sequential.backward: call forward first/);
    expect(() => net.forward(randomTensor([1, 3, 28, 28], 1))).toThrow(/^ikun: 1 \(Conv2d\): Conv2d.forward: input has 3 channels/);
    expect(() => net.forward(randomTensor([1, 1, 20, 20], 1))).toThrow(/^ikun: 10 \(Linear\): Linear.forward: input must be \[..., 98\]/);
    expect(() => net.forward(randomTensor([1, 1, 1, 1], 1))).toThrow(/^ikun: 4 \(MaxPool2d\): MaxPool2d.forward: input 1x1 is smaller than the kernel 2/);
    net.forward(randomTensor([1, 1, 28, 28], 1));
    expect(() => net.backward(tensor(new Float64Array(20), [2, 10]))).toThrow(/gradOut has shape \[2, 10\], expected the output shape \[1, 10\]/);
    const pair = new nn.Sequential(new nn.IFNode(), new nn.MaxPool2d(2));
    pair.forward(randomTensor([2, 1, 1, 4, 4], 2));
    expect(() => pair.backward(tensor(new Float64Array(3), [3]))).toThrow(/gradOut has shape \[3\], expected the output shape \[2, 1, 1, 2, 2\]/);
    expect(() => new nn.Sequential(new Map([['a.b', new nn.IFNode()]]))).toThrow(/child names must be non-empty strings without '.'/);
    expect(() => new nn.Sequential(new Map([['a', 3 as never]]))).toThrow(/entry 'a' must be a Module/);
  });

  it('lastFiringRates works for any model built of these modules, fused or not', () => {
    const net = new nn.Sequential(new Map<string, nn.Module>([['repeat', new nn.RepeatOverTime(4)],
      ['features', new nn.Sequential(new nn.Conv2d(1, 2, 3, { padding: 1 }), new nn.LIFNode(), new nn.MaxPool2d(2))],
      ['head', new nn.Sequential(new nn.Flatten({ startDim: 2 }), new nn.Linear(8, 2), new nn.IFNode())], ['rate', new nn.MeanOverTime()]]));
    const x = tensor(new Float32Array(2 * 16).map((_, i) => (i % 5) * 0.6), [2, 1, 4, 4]);
    const fusedRates = (net.forward(x), net.lastFiringRates());
    net.fusion = false;
    const plainRates = (net.forward(x), net.lastFiringRates());
    expect(Object.keys(fusedRates)).toEqual(['features.1', 'head.2']);
    expect(fusedRates).toEqual(plainRates);
    for (const r of Object.values(fusedRates)) expect(r).toBeGreaterThanOrEqual(0);
    net.resetState();
    expect(net.lastFiringRates()).toEqual({});
  });

  it('accumulateFiringRates adds the rates of lastFiringRates, scaled, into their slots in one native call', () => {
    const net = new nn.Sequential(new Map<string, nn.Module>([['repeat', new nn.RepeatOverTime(3)],
      ['features', new nn.Sequential(new nn.Conv2d(1, 2, 3, { padding: 1 }), new nn.IFNode(), new nn.MaxPool2d(2))],
      ['head', new nn.Sequential(new nn.Flatten({ startDim: 2 }), new nn.Linear(8, 3), new nn.LIFNode())], ['rate', new nn.MeanOverTime()]]));
    const x = tensor(new Float32Array(2 * 16).map((_, i) => (i % 7) * 0.5), [2, 1, 4, 4]);
    for (const fusion of [true, false]) {
      net.fusion = fusion;
      net.forward(x);
      const rates = Object.values(net.lastFiringRates());
      const accumulator = tensor(new Float64Array([0.5, 1, 2, 3]), [4], { dtype: 'float64' });
      const calls = vi.spyOn(native, 'sumsInto');
      expect(net.accumulateFiringRates(accumulator, 1, 4)).toEqual([true, true]);
      expect(calls).toHaveBeenCalledTimes(1);
      calls.mockRestore();
      const got = values(accumulator);
      expect(got[0]).toBe(0.5);
      expect(got[3]).toBe(3);
      rates.forEach((rate, i) => expect(got[1 + i]).toBeCloseTo([1, 2][i]! + 4 * rate, 14));
      net.resetState();
      expect(net.accumulateFiringRates(accumulator, 1)).toEqual([false, false]);
    }
  });

  it('native neuronPoolForward returns the spike count as float64 values that add up to it, and takes no accumulator', () => {
    const x = tensor(new Float32Array(2 * 16).map((_, i) => (i % 5) * 0.6), [2, 1, 1, 4, 4]);
    const s = surrogate.atan();
    const params = { kind: 0 as const, vThreshold: 1, vReset: 0, tau: 2, decayInput: true, detachReset: false, surrogate: s.code,
      alpha: s.alpha, spiking: true, staticInput: false, steps: 2, width: 16 };
    const pooled = tensor(new Float32Array(8), [2, 1, 1, 2, 2]);
    const counts = native.neuronPoolForward(x.storage, pooled.storage, params, [1, 4, 4, 2, 2], null);
    expect(counts).toBeInstanceOf(native.Storage);
    const spikes = values(F.neuronForward(x, params).spikes).reduce((a, b) => a + b, 0);
    expect(spikes).toBeGreaterThan(0);
    expect(Array.from(counts.read())).toEqual([spikes]);
    const acc = tensor(new Float64Array(1), [1], { dtype: 'float64' });
    expect(() => (native.neuronPoolForward as (...a: unknown[]) => unknown)(x.storage, pooled.storage, params, [1, 4, 4, 2, 2], null,
      acc.storage, 0, 1)).toThrow(/the spike count is its result, not an accumulator argument/);
  });

  it('native sumsInto refuses what it cannot add: a non-float64 accumulator, slots outside it, lists of other lengths, bad scales', () => {
    const a = tensor([1, 2, 3], [3]), b = tensor(new Float64Array([4, 5]), [2], { dtype: 'float64' });
    const acc = tensor(new Float64Array(2), [2], { dtype: 'float64' });
    native.sumsInto([a.storage, b.storage], acc.storage, [0, 0], [1, 0.5]);
    expect(values(acc)).toEqual([10.5, 0]);
    expect(() => native.sumsInto([a.storage], a.storage, [0], [1])).toThrow(/accumulator must be a float64 storage/);
    expect(() => native.sumsInto([a.storage], acc.storage, [2], [1])).toThrow(/every slot must index the accumulator/);
    expect(() => native.sumsInto([a.storage], acc.storage, [0.5], [1])).toThrow(/every slot must index the accumulator/);
    expect(() => native.sumsInto([a.storage, b.storage], acc.storage, [0], [1, 1])).toThrow(/one entry per tensor/);
    expect(() => native.sumsInto([a.storage], acc.storage, [0], [Number.NaN])).toThrow(/every scale must be a finite number/);
    const labels = new native.Storage(2, 2, true, -1);
    expect(() => native.sumsInto([labels], acc.storage, [0], [1])).toThrow(/expected float32 or float64 tensors/);
    expect(values(acc)).toEqual([10.5, 0]);
  });
});
