// Finite-difference gradient checks for modules in float64 smooth mode. The objective is
// f = sum(weights * module.forward(x)) with fixed random weights, so backward(weights) gives df/dx and
// accumulates df/dparams; central differences (step h) give the reference.
import { Generator } from '../../lib/random.js';
import { Tensor, tensor, type nn } from '../../lib/index.js';

export function randomArray(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  const g = new Generator(seed);
  return Float64Array.from({ length: n }, () => offset + scale * (2 * g.uniform() - 1));
}

export function randomTensor(shape: number[], seed: number, scale = 1, offset = 0): Tensor {
  return tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed, scale, offset), shape, { dtype: 'float64' });
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface GradCheckResult {
  /** ||analytic - numeric|| / max(||analytic||, ||numeric||) over the checked coordinates, per tensor */
  errors: Record<string, number>;
  /** ||analytic|| over the checked coordinates, per tensor (a check on all-zero gradients proves nothing) */
  norms: Record<string, number>;
  worst: number;
  checked: number;
}

/**
 * Checks up to `maxCoords` coordinates of the input and of every parameter (all when fewer).
 * `objective` overrides the default weighted-sum objective (e.g. a loss).
 */
export function gradCheck(module: nn.Module, x: Tensor, options: { seed?: number; h?: number; maxCoords?: number;
  checkInput?: boolean; objective?: (y: Tensor) => { value: number; grad: Tensor } } = {}): GradCheckResult {
  const h = options.h ?? 1e-6, maxCoords = options.maxCoords ?? 40;
  const gen = new Generator(options.seed ?? 7);
  let weights: Float64Array | null = null;
  const evaluate = (): { value: number; grad: Tensor | null; y: Tensor } => {
    const y = module.forward(x);
    if (options.objective) {
      const r = options.objective(y);
      return { value: r.value, grad: r.grad, y };
    }
    if (!weights) weights = randomArray(y.size, 99);
    return { value: dot(y.toArray(), weights), grad: null, y };
  };
  module.zeroGrad();
  const base = evaluate();
  const gradOut = base.grad ?? tensor(weights!, [...base.y.shape], { dtype: 'float64' });
  const dx = module.backward(gradOut);
  const targets: Array<[string, Tensor, Float64Array]> = [];
  if (options.checkInput !== false) targets.push(['input', x, dx.toArray() as Float64Array]);
  for (const [name, p] of module.namedParameters()) targets.push([name, p, p.grad!.toArray() as Float64Array]);
  const errors: Record<string, number> = {};
  const norms: Record<string, number> = {};
  let checked = 0;
  for (const [name, t, analytic] of targets) {
    const values = t.toArray() as Float64Array;
    const coords = values.length <= maxCoords ? [...values.keys()] : Array.from({ length: maxCoords }, () => gen.integer(values.length));
    let diff = 0, normA = 0, normN = 0;
    for (const i of coords) {
      const original = values[i]!;
      values[i] = original + h;
      t.copyFrom(values);
      const plus = evaluate().value;
      values[i] = original - h;
      t.copyFrom(values);
      const minus = evaluate().value;
      values[i] = original;
      t.copyFrom(values);
      const numeric = (plus - minus) / (2 * h);
      diff += (numeric - analytic[i]!) ** 2;
      normA += analytic[i]! ** 2;
      normN += numeric ** 2;
      checked++;
    }
    const scale = Math.sqrt(Math.max(normA, normN));
    errors[name] = scale === 0 ? 0 : Math.sqrt(diff) / scale;
    norms[name] = Math.sqrt(normA);
  }
  return { errors, norms, worst: Math.max(...Object.values(errors)), checked };
}
