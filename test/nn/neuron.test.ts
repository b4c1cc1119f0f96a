// Golden values worked by hand from the equations in shared/docs/ikun-paper.md ("Neurons").
import { describe, expect, it } from 'vitest';
import { nn, surrogate, tensor, type Tensor } from '../../lib/index.js';
import { SURROGATE_NAMES } from '../../lib/surrogate.js';
import { gradCheck, randomTensor } from '../helpers/gradcheck.js';

const column = (values: number[]): Tensor => tensor(new Float64Array(values), [values.length, 1], { dtype: 'float64' });
const values = (t: Tensor): number[] => Array.from(t.toArray());

// ATan(alpha = 2): g'(u) = 1 / (1 + (pi u)^2)
const atanSlope = (u: number): number => 1 / (1 + (Math.PI * u) ** 2);

describe('IFNode forward (hand-worked)', () => {
  const x = [0.6, 0.6, 1.5, 0.2];

  it('hard reset to 0', () => {
    // h: 0.6 | 0.6+0.6=1.2 (spike, v=0) | 0+1.5=1.5 (spike, v=0) | 0.2
    const node = new nn.IFNode({ surrogate: surrogate.atan({ alpha: 2 }) });
    expect(values(node.forward(column(x)))).toEqual([0, 1, 1, 0]);
  });

  it('soft reset subtracts the threshold', () => {
    // h: 0.6 | 1.2 (spike, v=0.2) | 1.7 (spike, v=0.7) | 0.9
    const node = new nn.IFNode({ vReset: null });
    expect(values(node.forward(column(x)))).toEqual([0, 1, 1, 0]);
    const node2 = new nn.IFNode({ vReset: null, vThreshold: 0.5 });
    // h: 0.6 (spike, v=0.1) | 0.7 (spike, v=0.2) | 1.7 (spike, v=1.2) | 1.4 (spike)
    expect(values(node2.forward(column(x)))).toEqual([1, 1, 1, 1]);
  });

  it('fires exactly at the threshold (H(0) = 1) and resets to vReset', () => {
    // vReset = -0.5, membrane starts at vReset: h = -0.5 + 1.5 = 1 -> spike, v = -0.5; h = -0.5 + 1.4 = 0.9
    const node = new nn.IFNode({ vReset: -0.5 });
    expect(values(node.forward(column([1.5, 1.4])))).toEqual([1, 0]);
  });
});

describe('LIFNode forward (hand-worked)', () => {
  it('decayInput, tau 2, hard reset', () => {
    // h0 = 0 + (1.2 - 0)/2 = 0.6 | h1 = 0.6 + (1.2 - 0.6)/2 = 0.9 | h2 = 0.9 + (3 - 0.9)/2 = 1.95 spike -> 0
    // h3 = 0 + 0.4/2 = 0.2
    const node = new nn.LIFNode({ tau: 2 });
    expect(values(node.forward(column([1.2, 1.2, 3.0, 0.4])))).toEqual([0, 0, 1, 0]);
  });

  it('decayInput false: h = v - (v - vReset)/tau + x', () => {
    // h0 = 0.6 | h1 = 0.6 - 0.3 + 0.6 = 0.9 | h2 = 0.9 - 0.45 + 0.6 = 1.05 spike | h3 = 0 + 0.6
    const node = new nn.LIFNode({ tau: 2, decayInput: false });
    expect(values(node.forward(column([0.6, 0.6, 0.6, 0.6])))).toEqual([0, 0, 1, 0]);
  });

  it('soft reset with tau 4', () => {
    // h0 = (2 - 0)/4 = 0.5 | h1 = 0.5 + (2 - 0.5)/4 = 0.875 | h2 = 0.875 + (2 - 0.875)/4 = 1.15625 spike, v = 0.15625
    const node = new nn.LIFNode({ tau: 4, vReset: null });
    expect(values(node.forward(column([2, 2, 2])))).toEqual([0, 0, 1]);
  });
});

describe('BPTT gradients (hand-worked)', () => {
  // Three steps of IF with x = [0.6, 0.6, 0.3] and loss L = sum of spikes (dL/ds = 1 at every step).
  // h = [0.6, 1.2, 0.3], s = [0, 1, 0]; u = h - 1 = [-0.4, 0.2, -0.7].
  const x = [0.6, 0.6, 0.3];
  const u = [-0.4, 0.2, -0.7];
  const h = [0.6, 1.2, 0.3];
  const s = [0, 1, 0];
  const g = u.map(atanSlope);

  function backward(options: ConstructorParameters<typeof nn.IFNode>[0]): number[] {
    const node = new nn.IFNode({ surrogate: surrogate.atan({ alpha: 2 }), ...options });
    node.forward(column(x));
    return values(node.backward(column([1, 1, 1])));
  }

  it('hard reset, detachReset false', () => {
    // dh2 = g2; dh1 = g1 + dh2 [(1 - s1) + (0 - h1) g1]; dh0 = g0 + dh1 [(1 - s0) + (0 - h0) g0]
    const dh2 = g[2]!;
    const dh1 = g[1]! + dh2 * ((1 - s[1]!) + (0 - h[1]!) * g[1]!);
    const dh0 = g[0]! + dh1 * ((1 - s[0]!) + (0 - h[0]!) * g[0]!);
    const got = backward({});
    [dh0, dh1, dh2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 14));
  });

  it('hard reset, detachReset true', () => {
    const dh2 = g[2]!;
    const dh1 = g[1]! + dh2 * (1 - s[1]!);
    const dh0 = g[0]! + dh1 * (1 - s[0]!);
    const got = backward({ detachReset: true });
    [dh0, dh1, dh2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 14));
  });

  it('soft reset, detachReset false and true', () => {
    // soft reset: h = [0.6, 1.2, 0.5] (v after step 1 = 0.2), u = [-0.4, 0.2, -0.5]
    const gs = [-0.4, 0.2, -0.5].map(atanSlope);
    let dh2 = gs[2]!, dh1 = gs[1]! + dh2 * (1 - gs[1]!), dh0 = gs[0]! + dh1 * (1 - gs[0]!);
    let got = backward({ vReset: null });
    [dh0, dh1, dh2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 14));
    dh2 = gs[2]!;
    dh1 = gs[1]! + dh2;
    dh0 = gs[0]! + dh1;
    got = backward({ vReset: null, detachReset: true });
    [dh0, dh1, dh2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 14));
  });

  it('LIF decayInput: dx = dh / tau, dv = dh (1 - 1/tau)', () => {
    // x = [2.4, 1.0], tau 2: h0 = 1.2 (spike, v=0), h1 = 0.5; u = [0.2, -0.5]
    const node = new nn.LIFNode({ tau: 2 });
    node.forward(column([2.4, 1.0]));
    const got = values(node.backward(column([1, 1])));
    const g0 = atanSlope(0.2), g1 = atanSlope(-0.5);
    const dh1 = g1;
    const dh0 = g0 + dh1 * 0.5 * ((1 - 1) + (0 - 1.2) * g0);
    expect(got[1]).toBeCloseTo(dh1 / 2, 14);
    expect(got[0]).toBeCloseTo(dh0 / 2, 14);
  });
});

describe('neuron gradients against finite differences (smooth mode, float64)', () => {
  const configs: Array<[string, () => nn.Module]> = [];
  for (const name of SURROGATE_NAMES) {
    const s = surrogate.create(name, { spiking: false });
    configs.push([`IF ${name} hard`, () => new nn.IFNode({ surrogate: s })]);
  }
  const atan = surrogate.atan({ spiking: false });
  configs.push(['IF soft', () => new nn.IFNode({ surrogate: atan, vReset: null })]);
  // detachReset deliberately drops part of the true derivative, so it is checked by the hand-worked cases.
  configs.push(['LIF decayInput', () => new nn.LIFNode({ surrogate: atan, tau: 2 })]);
  configs.push(['LIF no decayInput soft', () => new nn.LIFNode({ surrogate: atan, tau: 3, decayInput: false, vReset: null })]);
  configs.push(['LIF hard vReset -0.2', () => new nn.LIFNode({ surrogate: atan, tau: 1.5, vReset: -0.2 })]);

  it.each(configs)('%s', (_, make) => {
    const node = make();
    const x = randomTensor([5, 3, 4], 3, 1.2, 0.6);
    const r = gradCheck(node, x, { maxCoords: 60 });
    expect(r.norms.input).toBeGreaterThan(1e-3);
    expect(r.worst).toBeLessThan(1e-6);
  });

  it('a static input read at every step equals the same input repeated', () => {
    const s = surrogate.sigmoid({ spiking: false });
    const a = new nn.LIFNode({ surrogate: s }), b = new nn.LIFNode({ surrogate: s });
    const x = randomTensor([2, 3], 5, 1, 0.8);
    const repeated = tensor(new Float64Array([...x.toArray(), ...x.toArray(), ...x.toArray()]), [3, 2, 3], { dtype: 'float64' });
    expect(values(a.forwardStatic(x, 3))).toEqual(values(b.forward(repeated)));
    const dy = randomTensor([3, 2, 3], 6);
    const dStatic = values(a.backward(dy));
    const dRepeated = values(b.backward(dy));
    dStatic.forEach((v, i) => expect(v).toBeCloseTo(dRepeated[i]! + dRepeated[i + 6]! + dRepeated[i + 12]!, 14));
  });
});

describe('neuron validation', () => {
  it('rejects non-finite hyperparameters and bad inputs', () => {
    expect(() => new nn.IFNode({ vThreshold: Number.POSITIVE_INFINITY })).toThrow(/IFNode: vThreshold must be a finite number, got Infinity/);
    expect(() => new nn.LIFNode({ tau: Number.NaN })).toThrow(/LIFNode: tau must be a finite number, got NaN/);
    expect(() => new nn.LIFNode({ tau: 0.5 })).toThrow(/tau must be >= 1/);
    expect(() => new nn.IFNode({ surrogate: 'atan' as never })).toThrow(/surrogate must be made by ikun's surrogate module/);
    expect(() => new nn.IFNode({ detachReset: 1 as never })).toThrow(/detachReset must be a boolean/);
    expect(() => new nn.IFNode({ vreset: 0 } as never)).toThrow(/unknown option 'vreset'/);
    const node = new nn.IFNode();
    expect(() => node.forward(tensor([1, 2], [2]))).toThrow(/multi-step \[T, N, \.\.\.\]/);
    expect(() => node.backward(tensor([1], [1, 1]))).toThrow(/call forward first/);
    node.forward(tensor([1, 2], [2, 1]));
    expect(() => node.backward(tensor([1, 2, 3], [3, 1]))).toThrow(/gradOut has shape \[3, 1\], expected the output shape \[2, 1\]/);
    node.resetState();
    expect(() => node.backward(tensor([1, 2], [2, 1]))).toThrow(/call forward first/);
  });
});
