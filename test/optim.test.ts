import { describe, it, expect } from 'vitest';
import { Parameter, Tensor, tensor } from '../lib/index.js';
import {
  Adam,
  AdamW,
  CosineAnnealingLR,
  LinearWarmup,
  SGD,
  StepLR,
  gradNorm,
  type Optimizer,
  type OptimizerState,
} from '../lib/optim.js';

type DT = 'float32' | 'float64';

function param(values: number[], dtype: DT = 'float64'): Parameter {
  const data = dtype === 'float64' ? new Float64Array(values) : new Float32Array(values);
  return Parameter.fromTensor(tensor(data, [values.length], { dtype }));
}

function setGrad(p: Parameter, g: readonly number[]): void {
  p.gradBuffer().copyFrom(g);
}

function values(t: Tensor): number[] {
  return Array.from(t.toArray());
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Math.abs(a - e) > rel * Math.max(Math.abs(e), 1e-300))
      throw new Error(`element ${i}: got ${a}, expected ${e} (relative tolerance ${rel})`);
  }
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    const message = (e as Error).message;
    expect(message.startsWith('ikun: ')).toBe(true);
    return message;
  }
  throw new Error('expected an error');
}

const P0 = [0.5, -1.25, 2, 0.75];
const GRADS = [
  [0.1, -0.2, 0.3, 0.05],
  [-0.3, 0.4, 0.25, 0.1],
  [0.2, 0.1, -0.5, -0.15],
];

/** Runs three steps with the fixed gradients and returns the parameter after each. */
function run(make: (p: Parameter) => Optimizer, dtype: DT = 'float64', steps = 3): number[][] {
  const p = param(P0, dtype);
  const opt = make(p);
  const out: number[][] = [];
  for (let s = 0; s < steps; s++) {
    setGrad(p, GRADS[s]!);
    opt.step();
    out.push(values(p));
  }
  return out;
}

// PyTorch's SGD (torch/optim/sgd.py, _single_tensor_sgd), element by element.
function refSGD(o: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }, steps = 3): number[][] {
  const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = o;
  const p = [...P0];
  let buf: number[] | null = null;
  const out: number[][] = [];
  for (let s = 0; s < steps; s++) {
    let d = GRADS[s]!.map((g, i) => g + weightDecay * p[i]!); // d_p = grad + weight_decay * param
    if (momentum !== 0) {
      // first step: buf = clone(d_p); later: buf = momentum * buf + (1 - dampening) * d_p
      buf = buf === null ? [...d] : buf.map((b, i) => momentum * b + (1 - dampening) * d[i]!);
      const b: number[] = buf;
      d = nesterov ? d.map((x, i) => x + momentum * b[i]!) : [...b];
    }
    for (let i = 0; i < p.length; i++) p[i] = p[i]! - lr * d[i]!; // param -= lr * d_p
    out.push([...p]);
  }
  return out;
}

// Adam / AdamW in the textbook form (Kingma & Ba; Loshchilov & Hutter) as PyTorch documents it.
function refAdam(o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean }, steps = 3): number[][] {
  const { lr, beta1, beta2, eps, weightDecay, decoupled } = o;
  const p = [...P0];
  const m = p.map(() => 0), v = p.map(() => 0);
  const out: number[][] = [];
  for (let t = 1; t <= steps; t++) {
    for (let i = 0; i < p.length; i++) {
      let g = GRADS[t - 1]![i]!;
      if (decoupled) p[i] = p[i]! * (1 - lr * weightDecay); // AdamW: theta *= 1 - lr * lambda
      else g = g + weightDecay * p[i]!; // Adam: g += lambda * theta
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      const mHat = m[i]! / (1 - beta1 ** t);
      const vHat = v[i]! / (1 - beta2 ** t);
      p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
    out.push([...p]);
  }
  return out;
}

describe('SGD', () => {
  it('plain: p -= lr * g', () => {
    const got = run((p) => new SGD([p], { lr: 0.1 }));
    expectClose(got[0]!, [0.49, -1.23, 1.97, 0.745]);
    got.forEach((row, s) => expectClose(row, refSGD({ lr: 0.1 })[s]!));
  });

  it('momentum: the buffer starts at the first gradient', () => {
    const got = run((p) => new SGD([p], { lr: 0.1, momentum: 0.9 }));
    // step 2 by hand for element 0: buf = 0.9 * 0.1 + (-0.3) = -0.21, p = 0.49 + 0.021
    expect(got[1]![0]).toBeCloseTo(0.511, 14);
    got.forEach((row, s) => expectClose(row, refSGD({ lr: 0.1, momentum: 0.9 })[s]!));
  });

  it('nesterov', () => {
    const got = run((p) => new SGD([p], { lr: 0.05, momentum: 0.8, nesterov: true }));
    // step 1: buf = g, d = g + 0.8 g = 1.8 g
    expectClose(got[0]!, P0.map((x, i) => x - 0.05 * 1.8 * GRADS[0]![i]!));
    got.forEach((row, s) => expectClose(row, refSGD({ lr: 0.05, momentum: 0.8, nesterov: true })[s]!));
  });

  it('dampening applies from the second step on', () => {
    const got = run((p) => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5 }));
    expectClose(got[0]!, refSGD({ lr: 0.1 })[0]!); // no dampening on the first step
    // step 2, element 0: buf = 0.9 * 0.1 + 0.5 * (-0.3) = -0.06
    expect(got[1]![0]).toBeCloseTo(0.49 + 0.006, 14);
    got.forEach((row, s) => expectClose(row, refSGD({ lr: 0.1, momentum: 0.9, dampening: 0.5 })[s]!));
  });

  it('weight decay (L2 through the gradient), with and without momentum', () => {
    const plain = run((p) => new SGD([p], { lr: 0.1, weightDecay: 0.01 }));
    expectClose(plain[0]!, P0.map((x, i) => x - 0.1 * (GRADS[0]![i]! + 0.01 * x)));
    plain.forEach((row, s) => expectClose(row, refSGD({ lr: 0.1, weightDecay: 0.01 })[s]!));
    const mom = run((p) => new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true }));
    mom.forEach((row, s) => expectClose(row, refSGD({ lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true })[s]!));
  });

  it('skips parameters without a gradient and allocates momentum lazily', () => {
    const a = param([1, 2]), b = param([3, 4]);
    const opt = new SGD([['a', a], ['b', b]], { lr: 0.1, momentum: 0.9 });
    setGrad(a, [1, 1]);
    opt.step();
    expect(values(a)).toEqual([0.9, 1.9]);
    expect(values(b)).toEqual([3, 4]);
    expect(opt.stateDict().tensors.map(([n]) => n)).toEqual(['a.momentum_buffer']);
    // b's first update starts its buffer at its gradient (firstStep) even though a's is on its second
    setGrad(b, [1, -1]);
    opt.step();
    expectClose(values(b), [2.9, 4.1]);
    expectClose(values(a), [0.9 - 0.1 * 1.9, 1.9 - 0.1 * 1.9]);
  });

  it('zeroGrad zeroes, or drops with setToNone', () => {
    const p = param([1, 2]);
    const opt = new SGD([p], { lr: 1 });
    setGrad(p, [3, 4]);
    opt.zeroGrad();
    expect(values(p.grad!)).toEqual([0, 0]);
    opt.zeroGrad(true);
    expect(p.grad).toBeNull();
    opt.step();
    expect(values(p)).toEqual([1, 2]);
  });

  it('uses lr as set', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1 });
    opt.lr = 0.5;
    setGrad(p, [1]);
    opt.step();
    expect(values(p)).toEqual([0.5]);
    expect(opt.stepCount).toBe(1);
  });
});

describe('Adam and AdamW', () => {
  const base = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

  it('Adam: bias-corrected moments over 3 steps', () => {
    const got = run((p) => new Adam([p], { lr: 0.01 }));
    // first step: m_hat = g and v_hat = g^2, so p -= lr * g / (|g| + eps)
    expectClose(got[0]!, P0.map((x, i) => x - (0.01 * GRADS[0]![i]!) / (Math.abs(GRADS[0]![i]!) + 1e-8)));
    const ref = refAdam({ ...base, weightDecay: 0, decoupled: false });
    got.forEach((row, s) => expectClose(row, ref[s]!));
  });

  it('Adam: other betas, a large eps and L2 weight decay', () => {
    const o = { lr: 0.05, beta1: 0.5, beta2: 0.75, eps: 0.1, weightDecay: 0.2 };
    const got = run((p) => new Adam([p], { lr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay }));
    const ref = refAdam({ ...o, decoupled: false });
    got.forEach((row, s) => expectClose(row, ref[s]!));
    // the decay goes through the gradient, so it differs from AdamW's
    const decoupled = refAdam({ ...o, decoupled: true });
    expect(Math.abs(got[2]![0]! - decoupled[2]![0]!)).toBeGreaterThan(1e-4);
  });

  it('AdamW: decoupled weight decay, default 1e-2', () => {
    const dflt = run((p) => new AdamW([p], { lr: 0.01 }));
    const ref = refAdam({ ...base, weightDecay: 1e-2, decoupled: true });
    dflt.forEach((row, s) => expectClose(row, ref[s]!));
    const strong = run((p) => new AdamW([p], { lr: 0.1, betas: [0.8, 0.9], weightDecay: 0.5 }));
    const refStrong = refAdam({ lr: 0.1, beta1: 0.8, beta2: 0.9, eps: 1e-8, weightDecay: 0.5, decoupled: true });
    strong.forEach((row, s) => expectClose(row, refStrong[s]!));
    expect(new AdamW([param([1])]).stateDict().hyper).toEqual({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 });
    expect(new Adam([param([1])]).stateDict().hyper.weightDecay).toBe(0);
  });

  it('counts steps per parameter for bias correction, as PyTorch', () => {
    const a = param([1]), b = param([1]);
    const opt = new Adam([a, b], { lr: 0.1 });
    setGrad(a, [1]);
    opt.step();
    opt.step();
    setGrad(b, [1]);
    opt.step(); // b's first update is its step 1: m_hat = 1, v_hat = 1, so b = 1 - 0.1 / (1 + 1e-8)
    expectClose(values(b), [1 - 0.1 / (1 + 1e-8)]);
    expect(opt.stepCount).toBe(3);
    const steps = Object.fromEntries(opt.stateDict().tensors.filter(([n]) => n.endsWith('.step')).map(([n, t]) => [n, t.item()]));
    expect(steps).toEqual({ 'param.0.step': 3, 'param.1.step': 1 });
  });
});

describe('float32', () => {
  const cases: Array<[string, (p: Parameter) => Optimizer]> = [
    ['SGD', (p) => new SGD([p], { lr: 0.1 })],
    ['SGD momentum nesterov wd', (p) => new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true })],
    ['SGD dampening', (p) => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.3 })],
    ['Adam', (p) => new Adam([p], { lr: 0.01, weightDecay: 0.1 })],
    ['AdamW', (p) => new AdamW([p], { lr: 0.01, weightDecay: 0.1 })],
  ];
  it.each(cases)('%s agrees with float64 within 1e-6 relative', (_, make) => {
    const f64 = run(make, 'float64');
    const f32 = run(make, 'float32');
    f32.forEach((row, s) => expectClose(row, f64[s]!, 1e-6));
  });
});

describe('gradNorm', () => {
  it('is the global L2 norm of all gradients, skipping missing ones', () => {
    const a = param([1, 2]), b = param([3]), c = param([0, 0, 0], 'float32');
    setGrad(a, [3, 4]);
    setGrad(b, [12]);
    expect(gradNorm([a, b, c])).toBe(13);
    setGrad(c, [0, 0, 84]);
    expect(gradNorm([['a', a], ['b', b], ['c', c]])).toBe(85);
    expect(gradNorm([param([1])])).toBe(0);
  });
});

describe('state dict', () => {
  function copyOf(p: Parameter): Parameter {
    return Parameter.fromTensor(p.clone());
  }

  function roundTrip(make: (ps: Array<[string, Parameter]>) => Optimizer): void {
    const a = param([0.5, -1, 2]), b = param([[1, 2], [3, 4]].flat());
    const optA = make([['layer.weight', a], ['layer.bias', b]]);
    for (let s = 0; s < 2; s++) {
      setGrad(a, GRADS[s]!.slice(0, 3));
      setGrad(b, GRADS[s + 1]!);
      optA.step();
    }
    const state = optA.stateDict();
    const a2 = copyOf(a), b2 = copyOf(b);
    const optB = make([['layer.weight', a2], ['layer.bias', b2]]);
    optB.lr = 123; // restored from the state
    optB.loadStateDict(state);
    expect(optB.lr).toBe(optA.lr);
    expect(optB.stepCount).toBe(2);
    for (const [p, q, g] of [[a, a2, [0.3, 0.1, -0.2]], [b, b2, [0.05, -0.4, 0.2, 0.1]]] as const) {
      setGrad(p, g);
      setGrad(q, g);
    }
    optA.step();
    optB.step();
    expect(values(a2)).toEqual(values(a));
    expect(values(b2)).toEqual(values(b));
    // the saved state is a snapshot: stepping A did not change it
    const again = make([['layer.weight', copyOf(a)], ['layer.bias', copyOf(b)]]);
    again.loadStateDict(state);
    expect(again.stateDict().step).toBe(2);
  }

  it('SGD round trip gives identical subsequent steps', () => {
    roundTrip((ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }));
  });

  it('Adam and AdamW round trips give identical subsequent steps', () => {
    roundTrip((ps) => new Adam(ps, { lr: 0.01, weightDecay: 0.1 }));
    roundTrip((ps) => new AdamW(ps, { lr: 0.01 }));
  });

  it('uses PyTorch state names and default names', () => {
    const p = param([1, 2]);
    const opt = new Adam([p]);
    setGrad(p, [1, 1]);
    opt.step();
    const state = opt.stateDict();
    expect(state.kind).toBe('Adam');
    expect(state.step).toBe(1);
    expect(state.tensors.map(([n]) => n)).toEqual(['param.0.exp_avg', 'param.0.exp_avg_sq', 'param.0.step']);
    expectClose(values(state.tensors[0]![1]), [0.1, 0.1]);
    expectClose(values(state.tensors[1]![1]), [0.001, 0.001]);
  });

  it('refuses mismatches, naming the entry, without loading anything', () => {
    const p = param([1, 2, 3]), q = param([4, 5]);
    const opt = new SGD([['w', p], ['b', q]], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [1, 1, 1]);
    setGrad(q, [1, 1]);
    opt.step();
    const good = opt.stateDict();

    const fresh = () => new SGD([['w', param([0, 0, 0])], ['b', param([0, 0])]], { lr: 0.5, momentum: 0.9 });
    const target = fresh();
    const withTensors = (tensors: Array<[string, Tensor]>): OptimizerState => ({ ...good, tensors });
    const [wBuf, bBuf] = [good.tensors[0]![1], good.tensors[1]![1]];

    expect(errorOf(() => target.loadStateDict(withTensors([['w.momentum_buffer', wBuf], ['b.momentum_buffer', wBuf]]))))
      .toMatch(/'b\.momentum_buffer' has shape \[3\] but parameter 'b' needs \[2\]/);
    expect(errorOf(() => target.loadStateDict(withTensors([['w.momentum_buffer', wBuf], ['bias.momentum_buffer', bBuf]]))))
      .toContain("'bias.momentum_buffer' is not a state of this optimizer");
    expect(errorOf(() => target.loadStateDict(withTensors([['w.exp_avg', wBuf]])))).toContain("'w.exp_avg'");
    expect(errorOf(() => target.loadStateDict(withTensors([['w.momentum_buffer', wBuf.to('float32')]]))))
      .toContain("'w.momentum_buffer' is float32 but parameter 'w' needs float64");
    expect(errorOf(() => target.loadStateDict(withTensors([['w.momentum_buffer', wBuf], ['w.momentum_buffer', wBuf]]))))
      .toContain("'w.momentum_buffer' appears more than once");
    expect(errorOf(() => target.loadStateDict({ ...good, kind: 'Adam' }))).toContain('Adam');
    expect(errorOf(() => target.loadStateDict({ ...good, hyper: { ...good.hyper, momentum: -1 } }))).toContain('momentum');
    expect(errorOf(() => target.loadStateDict({ ...good, hyper: { ...good.hyper, betas: 1 } }))).toContain("'betas'");
    expect(errorOf(() => target.loadStateDict({ ...good, step: -1 }))).toContain('step');
    // nothing was loaded by the refused calls
    expect(target.stateDict()).toEqual({ kind: 'SGD', step: 0, hyper: { lr: 0.5, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false }, tensors: [] });

    // Adam needs both moments of a parameter
    const adam = new Adam([['w', param([1, 2, 3])]]);
    const m = Tensor.zeros([3], 'float64');
    expect(errorOf(() => adam.loadStateDict({ kind: 'Adam', step: 1, hyper: adam.stateDict().hyper, tensors: [['w.exp_avg', m]] })))
      .toContain("'w.exp_avg_sq' is missing");
    expect(errorOf(() => new Adam([['v', param([1, 2, 3])]]).loadStateDict({ kind: 'Adam', step: 1, hyper: adam.stateDict().hyper, tensors: [['w.exp_avg', m], ['w.exp_avg_sq', m]] })))
      .toContain("'w.exp_avg' is not a state of this optimizer");
  });
});

describe('schedulers', () => {
  function lrs(opt: Optimizer, sched: { step(): void }, epochs: number): number[] {
    const out = [opt.lr];
    for (let e = 1; e <= epochs; e++) {
      sched.step();
      out.push(opt.lr);
    }
    return out;
  }

  it('CosineAnnealingLR over 64 epochs', () => {
    const opt = new SGD([param([1])], { lr: 0.1 });
    const sched = new CosineAnnealingLR(opt, { tMax: 64 });
    expect(sched.lastEpoch).toBe(0);
    expect(sched.getLr()).toBe(0.1);
    const got = lrs(opt, sched, 64);
    expect(got[0]).toBe(0.1);
    expect(got[1]).toBeCloseTo((0.1 * (1 + Math.cos(Math.PI / 64))) / 2, 15);
    expect(got[32]).toBeCloseTo(0.05, 15);
    expect(got[63]).toBeCloseTo((0.1 * (1 + Math.cos((63 * Math.PI) / 64))) / 2, 15);
    expect(got[64]).toBeCloseTo(0, 15);
    for (let e = 1; e <= 64; e++) expect(got[e]!).toBeLessThan(got[e - 1]!);
    expect(sched.lastEpoch).toBe(64);
  });

  it('CosineAnnealingLR with etaMin', () => {
    const opt = new SGD([param([1])], { lr: 0.1 });
    const got = lrs(opt, new CosineAnnealingLR(opt, { tMax: 64, etaMin: 0.01 }), 64);
    expect(got[0]).toBeCloseTo(0.1, 15);
    expect(got[1]).toBeCloseTo(0.01 + (0.09 * (1 + Math.cos(Math.PI / 64))) / 2, 15);
    expect(got[32]).toBeCloseTo(0.055, 15);
    expect(got[64]).toBeCloseTo(0.01, 15);
  });

  it('the scheduled lr is the one step() uses', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1 });
    const sched = new CosineAnnealingLR(opt, { tMax: 4 });
    sched.step();
    sched.step(); // epoch 2 of 4: half the base lr
    setGrad(p, [1]);
    opt.step();
    expectClose(values(p), [1 - 0.05]);
  });

  it('StepLR', () => {
    const opt = new SGD([param([1])], { lr: 0.1 });
    const got = lrs(opt, new StepLR(opt, { stepSize: 3, gamma: 0.5 }), 7);
    expectClose(got, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]);
    const opt2 = new Adam([param([1])], { lr: 1 });
    expectClose(lrs(opt2, new StepLR(opt2, { stepSize: 1 }), 2), [1, 0.1, 0.01]);
  });

  it('LinearWarmup then cosine', () => {
    const opt = new SGD([param([1])], { lr: 0.1 });
    const cosine = new CosineAnnealingLR(opt, { tMax: 10 });
    const warm = new LinearWarmup(opt, { warmupEpochs: 5, startFactor: 0.1, after: cosine });
    expect(opt.lr).toBeCloseTo(0.01, 15);
    const got = lrs(opt, warm, 15);
    const expected = [
      ...[0, 1, 2, 3, 4].map((e) => 0.1 * (0.1 + (0.9 * e) / 5)),
      ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((e) => (0.1 * (1 + Math.cos((Math.PI * e) / 10))) / 2),
    ];
    got.forEach((lr, e) => expect(lr).toBeCloseTo(expected[e]!, 15));
    expect(got[5]).toBeCloseTo(0.1, 15);
    expect(got[15]).toBeCloseTo(0, 15);
    expect(warm.lastEpoch).toBe(15);
    expect(cosine.lastEpoch).toBe(10);
    // without `after`, the lr stays at base
    const opt2 = new SGD([param([1])], { lr: 0.2 });
    expectClose(lrs(opt2, new LinearWarmup(opt2, { warmupEpochs: 2 }), 4), [0.02, 0.11, 0.2, 0.2, 0.2]);
  });

  it('state dicts resume the schedule', () => {
    const make = (lr: number) => {
      const opt = new SGD([param([1])], { lr, momentum: 0.9 });
      const warm = new LinearWarmup(opt, { warmupEpochs: 3, after: new StepLR(opt, { stepSize: 2, gamma: 0.5 }) });
      return { opt, warm };
    };
    const a = make(0.1);
    for (let e = 0; e < 6; e++) a.warm.step();
    const saved = JSON.parse(JSON.stringify(a.warm.stateDict()));
    const b = make(0.3); // a different base, replaced by the saved one
    b.warm.loadStateDict(saved);
    expect(b.warm.lastEpoch).toBe(6);
    expect(b.opt.lr).toBe(a.opt.lr);
    expect(b.warm.after!.lastEpoch).toBe(3);
    expect(lrs(b.opt, b.warm, 4)).toEqual(lrs(a.opt, a.warm, 4));

    const cosA = new CosineAnnealingLR(new SGD([param([1])], { lr: 0.1 }), { tMax: 8, etaMin: 0.001 });
    cosA.step();
    cosA.step();
    const cosB = new CosineAnnealingLR(new SGD([param([1])], { lr: 0.1 }), { tMax: 100 });
    cosB.loadStateDict(cosA.stateDict());
    expect(cosB.tMax).toBe(8);
    expect(cosB.optimizer.lr).toBe(cosA.optimizer.lr);
    cosA.step();
    cosB.step();
    expect(cosB.optimizer.lr).toBe(cosA.optimizer.lr);

    expect(errorOf(() => cosB.loadStateDict(new StepLR(cosB.optimizer, { stepSize: 1 }).stateDict()))).toContain('StepLR');
    expect(errorOf(() => cosB.loadStateDict({ ...cosA.stateDict(), lastEpoch: 1.5 }))).toContain('lastEpoch');
    expect(errorOf(() => b.warm.loadStateDict({ ...saved, after: null }))).toContain('after');
    expect(b.warm.lastEpoch).toBe(10);
  });
});

describe('validation', () => {
  const p = () => param([1, 2]);

  it('optimizer options', () => {
    expect(errorOf(() => new SGD([p()], {} as never))).toContain('lr is required');
    expect(errorOf(() => new SGD([p()], { lr: -0.1 }))).toContain('lr must be a finite non-negative number');
    expect(errorOf(() => new SGD([p()], { lr: NaN }))).toContain('lr');
    expect(errorOf(() => new Adam([p()], { lr: Infinity }))).toContain('lr');
    expect(errorOf(() => new SGD([p()], { lr: 0.1, nesterov: true }))).toContain('nesterov');
    expect(errorOf(() => new SGD([p()], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }))).toContain('dampening 0');
    expect(errorOf(() => new SGD([p()], { lr: 0.1, learningRate: 1 } as never))).toContain("unknown option 'learningRate'");
    expect(errorOf(() => new Adam([p()], { beta1: 0.9 } as never))).toContain("unknown option 'beta1'");
    expect(errorOf(() => new Adam([p()], { betas: [1, 0.999] }))).toContain('betas[0] must be a number in [0, 1)');
    expect(errorOf(() => new AdamW([p()], { betas: [0.9, -0.1] }))).toContain('AdamW: betas[1]');
    expect(errorOf(() => new Adam([p()], { betas: [0.9] as never }))).toContain('betas');
    expect(errorOf(() => new Adam([p()], { eps: 0 }))).toContain('eps must be a finite positive number');
    expect(errorOf(() => new Adam([p()], { weightDecay: -1 }))).toContain('weightDecay');
    const opt = new SGD([p()], { lr: 0.1, momentum: undefined });
    expect(opt.momentum).toBe(0);
    expect(errorOf(() => { opt.lr = -1; })).toContain('lr');
  });

  it('params', () => {
    expect(errorOf(() => new SGD([], { lr: 0.1 }))).toContain('non-empty array');
    expect(errorOf(() => new SGD(p() as never, { lr: 0.1 }))).toContain('non-empty array');
    expect(errorOf(() => new SGD([tensor([1], [1]) as never], { lr: 0.1 }))).toContain('params[0] must be a Parameter');
    const q = p();
    expect(errorOf(() => new Adam([q, q]))).toContain('more than once');
    expect(errorOf(() => new Adam([['a', p()], ['a', p()]]))).toContain("'a' appears more than once");
    expect(errorOf(() => new Adam([['a', p()], p()] as never))).toContain('params[1]');
    expect(errorOf(() => gradNorm([]))).toContain('gradNorm');
  });

  it('gradients that do not match their parameter are refused before any update', () => {
    const a = p(), b = p();
    const opt = new SGD([a, b], { lr: 1 });
    setGrad(a, [1, 1]);
    b.grad = Tensor.zeros([3], 'float64');
    expect(errorOf(() => opt.step())).toContain("gradient of 'param.1'");
    expect(values(a)).toEqual([1, 2]);
    expect(opt.stepCount).toBe(0);
  });

  it('scheduler options', () => {
    const opt = new SGD([p()], { lr: 0.1 });
    expect(errorOf(() => new CosineAnnealingLR(opt, { tMax: 0 }))).toContain('tMax');
    expect(errorOf(() => new CosineAnnealingLR(opt, { tMax: 10, etamin: 0 } as never))).toContain("unknown option 'etamin'");
    expect(errorOf(() => new StepLR(opt, { stepSize: 1.5 }))).toContain('stepSize');
    expect(errorOf(() => new LinearWarmup(opt, { warmupEpochs: 2, startFactor: 0 }))).toContain('startFactor');
    const other = new SGD([p()], { lr: 0.1 });
    expect(errorOf(() => new LinearWarmup(opt, { warmupEpochs: 2, after: new StepLR(other, { stepSize: 1 }) }))).toContain('same optimizer');
    expect(errorOf(() => new StepLR({} as never, { stepSize: 1 }))).toContain('optimizer must be an Optimizer');
  });
});
