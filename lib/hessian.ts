// Spectral analysis of the loss Hessian (ikun-paper.md, "Hessian analysis"; the reference used PyHessian):
// top-k eigenvalues by deflated power iteration, the trace by Hutchinson's estimator, the spectral density by
// stochastic Lanczos quadrature (SLQ). The algorithms work on any symmetric operator v -> H v over a
// "parameter vector" (a list of tensors shaped like a model's parameters); the model functions plug in the
// exact Hessian-vector product of './hvp.js'. All vector arithmetic runs in native calls on the tensors, so
// the vectors stay on the device of the model; only scalars come back to JavaScript. Random start vectors
// come from a seeded Generator, so a seed gives the same numbers on every machine.
//
// Differences from PyHessian, all deliberate:
// - normalisation divides by the exact norm (PyHessian divides by norm + 1e-6, which biases the Rayleigh
//   quotient when |H v| is small, as it is for a single-sample loss); a zero vector stays zero;
// - power iteration reports the latest Rayleigh quotient when it stops (PyHessian keeps the one before;
//   they differ by less than tol relative), and each stored eigenvector is orthonormalised against those
//   found before it;
// - Lanczos re-orthogonalises w against every earlier Lanczos vector twice before taking beta = |w|
//   (PyHessian takes beta before re-orthogonalising), and stops early when beta is ~0 (an invariant
//   subspace was found: the quadrature is then exact) instead of restarting from a random vector.
import { checkInteger, checkKnownKeys, checkOptionsObject, describe, fail } from './errors.js';
import { hvp } from './hvp.js';
import type { Labels } from './loss.js';
import { native } from './native.js';
import { Module } from './nn/module.js';
import { Generator } from './random.js';
import { Tensor, formatShape } from './tensor.js';

export { hvp } from './hvp.js';

/** A parameter vector: one tensor per parameter, in the order of model.namedParameters(). */
export type ParameterVector = Tensor[];

/** A symmetric linear operator on parameter vectors; returns new tensors (the caller owns and disposes them). */
export type Operator = (v: ParameterVector) => ParameterVector;

// ---------------------------------------------------------------------------------------------------------
// Vector helpers (every one a native call per tensor)

function checkPair(what: string, x: readonly Tensor[], y: readonly Tensor[]): void {
  if (x.length !== y.length) fail(`${what}: the vectors have ${x.length} and ${y.length} tensors`);
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!, b = y[i]!;
    if (a.size !== b.size || a.dtype !== b.dtype)
      fail(`${what}: tensor ${i} differs: ${formatShape(a.shape)} ${a.dtype} vs ${formatShape(b.shape)} ${b.dtype}`);
  }
}

/** x . y summed over all tensors (accumulated in double precision). */
export function dotProduct(x: readonly Tensor[], y: readonly Tensor[]): number {
  checkPair('dotProduct', x, y);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += native.dot(x[i]!.storage, y[i]!.storage);
  return sum;
}

/** The Euclidean norm of the whole vector. */
export function norm(x: readonly Tensor[]): number {
  let sum = 0;
  for (const t of x) sum += native.sumOfSquares(t.storage);
  return Math.sqrt(sum);
}

/** y += alpha x, in place on y. */
export function axpy(x: readonly Tensor[], y: readonly Tensor[], alpha: number): void {
  checkPair('axpy', x, y);
  if (alpha === 0) return;
  for (let i = 0; i < x.length; i++) native.axpy(x[i]!.storage, y[i]!.storage, alpha);
}

/** x *= alpha, in place. */
export function scale(x: readonly Tensor[], alpha: number): void {
  for (const t of x) native.scale(t.storage, alpha);
}

/** A copy with its own memory. */
export function cloneVector(x: readonly Tensor[]): ParameterVector {
  return x.map((t) => t.clone());
}

/** Frees the native memory of every tensor of the vector. */
export function disposeVector(x: readonly Tensor[]): void {
  for (const t of x) if (!t.disposed) t.dispose();
}

/** Zeros shaped like the template (same shapes, dtypes and devices). */
export function zerosLike(template: readonly Tensor[]): ParameterVector {
  return template.map((t) => Tensor.zeros(t.shape, t.dtype, t.device));
}

/** Standard normal entries from gen, tensor by tensor in row-major order. */
export function randomNormal(template: readonly Tensor[], gen: Generator): ParameterVector {
  return template.map((t) => {
    const values = t.dtype === 'float32' ? new Float32Array(t.size) : new Float64Array(t.size);
    for (let i = 0; i < values.length; i++) values[i] = gen.normal();
    return Tensor.empty(t.shape, t.dtype, t.device).copyFrom(values);
  });
}

/** Rademacher entries (+1 or -1 with equal probability): one bit of gen.nextUint32() per entry, low bit first. */
export function randomRademacher(template: readonly Tensor[], gen: Generator): ParameterVector {
  return template.map((t) => {
    // Written straight in the tensor's precision: this loop runs over every parameter once per sample.
    const values = t.dtype === 'float32' ? new Float32Array(t.size) : new Float64Array(t.size);
    const n = values.length;
    for (let i = 0; i < n; i += 32) {
      let bits = gen.nextUint32();
      const end = Math.min(n, i + 32);
      for (let j = i; j < end; j++) {
        values[j] = bits & 1 ? 1 : -1;
        bits >>>= 1;
      }
    }
    return Tensor.empty(t.shape, t.dtype, t.device).copyFrom(values);
  });
}

/** Scales x to unit norm in place and returns the norm it had (a zero vector is left as it is). */
export function normalize(x: readonly Tensor[]): number {
  const n = norm(x);
  if (n > 0) scale(x, 1 / n);
  return n;
}

/**
 * Makes w orthogonal to each vector of basis (modified Gram-Schmidt, in order; the basis vectors are taken
 * as unit vectors) and then of unit norm, in place. Returns the norm of w before the final normalisation.
 */
export function orthonormalize(w: readonly Tensor[], basis: ReadonlyArray<readonly Tensor[]>): number {
  for (const u of basis) axpy(u, w, -dotProduct(w, u));
  return normalize(w);
}

// ---------------------------------------------------------------------------------------------------------
// Option checks

function checkTemplate(name: string, template: unknown): Tensor[] {
  if (!Array.isArray(template) || template.length === 0 || template.some((t) => !(t instanceof Tensor)))
    fail(`${name}: the template must be a non-empty array of Tensors (a parameter vector), got ${describe(template)}`);
  for (const t of template as Tensor[]) {
    t.checkAlive(name);
    if (t.dtype !== 'float32' && t.dtype !== 'float64') fail(`${name}: template tensors must be float32 or float64, got ${t.dtype}`);
  }
  return template as Tensor[];
}

function checkOperator(name: string, op: unknown): Operator {
  if (typeof op !== 'function') fail(`${name}: the operator must be a function v => H v, got ${describe(op)}`);
  return op as Operator;
}

function dimension(template: readonly Tensor[]): number {
  return template.reduce((s, t) => s + t.size, 0);
}

/** Applies the operator and checks that it answered with a vector like its argument. */
function apply(name: string, op: Operator, v: ParameterVector): ParameterVector {
  const out = op(v);
  if (!Array.isArray(out) || out.length !== v.length || out.some((t, i) => !(t instanceof Tensor) || t.size !== v[i]!.size || t.dtype !== v[i]!.dtype))
    fail(`${name}: the operator must return one tensor per input tensor with the same sizes and dtypes, got ${describe(out)}`);
  if (out.some((t, i) => t === v[i])) fail(`${name}: the operator must return new tensors, not its input`);
  return out;
}

function positiveTol(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(`${name} must be a finite number > 0, got ${describe(value)}`);
  return value;
}

function progressFn(name: string, value: unknown): ((p: SpectralProgress) => void) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') fail(`${name} must be a function, got ${describe(value)}`);
  return value as (p: SpectralProgress) => void;
}

/** Progress of a spectral computation: one call per operator application. */
export interface SpectralProgress {
  phase: 'eigenvalues' | 'trace' | 'density';
  /** eigenvalues: which eigenvalue (1-based) of count = k; density: which start vector of count = nV; trace: 1 of 1. */
  index: number;
  count: number;
  /** The iteration within it (1-based) and the most it may take (maxIter, or iter for the density). */
  iteration: number;
  maxIterations: number;
  /** The latest estimate: the Rayleigh quotient, the running trace mean, or the Lanczos alpha. */
  value: number;
}

export interface TopEigenOptions {
  /** How many eigenvalues (the largest in magnitude first, as power iteration finds them). */
  k: number;
  /** Power iterations per eigenvalue at most (default 100). */
  maxIter?: number;
  /** Relative change of the estimate that ends an eigenvalue's iteration (default 1e-3). */
  tol?: number;
  /** Seed of the Gaussian start vectors (default 0). */
  seed?: number;
  onProgress?: (p: SpectralProgress) => void;
}

export interface TopEigenResult {
  eigenvalues: number[];
  /** Unit eigenvectors, one parameter vector per eigenvalue (the caller owns them: disposeVector when done). */
  eigenvectors: ParameterVector[];
  /** Power iterations taken per eigenvalue. */
  iterations: number[];
  /**
   * Per eigenvalue, |l_last - l_before| / (|l_before| + 1e-6) at the last step (null when only one step
   * was taken): how far from settled the reported value still was.
   */
  lastRelativeChanges: Array<number | null>;
  /** Per eigenvalue, whether the change fell below tol; false means maxIter ended it still moving. */
  converged: boolean[];
}

export interface TraceOptions {
  /** Rademacher samples at most (default 100). */
  maxIter?: number;
  /** Relative change of the running mean that ends the estimate (default 1e-3). */
  tol?: number;
  seed?: number;
  onProgress?: (p: SpectralProgress) => void;
}

export interface TraceResult {
  /** The mean of the samples. */
  trace: number;
  /** v^T H v for each Rademacher vector v. */
  samples: number[];
  /** Standard error of the mean: the samples' standard deviation / sqrt(count) (null below 2 samples). */
  standardError: number | null;
  /** Whether the running mean settled below tol; false means maxIter ended it. */
  converged: boolean;
}

export interface DensityOptions {
  /** Lanczos steps per start vector (default 100); fewer when an invariant subspace is found. */
  iter?: number;
  /** Number of start vectors (SLQ runs; default 1). */
  nV?: number;
  seed?: number;
  onProgress?: (p: SpectralProgress) => void;
}

export interface DensityResult {
  /** Per start vector: the eigenvalues (Ritz values) of the Lanczos tridiagonal matrix, ascending. */
  nodes: number[][];
  /** Per start vector: the squared first components of the tridiagonal matrix's unit eigenvectors (sum 1). */
  weights: number[][];
}

function eigenOptions(name: string, options: unknown) {
  const o = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(`${name} options`, o, ['k', 'maxIter', 'tol', 'seed', 'onProgress']);
  if (o.k === undefined) fail(`${name}: option k (how many eigenvalues) is required`);
  return {
    k: checkInteger(`${name}: k`, o.k, 1),
    maxIter: checkInteger(`${name}: maxIter`, o.maxIter ?? 100, 1),
    tol: positiveTol(`${name}: tol`, o.tol ?? 1e-3),
    seed: checkInteger(`${name}: seed`, o.seed ?? 0, 0, 2 ** 53 - 1),
    onProgress: progressFn(`${name}: onProgress`, o.onProgress),
  };
}

function traceOptions(name: string, options: unknown) {
  const o = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(`${name} options`, o, ['maxIter', 'tol', 'seed', 'onProgress']);
  return {
    maxIter: checkInteger(`${name}: maxIter`, o.maxIter ?? 100, 1),
    tol: positiveTol(`${name}: tol`, o.tol ?? 1e-3),
    seed: checkInteger(`${name}: seed`, o.seed ?? 0, 0, 2 ** 53 - 1),
    onProgress: progressFn(`${name}: onProgress`, o.onProgress),
  };
}

function densityOptions(name: string, options: unknown) {
  const o = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(`${name} options`, o, ['iter', 'nV', 'seed', 'onProgress']);
  return {
    iter: checkInteger(`${name}: iter`, o.iter ?? 100, 1),
    nV: checkInteger(`${name}: nV`, o.nV ?? 1, 1),
    seed: checkInteger(`${name}: seed`, o.seed ?? 0, 0, 2 ** 53 - 1),
    onProgress: progressFn(`${name}: onProgress`, o.onProgress),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Algorithms on an abstract operator

/**
 * The k eigenvalues of largest magnitude by power iteration (PyHessian's algorithm): each starts from a
 * Gaussian vector drawn from new Generator(seed) (one stream for all k, in order), is orthogonalised against
 * the eigenvectors already found at every step, and stops when |l_new - l_old| / (|l_old| + 1e-6) < tol or
 * after maxIter steps.
 */
export function topEigenvaluesOf(op: Operator, template: readonly Tensor[], options: TopEigenOptions): TopEigenResult {
  const name = 'topEigenvalues';
  checkOperator(name, op);
  const tmpl = checkTemplate(name, template);
  const { k, maxIter, tol, seed, onProgress } = eigenOptions(name, options);
  const n = dimension(tmpl);
  if (k > n) fail(`${name}: k must be at most the number of parameters (${n}), got ${k}`);
  const gen = new Generator(seed);
  const eigenvalues: number[] = [], eigenvectors: ParameterVector[] = [], iterations: number[] = [];
  const lastRelativeChanges: Array<number | null> = [], converged: boolean[] = [];
  try {
    for (let index = 1; index <= k; index++) {
      let v = randomNormal(tmpl, gen);
      normalize(v);
      let eigenvalue: number | null = null;
      let it = 0;
      let change: number | null = null;
      try {
        while (it < maxIter) {
          it++;
          orthonormalize(v, eigenvectors);
          const hv = apply(name, op, v);
          const estimate = dotProduct(hv, v);
          disposeVector(v);
          v = hv;
          normalize(v);
          onProgress?.({ phase: 'eigenvalues', index, count: k, iteration: it, maxIterations: maxIter, value: estimate });
          const previous: number | null = eigenvalue;
          eigenvalue = estimate;
          if (previous !== null) {
            change = Math.abs(previous - estimate) / (Math.abs(previous) + 1e-6);
            if (change < tol) break;
          }
        }
        orthonormalize(v, eigenvectors);
      } catch (error) {
        disposeVector(v);
        throw error;
      }
      eigenvalues.push(eigenvalue!);
      eigenvectors.push(v);
      iterations.push(it);
      lastRelativeChanges.push(change);
      converged.push(change !== null && change < tol);
    }
  } catch (error) {
    for (const e of eigenvectors) disposeVector(e);
    throw error;
  }
  return { eigenvalues, eigenvectors, iterations, lastRelativeChanges, converged };
}

/**
 * Hutchinson's trace estimate with Rademacher vectors drawn from new Generator(seed): the mean of v^T H v,
 * stopping when the running mean moves by less than tol relative (|m_new - m_old| / (|m_old| + 1e-6)) or after
 * maxIter samples. For a diagonal H every sample is exactly the trace.
 */
export function traceOf(op: Operator, template: readonly Tensor[], options: TraceOptions = {}): TraceResult {
  const name = 'trace';
  checkOperator(name, op);
  const tmpl = checkTemplate(name, template);
  const { maxIter, tol, seed, onProgress } = traceOptions(name, options);
  const gen = new Generator(seed);
  const samples: number[] = [];
  let sum = 0, mean = 0, settled = false;
  for (let it = 1; it <= maxIter; it++) {
    const v = randomRademacher(tmpl, gen);
    let value: number;
    try {
      const hv = apply(name, op, v);
      value = dotProduct(hv, v);
      disposeVector(hv);
    } finally {
      disposeVector(v);
    }
    samples.push(value);
    sum += value;
    const previous = mean;
    mean = sum / samples.length;
    onProgress?.({ phase: 'trace', index: 1, count: 1, iteration: it, maxIterations: maxIter, value: mean });
    if (Math.abs(mean - previous) / (Math.abs(previous) + 1e-6) < tol) {
      settled = true;
      break;
    }
  }
  return { trace: mean, samples, standardError: standardErrorOfMean(samples), converged: settled };
}

/** The sample standard deviation (n - 1) over sqrt(n); null below two samples. */
export function standardErrorOfMean(samples: readonly number[]): number | null {
  const n = samples.length;
  if (n < 2) return null;
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return Math.sqrt(variance / n);
}

function machineEpsilon(template: readonly Tensor[]): number {
  return template.some((t) => t.dtype === 'float32') ? 2 ** -23 : 2 ** -52;
}

/**
 * Stochastic Lanczos quadrature. For each of nV start vectors (Rademacher, normalised; drawn in order from
 * new Generator(seed)): iter Lanczos steps with full re-orthogonalisation build the tridiagonal matrix T; the
 * nodes are its eigenvalues and the weights the squared first components of its unit eigenvectors, so that
 * sum_i w_i f(theta_i) approximates v^T f(H) v / |v|^2 (exactly for polynomials of degree < 2 * steps).
 * A run stops early when beta <= sqrt(machine epsilon) * (largest |alpha| + beta so far): the Krylov space is
 * then invariant and the quadrature exact.
 */
export function densityOf(op: Operator, template: readonly Tensor[], options: DensityOptions = {}): DensityResult {
  const name = 'density';
  checkOperator(name, op);
  const tmpl = checkTemplate(name, template);
  const { iter, nV, seed, onProgress } = densityOptions(name, options);
  const breakdown = Math.sqrt(machineEpsilon(tmpl));
  const gen = new Generator(seed);
  const nodes: number[][] = [], weights: number[][] = [];
  for (let run = 1; run <= nV; run++) {
    const basis: ParameterVector[] = [];
    let w: ParameterVector | null = null;
    const alphas: number[] = [], betas: number[] = [];
    try {
      const v0 = randomRademacher(tmpl, gen);
      basis.push(v0);
      normalize(v0);
      let scaleEstimate = 0;
      for (let step = 1; step <= iter; step++) {
        if (step > 1) {
          // full re-orthogonalisation, twice ("twice is enough"), then beta = |w|
          for (let pass = 0; pass < 2; pass++) for (const u of basis) axpy(u, w!, -dotProduct(w!, u));
          const beta = norm(w!);
          if (!(beta > breakdown * scaleEstimate)) break;
          scale(w!, 1 / beta);
          betas.push(beta);
          basis.push(w!);
          w = null;
          scaleEstimate = Math.max(scaleEstimate, beta);
        }
        const v = basis[basis.length - 1]!;
        w = apply(name, op, v);
        const alpha = dotProduct(w, v);
        alphas.push(alpha);
        scaleEstimate = Math.max(scaleEstimate, Math.abs(alpha) + (betas.length ? betas[betas.length - 1]! : 0));
        axpy(v, w, -alpha);
        if (basis.length > 1) axpy(basis[basis.length - 2]!, w, -betas[betas.length - 1]!);
        onProgress?.({ phase: 'density', index: run, count: nV, iteration: step, maxIterations: iter, value: alpha });
        if (!Number.isFinite(alpha)) fail(`${name}: the operator produced a non-finite value (alpha = ${alpha}) at Lanczos step ${step}`);
      }
    } finally {
      if (w) disposeVector(w);
      for (const b of basis) disposeVector(b);
    }
    const { values, vectors } = tridiagonalEigen(alphas, betas);
    nodes.push(values);
    weights.push(values.map((_, j) => vectors[0]![j]! ** 2));
  }
  return { nodes, weights };
}

// ---------------------------------------------------------------------------------------------------------
// Symmetric tridiagonal eigenproblem

/**
 * Eigenvalues (ascending) and unit eigenvectors of the symmetric tridiagonal matrix with diagonal `diagonal`
 * and off-diagonal `offDiagonal` (length n - 1), by the implicit QL algorithm with Wilkinson-like shifts
 * (EISPACK tql2). vectors[i][j] is component i of the eigenvector of values[j].
 */
export function tridiagonalEigen(diagonal: readonly number[], offDiagonal: readonly number[]): { values: number[]; vectors: number[][] } {
  const n = diagonal.length;
  if (n === 0) return { values: [], vectors: [] };
  if (offDiagonal.length !== n - 1) fail(`tridiagonalEigen: the off-diagonal must have ${n - 1} entries, got ${offDiagonal.length}`);
  for (const x of [...diagonal, ...offDiagonal]) if (!Number.isFinite(x)) fail(`tridiagonalEigen: entries must be finite, got ${x}`);
  const d = [...diagonal];
  const e = [...offDiagonal, 0]; // e[i] couples i and i + 1
  const z: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const eps = 2 ** -52;
  let f = 0, tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      let guard = 0;
      do {
        if (++guard > 60) fail('tridiagonalEigen: the QL iteration did not converge');
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        // implicit QL sweep from m up to l
        p = d[m]!;
        let c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
        const el1 = e[l + 1]!;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            const row = z[k]!;
            h = row[i + 1]!;
            row[i + 1] = s * row[i]! + c * h;
            row[i] = c * row[i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = d.map((_, i) => i).sort((a, b) => d[a]! - d[b]!);
  return { values: order.map((j) => d[j]!), vectors: z.map((row) => order.map((j) => row[j]!)) };
}

// ---------------------------------------------------------------------------------------------------------
// Density curve

export interface DensityCurveOptions {
  /** Grid points (default 10,000). */
  bins?: number;
  /** Base variance of the Gaussians, scaled by max(1, lambda_max - lambda_min) (default 1e-5). */
  sigmaSquared?: number;
  /** Margin added on each side of the grid (default 0.01). */
  overhead?: number;
}

export interface DensityCurve {
  grid: number[];
  density: number[];
  /** The variance of the Gaussians actually used. */
  variance: number;
}

/**
 * The smoothed spectral density, as PyHessian's density_generate: lambda_max = mean over runs of the largest
 * node + overhead, lambda_min = mean over runs of the smallest node - overhead; grid = `bins` evenly spaced
 * points from lambda_min to lambda_max (both included); each node becomes a Gaussian of variance
 * sigmaSquared * max(1, lambda_max - lambda_min) weighted by its weight; runs are averaged; the result is
 * divided by sum(density) * (grid step), so that it sums to 1 as a Riemann sum over the grid.
 * (PyHessian's get_esd_plot then shows the x range [min - 1, max + 1]; that is a plotting choice only.)
 */
export function densityCurve(nodes: readonly (readonly number[])[], weights: readonly (readonly number[])[], options: DensityCurveOptions = {}): DensityCurve {
  const name = 'densityCurve';
  const o = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(`${name} options`, o, ['bins', 'sigmaSquared', 'overhead']);
  const bins = checkInteger(`${name}: bins`, o.bins ?? 10_000, 2);
  const sigmaSquared = positiveTol(`${name}: sigmaSquared`, o.sigmaSquared ?? 1e-5);
  const overhead = o.overhead ?? 0.01;
  if (typeof overhead !== 'number' || !Number.isFinite(overhead) || overhead < 0) fail(`${name}: overhead must be a finite number >= 0, got ${describe(overhead)}`);
  if (!Array.isArray(nodes) || !Array.isArray(weights) || nodes.length === 0 || nodes.length !== weights.length)
    fail(`${name}: nodes and weights must be non-empty arrays with one entry per run, got ${describe(nodes)} and ${describe(weights)}`);
  nodes.forEach((run, r) => {
    const wr = weights[r];
    if (!Array.isArray(run) || !Array.isArray(wr) || run.length === 0 || run.length !== wr.length)
      fail(`${name}: run ${r} needs as many weights as nodes (at least one), got ${describe(run)} and ${describe(wr)}`);
    for (const x of [...run, ...wr]) if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${name}: run ${r} holds a non-finite value ${describe(x)}`);
  });
  const runs = nodes.length;
  const lambdaMax = nodes.reduce((s, run) => s + Math.max(...run), 0) / runs + overhead;
  const lambdaMin = nodes.reduce((s, run) => s + Math.min(...run), 0) / runs - overhead;
  let lo = lambdaMin, hi = lambdaMax;
  if (!(hi > lo)) {
    // every node equal and no overhead: widen so the grid has a positive step
    lo -= 0.5;
    hi += 0.5;
  }
  const step = (hi - lo) / (bins - 1);
  const grid = Array.from({ length: bins }, (_, j) => (j === bins - 1 ? hi : lo + j * step));
  const variance = sigmaSquared * Math.max(1, lambdaMax - lambdaMin);
  const norm0 = 1 / Math.sqrt(2 * Math.PI * variance);
  const density = new Float64Array(bins);
  for (let r = 0; r < runs; r++) {
    const nr = nodes[r]!, wr = weights[r]!;
    for (let i = 0; i < nr.length; i++) {
      const theta = nr[i]!, wi = wr[i]! * norm0;
      if (wi === 0) continue;
      // Gaussians vanish in double precision beyond ~40 standard deviations: only touch the bins within.
      const reach = 40 * Math.sqrt(variance);
      const j0 = Math.max(0, Math.floor((theta - reach - lo) / step));
      const j1 = Math.min(bins - 1, Math.ceil((theta + reach - lo) / step));
      for (let j = j0; j <= j1; j++) {
        const x = grid[j]! - theta;
        density[j]! += wi * Math.exp(-(x * x) / (2 * variance));
      }
    }
  }
  let total = 0;
  for (let j = 0; j < bins; j++) total += density[j]! / runs;
  const normalisation = total * step;
  if (!(normalisation > 0)) fail(`${name}: the weights sum to zero; there is no density to normalise`);
  return { grid, density: Array.from(density, (x) => x / runs / normalisation), variance };
}

// ---------------------------------------------------------------------------------------------------------
// The model's loss Hessian

function modelOperator(name: string, model: unknown, inputs: unknown, labels: unknown): { op: Operator; template: Tensor[] } {
  if (!(model instanceof Module)) fail(`${name}: model must be an ikun Module, got ${describe(model)}`);
  if (!(inputs instanceof Tensor)) fail(`${name}: inputs must be a Tensor, got ${describe(inputs)}`);
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) fail(`${name}: labels must be a number[] or an Int32Array, got ${describe(labels)}`);
  const template = model.parameters();
  if (template.length === 0) fail(`${name}: the model has no parameters`);
  return { op: (v) => hvp(model, inputs, labels as number[] | Int32Array, v), template };
}

/**
 * The top-k eigenvalues of the Hessian of loss.mseRate(model(inputs), labels) with respect to the model's
 * parameters (in the model's current train/eval mode). Eigenvectors are parameter vectors in the order of
 * model.namedParameters(); dispose them (disposeVector) when done.
 */
export function topEigenvalues(model: Module, inputs: Tensor, labels: Labels, options: TopEigenOptions): TopEigenResult {
  const { op, template } = modelOperator('topEigenvalues', model, inputs, labels);
  return topEigenvaluesOf(op, template, options);
}

/** Hutchinson's estimate of the trace of the loss Hessian (see traceOf). */
export function trace(model: Module, inputs: Tensor, labels: Labels, options: TraceOptions = {}): TraceResult {
  const { op, template } = modelOperator('trace', model, inputs, labels);
  return traceOf(op, template, options);
}

/** The SLQ nodes and weights of the loss Hessian's spectral density (see densityOf, densityCurve). */
export function density(model: Module, inputs: Tensor, labels: Labels, options: DensityOptions = {}): DensityResult {
  const { op, template } = modelOperator('density', model, inputs, labels);
  return densityOf(op, template, options);
}
