// The spectral tools of lib/hessian.ts on operators whose spectrum is known: explicit symmetric matrices
// Q diag(lambda) Q^T applied to parameter vectors split over tensors of different shapes.
import { describe, expect, it } from 'vitest';
import {
  axpy,
  cloneVector,
  densityCurve,
  densityOf,
  disposeVector,
  dotProduct,
  norm,
  orthonormalize,
  randomNormal,
  randomRademacher,
  scale,
  topEigenvaluesOf,
  traceOf,
  tridiagonalEigen,
  type Operator,
} from '../lib/hessian.js';
import { Generator } from '../lib/random.js';
import { Tensor, type DType } from '../lib/tensor.js';

const SHAPES = [[3, 4], [2, 2, 5], [8]]; // 12 + 20 + 8 = 40
const N = 40;

function template(dtype: DType = 'float64'): Tensor[] {
  return SHAPES.map((s) => Tensor.zeros(s, dtype));
}

function flatten(v: Tensor[]): Float64Array {
  const out = new Float64Array(N);
  let o = 0;
  for (const t of v) {
    out.set(t.toArray(), o);
    o += t.size;
  }
  return out;
}

function split(x: Float64Array, like: Tensor[]): Tensor[] {
  let o = 0;
  return like.map((t) => {
    const part = x.subarray(o, o + t.size);
    o += t.size;
    return Tensor.empty(t.shape, t.dtype, t.device).copyFrom(part);
  });
}

function matvec(a: Float64Array[], x: Float64Array): Float64Array {
  return Float64Array.from(a, (row) => row.reduce((s, v, j) => s + v * x[j]!, 0));
}

/** A random orthogonal matrix (Gram-Schmidt on Gaussian columns); rows of the result are the columns q_i. */
function orthogonal(n: number, seed: number): Float64Array[] {
  const gen = new Generator(seed);
  const q: Float64Array[] = [];
  while (q.length < n) {
    const v = Float64Array.from({ length: n }, () => gen.normal());
    for (let pass = 0; pass < 2; pass++)
      for (const u of q) {
        const d = u.reduce((s, x, i) => s + x * v[i]!, 0);
        for (let i = 0; i < n; i++) v[i]! -= d * u[i]!;
      }
    const len = Math.hypot(...v);
    q.push(v.map((x) => x / len));
  }
  return q;
}

/** A = sum_i lambda_i q_i q_i^T, with its operator on parameter vectors. */
function matrixOperator(lambda: number[], seed = 1): { a: Float64Array[]; q: Float64Array[]; op: Operator; calls: () => number } {
  const q = orthogonal(lambda.length, seed);
  const a = Array.from({ length: N }, (_, i) => Float64Array.from({ length: N }, (_, j) => lambda.reduce((s, l, k) => s + l * q[k]![i]! * q[k]![j]!, 0)));
  let calls = 0;
  return { a, q, op: (v) => (calls++, split(matvec(a, flatten(v)), v)), calls: () => calls };
}

function diagonalOperator(d: number[]): Operator {
  return (v) => split(flatten(v).map((x, i) => x * d[i]!), v);
}

// 5 well-separated top eigenvalues, then 35 evenly spread in [-2, 4]
const LAMBDA = [20, 15, 11, 8, 6, ...Array.from({ length: 35 }, (_, i) => -2 + (6 * i) / 34)];
const traceOfPower = (lambda: number[], k: number): number => lambda.reduce((s, l) => s + l ** k, 0);

describe('parameter-vector helpers', () => {
  it('computes dot, norm, axpy and scale across tensors of different shapes', () => {
    const tmpl = template();
    const gen = new Generator(5);
    const x = randomNormal(tmpl, gen), y = randomNormal(tmpl, gen);
    const fx = flatten(x), fy = flatten(y);
    expect(dotProduct(x, y)).toBeCloseTo(fx.reduce((s, v, i) => s + v * fy[i]!, 0), 12);
    expect(norm(x)).toBeCloseTo(Math.hypot(...fx), 12);
    const z = cloneVector(y);
    axpy(x, z, 2.5);
    flatten(z).forEach((v, i) => expect(v).toBeCloseTo(fy[i]! + 2.5 * fx[i]!, 12));
    scale(z, -2);
    flatten(z).forEach((v, i) => expect(v).toBeCloseTo(-2 * (fy[i]! + 2.5 * fx[i]!), 12));
    expect(flatten(y)).toEqual(fy); // clone has its own memory
    for (const v of [x, y, z]) disposeVector(v);
    expect(() => dotProduct(x.slice(0, 2), y)).toThrow(/2 and 3 tensors/);
  });

  it('draws seeded Gaussian and Rademacher vectors and orthonormalises against a list', () => {
    const tmpl = template();
    const r = flatten(randomRademacher(tmpl, new Generator(1)));
    expect(r.every((v) => v === 1 || v === -1)).toBe(true);
    expect(Math.abs(r.reduce((s, v) => s + v, 0))).toBeLessThan(20);
    expect(flatten(randomRademacher(tmpl, new Generator(1)))).toEqual(r);
    expect(flatten(randomRademacher(tmpl, new Generator(2)))).not.toEqual(r);
    const gen = new Generator(3);
    const basis = [randomNormal(tmpl, gen), randomNormal(tmpl, gen)];
    orthonormalize(basis[0]!, []);
    orthonormalize(basis[1]!, [basis[0]!]);
    const w = randomNormal(tmpl, gen);
    const before = norm(w);
    const after = orthonormalize(w, basis);
    expect(after).toBeLessThanOrEqual(before);
    expect(norm(w)).toBeCloseTo(1, 12);
    for (const u of basis) expect(Math.abs(dotProduct(w, u))).toBeLessThan(1e-12);
    expect(Math.abs(dotProduct(basis[0]!, basis[1]!))).toBeLessThan(1e-12);
  });
});

describe('topEigenvaluesOf', () => {
  it('finds the top eigenvalues and eigenvectors of a known spectrum (deflated power iteration)', () => {
    const { op, q } = matrixOperator(LAMBDA);
    const { eigenvalues, eigenvectors, iterations } = topEigenvaluesOf(op, template(), { k: 5, maxIter: 2000, tol: 1e-12, seed: 0 });
    expect(eigenvalues).toHaveLength(5);
    eigenvalues.forEach((l, i) => expect(Math.abs(l - LAMBDA[i]!) / LAMBDA[i]!).toBeLessThan(1e-4));
    eigenvectors.forEach((u, i) => {
      const fu = flatten(u);
      expect(Math.abs(fu.reduce((s, v, j) => s + v * q[i]![j]!, 0))).toBeGreaterThan(0.999);
      expect(norm(u)).toBeCloseTo(1, 10);
      for (let j = 0; j < i; j++) expect(Math.abs(dotProduct(u, eigenvectors[j]!))).toBeLessThan(1e-6);
      expect(u.map((t) => t.shape)).toEqual(SHAPES);
    });
    expect(iterations.every((n) => n > 1 && n < 2000)).toBe(true);
  });

  it('stops by the relative tolerance like PyHessian, and at maxIter', () => {
    const m = matrixOperator(LAMBDA);
    const loose = topEigenvaluesOf(m.op, template(), { k: 1, tol: 1e-3 });
    expect(Math.abs(loose.eigenvalues[0]! - 20) / 20).toBeLessThan(2e-2);
    expect(loose.iterations[0]).toBeLessThan(100);
    const before = m.calls();
    const capped = topEigenvaluesOf(m.op, template(), { k: 2, maxIter: 3, tol: 1e-15 });
    expect(capped.iterations).toEqual([3, 3]);
    expect(m.calls() - before).toBe(6);
    // capped at maxIter: reported as not converged, with the change of the last step
    expect(capped.converged).toEqual([false, false]);
    for (const c of capped.lastRelativeChanges) expect(c).toBeGreaterThan(1e-15);
    expect(loose.converged).toEqual([true]);
    expect(loose.lastRelativeChanges[0]).toBeLessThan(1e-3);
    const one = topEigenvaluesOf(m.op, template(), { k: 1, maxIter: 1 });
    expect(one.lastRelativeChanges).toEqual([null]);
    expect(one.converged).toEqual([false]);
  });

  it('works on float32 vectors', () => {
    const { op } = matrixOperator(LAMBDA);
    const { eigenvalues } = topEigenvaluesOf(op, template('float32'), { k: 3, maxIter: 1000, tol: 1e-7, seed: 4 });
    eigenvalues.forEach((l, i) => expect(Math.abs(l - LAMBDA[i]!) / LAMBDA[i]!).toBeLessThan(1e-3));
  });

  it('is reproducible for a seed', () => {
    const { op } = matrixOperator(LAMBDA);
    const a = topEigenvaluesOf(op, template(), { k: 2, maxIter: 5, seed: 9 });
    const b = topEigenvaluesOf(op, template(), { k: 2, maxIter: 5, seed: 9 });
    const c = topEigenvaluesOf(op, template(), { k: 2, maxIter: 5, seed: 10 });
    expect(b.eigenvalues).toEqual(a.eigenvalues);
    expect(c.eigenvalues).not.toEqual(a.eigenvalues);
  });
});

describe('traceOf', () => {
  it("approaches the trace with many Rademacher samples (Hutchinson's estimator)", () => {
    const { op } = matrixOperator(LAMBDA);
    const exact = traceOfPower(LAMBDA, 1);
    const { trace, samples, standardError, converged } = traceOf(op, template(), { maxIter: 3000, tol: 1e-14, seed: 0 });
    expect(samples).toHaveLength(3000);
    expect(trace).toBeCloseTo(samples.reduce((s, v) => s + v, 0) / samples.length, 9);
    expect(Math.abs(trace - exact) / exact).toBeLessThan(0.05);
    // ended by maxIter, with an error bar computed by hand from the samples
    expect(converged).toBe(false);
    const sd = Math.sqrt(samples.reduce((s, v) => s + (v - trace) ** 2, 0) / (samples.length - 1));
    expect(standardError).toBeCloseTo(sd / Math.sqrt(3000), 9);
    expect(Math.abs(trace - exact)).toBeLessThan(4 * standardError!);
  });

  it('is exact for a diagonal matrix and stops once the mean stops moving', () => {
    const d = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? -1 : 1) * (i + 1) * 0.25);
    const exact = d.reduce((s, v) => s + v, 0);
    const { trace, samples } = traceOf(diagonalOperator(d), template(), { seed: 3 });
    expect(samples).toHaveLength(2);
    for (const s of samples) expect(s).toBeCloseTo(exact, 12);
    const r = traceOf(diagonalOperator(d), template(), { seed: 3 });
    expect(r.converged).toBe(true);
    expect(r.standardError).toBeCloseTo(0, 9);
    expect(traceOf(diagonalOperator(d), template(), { seed: 3, maxIter: 1 }).standardError).toBeNull();
    expect(trace).toBeCloseTo(exact, 12);
  });

  it('is reproducible for a seed', () => {
    const { op } = matrixOperator(LAMBDA);
    const a = traceOf(op, template(), { maxIter: 5, tol: 1e-14, seed: 7 });
    expect(traceOf(op, template(), { maxIter: 5, tol: 1e-14, seed: 7 })).toEqual(a);
    expect(traceOf(op, template(), { maxIter: 5, tol: 1e-14, seed: 8 }).samples).not.toEqual(a.samples);
  });
});

describe('densityOf (stochastic Lanczos quadrature)', () => {
  it("gives weights summing to 1 whose moments are the start vector's v^T H^k v / |v|^2", () => {
    const { a, op } = matrixOperator(LAMBDA);
    const { nodes, weights } = densityOf(op, template(), { iter: 10, nV: 1, seed: 3 });
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toHaveLength(10);
    expect(weights[0]!.reduce((s, w) => s + w, 0)).toBeCloseTo(1, 12);
    expect(weights[0]!.every((w) => w >= 0)).toBe(true);
    // the start vector: the first Rademacher vector of new Generator(seed)
    const v = flatten(randomRademacher(template(), new Generator(3)));
    const vv = v.reduce((s, x) => s + x * x, 0);
    let hv = v;
    for (let k = 1; k <= 3; k++) {
      hv = matvec(a, hv);
      const exact = v.reduce((s, x, i) => s + x * hv[i]!, 0) / vv;
      const quad = nodes[0]!.reduce((s, t, i) => s + weights[0]![i]! * t ** k, 0);
      expect(Math.abs(quad - exact) / Math.abs(exact)).toBeLessThan(1e-8);
    }
  });

  it('recovers the whole spectrum with n steps and stops early once the Krylov space is invariant', () => {
    const { op } = matrixOperator(LAMBDA);
    const full = densityOf(op, template(), { iter: 100, seed: 1 });
    expect(full.nodes[0]).toHaveLength(N);
    const sorted = [...LAMBDA].sort((x, y) => x - y);
    full.nodes[0]!.forEach((t, i) => expect(t).toBeCloseTo(sorted[i]!, 8));
    // three distinct eigenvalues with multiplicities 10, 20, 10: three nodes, weights = multiplicity / n
    const d = Array.from({ length: N }, (_, i) => (i < 10 ? 1 : i < 30 ? 2 : 5));
    const three = densityOf(diagonalOperator(d), template(), { iter: 100, seed: 2 });
    expect(three.nodes[0]).toHaveLength(3);
    [1, 2, 5].forEach((l, i) => expect(three.nodes[0]![i]).toBeCloseTo(l, 10));
    [0.25, 0.5, 0.25].forEach((w, i) => expect(three.weights[0]![i]).toBeCloseTo(w, 10));
  });

  it('averaged over many start vectors, the moments approach trace(H^k) / n', () => {
    const { op } = matrixOperator(LAMBDA);
    const { nodes, weights } = densityOf(op, template(), { iter: 8, nV: 200, seed: 0 });
    expect(nodes).toHaveLength(200);
    for (const k of [1, 2]) {
      const mean = nodes.reduce((s, run, r) => s + run.reduce((t, th, i) => t + weights[r]![i]! * th ** k, 0), 0) / nodes.length;
      const exact = traceOfPower(LAMBDA, k) / N;
      expect(Math.abs(mean - exact) / exact).toBeLessThan(0.1);
    }
  });

  it('is reproducible for a seed', () => {
    const { op } = matrixOperator(LAMBDA);
    const a = densityOf(op, template(), { iter: 6, nV: 2, seed: 5 });
    expect(densityOf(op, template(), { iter: 6, nV: 2, seed: 5 })).toEqual(a);
    expect(densityOf(op, template(), { iter: 6, nV: 2, seed: 6 }).nodes).not.toEqual(a.nodes);
  });
});

describe('tridiagonalEigen', () => {
  it('returns ascending eigenvalues and orthonormal eigenvectors (T V = V diag)', () => {
    const gen = new Generator(11);
    const n = 30;
    const diag = Array.from({ length: n }, () => gen.normal() * 3);
    const off = Array.from({ length: n - 1 }, () => gen.normal());
    off[7] = 0; // a split into blocks
    const { values, vectors } = tridiagonalEigen(diag, off);
    for (let j = 1; j < n; j++) expect(values[j]!).toBeGreaterThanOrEqual(values[j - 1]!);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const tv = diag[i]! * vectors[i]![j]! + (i > 0 ? off[i - 1]! * vectors[i - 1]![j]! : 0) + (i < n - 1 ? off[i]! * vectors[i + 1]![j]! : 0);
        expect(Math.abs(tv - values[j]! * vectors[i]![j]!)).toBeLessThan(1e-12);
      }
      for (let l = 0; l <= j; l++) {
        const d = vectors.reduce((s, row) => s + row[j]! * row[l]!, 0);
        expect(d).toBeCloseTo(l === j ? 1 : 0, 12);
      }
    }
    expect(tridiagonalEigen([2], [])).toEqual({ values: [2], vectors: [[1]] });
  });
});

describe('densityCurve', () => {
  it("follows PyHessian's density_generate and integrates to 1", () => {
    const nodes = [[-1, 0.5, 3], [-0.5, 1, 2.5]], weights = [[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]];
    const bins = 200;
    const { grid, density, variance } = densityCurve(nodes, weights, { bins, sigmaSquared: 1e-2 });
    const lmax = (3 + 2.5) / 2 + 0.01, lmin = (-1 - 0.5) / 2 - 0.01;
    expect(grid).toHaveLength(bins);
    expect(grid[0]).toBeCloseTo(lmin, 14);
    expect(grid[bins - 1]).toBeCloseTo(lmax, 14);
    expect(variance).toBeCloseTo(1e-2 * (lmax - lmin), 14);
    const step = grid[1]! - grid[0]!;
    expect(density.reduce((s, v) => s + v, 0) * step).toBeCloseTo(1, 12);
    // the same numbers as the direct formula
    const gauss = (x: number, x0: number): number => Math.exp(-((x0 - x) ** 2) / (2 * variance)) / Math.sqrt(2 * Math.PI * variance);
    const raw = grid.map((x) => nodes.reduce((s, run, r) => s + run.reduce((t, th, i) => t + weights[r]![i]! * gauss(th, x), 0), 0) / nodes.length);
    const z = raw.reduce((s, v) => s + v, 0) * step;
    raw.forEach((v, j) => expect(density[j]).toBeCloseTo(v / z, 10));
  });

  it('defaults to 10,000 bins and variance 1e-5 * max(1, range); a sharp density still integrates to 1', () => {
    const { op } = matrixOperator(LAMBDA);
    const { nodes, weights } = densityOf(op, template(), { iter: 20, seed: 0 });
    const { grid, density, variance } = densityCurve(nodes, weights);
    expect(grid).toHaveLength(10_000);
    const range = Math.max(...nodes[0]!) - Math.min(...nodes[0]!) + 0.02;
    expect(variance).toBeCloseTo(1e-5 * range, 12);
    let trapezoid = 0;
    for (let j = 1; j < grid.length; j++) trapezoid += ((density[j]! + density[j - 1]!) / 2) * (grid[j]! - grid[j - 1]!);
    expect(trapezoid).toBeCloseTo(1, 2); // the extreme nodes sit only 0.01 inside the grid (PyHessian's overhead)
    expect(density.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
  });
});

describe('option validation', () => {
  const { op } = matrixOperator(LAMBDA);
  const t = template();
  it('names the bad option', () => {
    expect(() => topEigenvaluesOf(op, t, {} as never)).toThrow(/k .*required/);
    expect(() => topEigenvaluesOf(op, t, { k: 0 })).toThrow(/k must be an integer >= 1/);
    expect(() => topEigenvaluesOf(op, t, { k: 1.5 })).toThrow(/k must be an integer/);
    expect(() => topEigenvaluesOf(op, t, { k: 41 })).toThrow(/k must be at most the number of parameters \(40\)/);
    expect(() => topEigenvaluesOf(op, t, { k: 1, maxIter: 0 })).toThrow(/maxIter must be an integer >= 1/);
    for (const tol of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1e-3'])
      expect(() => topEigenvaluesOf(op, t, { k: 1, tol: tol as number })).toThrow(/tol must be a finite number > 0/);
    expect(() => topEigenvaluesOf(op, t, { k: 1, seed: -1 })).toThrow(/seed must be an integer/);
    expect(() => topEigenvaluesOf(op, t, { k: 1, bogus: 1 } as never)).toThrow(/unknown option 'bogus'/);
    expect(() => traceOf(op, t, { maxIter: 2.5 })).toThrow(/trace: maxIter must be an integer/);
    expect(() => traceOf(op, t, { tol: 0 })).toThrow(/trace: tol/);
    expect(() => densityOf(op, t, { iter: 0 })).toThrow(/density: iter must be an integer >= 1/);
    expect(() => densityOf(op, t, { nV: 0 })).toThrow(/density: nV must be an integer >= 1/);
    expect(() => densityCurve([[1]], [[1]], { bins: 1 })).toThrow(/bins must be an integer >= 2/);
    expect(() => densityCurve([[1]], [[1]], { sigmaSquared: 0 })).toThrow(/sigmaSquared/);
    expect(() => densityCurve([[1, 2]], [[1]])).toThrow(/as many weights as nodes/);
    expect(() => topEigenvaluesOf(op, [], { k: 1 })).toThrow(/template/);
    expect(() => topEigenvaluesOf('op' as never, t, { k: 1 })).toThrow(/operator must be a function/);
    expect(() => topEigenvaluesOf(() => [], t, { k: 1 })).toThrow(/operator must return one tensor per input tensor/);
  });
});
