// The spectral tools on a real spiking network against its dense Hessian built column by column from
// exact Hessian-vector products (float64, smooth mode, ~100 parameters).
import { describe, expect, it } from 'vitest';
import { hessian, nn, surrogate, tensor, type Tensor } from '../lib/index.js';
import { randomTensor } from './helpers/gradcheck.js';

/** Eigenvalues of a symmetric matrix by cyclic Jacobi rotations. */
function symmetricEigenvalues(a: number[][]): number[] {
  const n = a.length, m = a.map((row) => [...row]);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p]![q]! ** 2;
    if (off < 1e-26) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(m[p]![q]!) < 1e-300) continue;
        const theta = (m[q]![q]! - m[p]![p]!) / (2 * m[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k]![p]!, mkq = m[k]![q]!;
          m[k]![p] = c * mkp - s * mkq;
          m[k]![q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p]![k]!, mqk = m[q]![k]!;
          m[p]![k] = c * mpk - s * mqk;
          m[q]![k] = s * mpk + c * mqk;
        }
      }
  }
  return m.map((row, i) => row[i]!);
}

function smallNetwork(): nn.Sequential {
  const f = { dtype: 'float64' as const };
  const s = surrogate.atan({ alpha: 2, spiking: false });
  return new nn.Sequential(
    new nn.RepeatOverTime(2),
    new nn.Conv2d(1, 2, 3, { padding: 1, bias: false, ...f }),
    new nn.BatchNorm2d(2, f),
    new nn.IFNode({ surrogate: s }),
    new nn.MaxPool2d(2),
    new nn.Flatten({ startDim: 2 }),
    new nn.Linear(18, 4, { bias: false, ...f }),
    new nn.IFNode({ surrogate: s }),
    new nn.MeanOverTime(),
  ).eval();
}

describe('spectral tools against the dense Hessian of a spiking network', () => {
  const model = smallNetwork();
  const x = randomTensor([1, 1, 6, 6], 2, 1, 1.5);
  const labels = [2];
  const params = model.parameters();
  const n = params.reduce((s, p) => s + p.size, 0);
  const unit = (k: number): Tensor[] => {
    let offset = 0;
    return params.map((p) => {
      const v = new Float64Array(p.size);
      if (k >= offset && k < offset + p.size) v[k - offset] = 1;
      offset += p.size;
      return tensor(v, [...p.shape], { dtype: 'float64' });
    });
  };
  const dense = Array.from({ length: n }, (_, k) => hessian.hvp(model, x, labels, unit(k)).flatMap((t) => Array.from(t.toArray())));
  const eigen = symmetricEigenvalues(dense).sort((a, b) => Math.abs(b) - Math.abs(a));
  const denseTrace = dense.reduce((s, row, i) => s + row[i]!, 0);

  it('the dense Hessian is symmetric and not trivial', () => {
    let asym = 0, scale = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      asym = Math.max(asym, Math.abs(dense[i]![j]! - dense[j]![i]!));
      scale = Math.max(scale, Math.abs(dense[i]![j]!));
    }
    expect(scale).toBeGreaterThan(1e-6);
    expect(asym).toBeLessThan(1e-10 * scale);
  });

  it('topEigenvalues equals the dense top eigenvalues (by magnitude) within 1e-4', () => {
    const { eigenvalues } = hessian.topEigenvalues(model, x, labels, { k: 3, maxIter: 3000, tol: 1e-12, seed: 1 });
    eigenvalues.forEach((l, i) => expect(Math.abs(l - eigen[i]!) / Math.abs(eigen[i]!)).toBeLessThan(1e-4));
  });

  it('trace: Hutchinson agrees with the dense trace within its statistical error', () => {
    const { trace, samples } = hessian.trace(model, x, labels, { maxIter: 400, tol: 1e-12, seed: 3 });
    // Rademacher estimator variance per sample: 2 * sum_{i != j} H_ij^2
    let offDiagonal = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) offDiagonal += dense[i]![j]! ** 2;
    const standardError = Math.sqrt((2 * offDiagonal) / samples.length);
    expect(Math.abs(trace - denseTrace)).toBeLessThan(4 * standardError + 1e-12);
  });

  it('density: weights sum to 1 and full Lanczos puts every weighted node on an eigenvalue of H', () => {
    const { nodes, weights } = hessian.density(model, x, labels, { iter: n, nV: 1, seed: 4 });
    expect(weights[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const spectralScale = Math.abs(eigen[0]!);
    nodes[0]!.forEach((node, i) => {
      if (weights[0]![i]! < 1e-10) return;
      const nearest = Math.min(...eigen.map((l) => Math.abs(l - node)));
      expect(nearest).toBeLessThan(1e-6 * spectralScale);
    });
    // the largest-magnitude eigenvalue is found
    expect(Math.min(...nodes[0]!.map((l) => Math.abs(l - eigen[0]!)))).toBeLessThan(1e-6 * spectralScale);
  });
});
