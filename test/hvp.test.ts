// Hessian-vector products against finite differences of the exact gradient (float64, smooth mode).
import { describe, expect, it } from 'vitest';
import { loss, models, nn, surrogate, tensor, type Tensor } from '../lib/index.js';
import { hvp } from '../lib/hvp.js';
import { randomArray, randomTensor } from './helpers/gradcheck.js';

type Model = nn.Module;

function gradientAt(model: Model, x: Tensor, labels: number[]): Float64Array[] {
  model.zeroGrad();
  const out = model.forward(x);
  const { grad } = loss.mseRate(out, labels);
  model.backward(grad);
  const g = model.parameters().map((p) => Float64Array.from(p.grad!.toArray()));
  model.resetState();
  return g;
}

function setParams(model: Model, values: Float64Array[]): void {
  model.parameters().forEach((p, i) => p.copyFrom(values[i]!));
}

function randomVectors(model: Model, seed: number): Tensor[] {
  return model.parameters().map((p, i) => tensor(randomArray(p.size, seed + i), [...p.shape], { dtype: p.dtype }));
}

/** Central differences of the gradient along v: (g(θ + h v) - g(θ - h v)) / 2h. */
function fdHvp(model: Model, x: Tensor, labels: number[], v: Tensor[], h: number): Float64Array[] {
  const theta = model.parameters().map((p) => Float64Array.from(p.toArray()));
  const vs = v.map((t) => t.toArray());
  const shifted = (sign: number) => theta.map((t, i) => t.map((value, j) => value + sign * h * vs[i]![j]!));
  setParams(model, shifted(+1));
  const plus = gradientAt(model, x, labels);
  setParams(model, shifted(-1));
  const minus = gradientAt(model, x, labels);
  setParams(model, theta);
  return plus.map((g, i) => g.map((value, j) => (value - minus[i]![j]!) / (2 * h)));
}

function relativeError(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let diff = 0, norm = 0;
  a.forEach((ai, i) => {
    for (let j = 0; j < ai.length; j++) {
      diff += (ai[j]! - b[i]![j]!) ** 2;
      norm += Math.max(ai[j]! ** 2, b[i]![j]! ** 2);
    }
  });
  return Math.sqrt(diff / norm);
}

const dot = (a: Tensor[], b: Tensor[]): number =>
  a.reduce((s, t, i) => s + Array.from(t.toArray()).reduce((u, v, j) => u + v * b[i]!.toArray()[j]!, 0), 0);

function smallCsnn(neuron: 'if' | 'lif', s = surrogate.sigmoid({ alpha: 4, spiking: false })) {
  return models.csnn({ channels: 2, T: 3, neuron, dtype: 'float64', surrogate: s });
}

describe('hessian.hvp', () => {
  const x = randomTensor([2, 1, 28, 28], 3, 0.5, 0.5);
  const labels = [3, 8];

  it.each([
    ['IF, eval mode (the paper)', 'if', false],
    ['IF, train mode (batch statistics)', 'if', true],
    ['LIF, eval mode', 'lif', false],
  ] as const)('CSNN %s: H v equals central differences of the gradient', (_, neuron, training) => {
    const model = smallCsnn(neuron);
    for (let i = 0; i < 20; i++) model.forward(x); // settle running statistics (as after training)
    model.train(training);
    const v = randomVectors(model, 10);
    const exact = hvp(model, x, labels, v).map((t) => t.toArray());
    expect(exact.flatMap((t) => Array.from(t)).some((value) => value !== 0)).toBe(true);
    const numeric = fdHvp(model, x, labels, v, 1e-5);
    expect(relativeError(exact, numeric)).toBeLessThan(1e-6);
  });

  it('is symmetric (u·Hv = v·Hu) and leaves running statistics alone in train mode', () => {
    const model = smallCsnn('if');
    model.train();
    const before = model.namedBuffers().map(([, b]) => Array.from(b.toArray()));
    const u = randomVectors(model, 20), v = randomVectors(model, 30);
    const uHv = dot(u, hvp(model, x, labels, v)), vHu = dot(v, hvp(model, x, labels, u));
    expect(Math.abs(uHv - vHu)).toBeLessThan(1e-10 * Math.max(1, Math.abs(uHv)));
    expect(model.namedBuffers().map(([, b]) => Array.from(b.toArray()))).toEqual(before);
  });

  it('Sequential models with soft reset, LIF, bias and time layers: H v equals central differences', () => {
    const f = { dtype: 'float64' as const };
    const s = surrogate.atan({ spiking: false });
    const model = new nn.Sequential(
      new nn.RepeatOverTime(3),
      new nn.Conv2d(1, 2, 3, { padding: 1, ...f }),
      new nn.BatchNorm2d(2, f),
      new nn.LIFNode({ surrogate: s, vReset: null }),
      new nn.MaxPool2d(2),
      new nn.Flatten({ startDim: 2 }),
      new nn.Linear(8, 4, f),
      new nn.IFNode({ surrogate: s }),
      new nn.MeanOverTime(),
    );
    const input = randomTensor([2, 1, 4, 4], 5, 1, 1);
    const v = randomVectors(model, 40);
    const exact = hvp(model, input, [1, 2], v).map((t) => t.toArray());
    expect(relativeError(exact, fdHvp(model, input, [1, 2], v, 1e-5))).toBeLessThan(1e-6);
  });

  it('spiking mode: H v is linear in v and float32 agrees with float64', () => {
    const model = models.csnn({ channels: 2, T: 4, dtype: 'float64' });
    model.eval();
    const u = randomVectors(model, 50), v = randomVectors(model, 60);
    const combo = u.map((t, i) => tensor(t.toArray().map((a, j) => 2 * a - 3 * v[i]!.toArray()[j]!), [...t.shape], { dtype: 'float64' }));
    const hu = hvp(model, x, labels, u), hv = hvp(model, x, labels, v), hc = hvp(model, x, labels, combo);
    const expected = hu.map((t, i) => t.toArray().map((a, j) => 2 * a - 3 * hv[i]!.toArray()[j]!));
    expect(relativeError(hc.map((t) => t.toArray()), expected)).toBeLessThan(1e-10);
    expect(hv.some((t) => t.toArray().some((a) => a !== 0))).toBe(true);
    const m32 = models.csnn({ channels: 2, T: 4, dtype: 'float32' });
    m32.eval();
    model.namedParameters().forEach(([, p], i) => m32.parameters()[i]!.copyFrom(p));
    model.namedBuffers().forEach(([, b], i) => m32.namedBuffers()[i]![1].copyFrom(b));
    const h32 = hvp(m32, x.to('float32'), labels, v.map((t) => t.to('float32')));
    expect(relativeError(h32.map((t) => t.toArray()), hv.map((t) => t.toArray()))).toBeLessThan(1e-4);
  });

  it('validates vectors', () => {
    const model = smallCsnn('if');
    expect(() => hvp(model, x, labels, [])).toThrow(/got 0 vectors for the model's 8 parameters/);
    const v = randomVectors(model, 1);
    v[2] = tensor([1], [1], { dtype: 'float64' });
    expect(() => hvp(model, x, labels, v)).toThrow(/vectors\[2\] has shape \[1\], parameter 'conv_fc.1.bias' has \[2\]/);
  });
});
