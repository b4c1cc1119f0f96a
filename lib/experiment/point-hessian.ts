// The paper's Hessian analysis of one grid point's best checkpoint (ikun-paper.md, "Hessian analysis"):
// top-k eigenvalues by deflated power iteration and, when asked, Hutchinson's trace, on the MSE loss of
// the first test image(s) in eval mode. Written to <run>/hessian.json with the honest numbers: per
// eigenvalue its iterations, last relative change and whether it converged; the trace's standard error
// and sample count; the data actually used.
import { join } from 'node:path';
import { ikunVersion } from '../checkpoint.js';
import { loadCheckpointModel } from '../checkpoint-model.js';
import { firstTestImages, testSetFor } from '../eval.js';
import { writeFileAtomic } from '../files.js';
import { density as densityOfModel, disposeVector, topEigenvalues, trace as traceOfModel } from '../hessian.js';
import * as lossFns from '../loss.js';
import type { HessianSettings } from './grid.js';
import { POINT_HESSIAN_FILE, bestCheckpoint } from './status.js';

export interface PointHessian {
  ikun_version: string;
  checkpoint: string;
  settings: HessianSettings;
  data: string;
  sample: boolean;
  /** Test images the loss is taken on (the first ones). */
  images: number;
  loss: number;
  parameters: number;
  eigenvalues: number[];
  iterations: number[];
  last_relative_change: Array<number | null>;
  converged: boolean[];
  trace: { value: number; standard_error: number | null; sample_count: number; converged: boolean; samples: number[] } | null;
  /** Lanczos nodes (Ritz values) and their quadrature weights, from one start vector (fewer than iter when exact). */
  density: { nodes: number[]; weights: number[]; steps: number } | null;
  seconds: number;
}

/** Measures and writes <runDir>/hessian.json; returns what it wrote. `warn` hears of every unconverged number. */
export function measurePointHessian(runDir: string, settings: HessianSettings, warn: (line: string) => void): PointHessian {
  const start = performance.now();
  const path = bestCheckpoint(runDir);
  const { model, config } = loadCheckpointModel(path);
  const { test, source, sample } = testSetFor(config, {});
  const { x, labels } = firstTestImages(test, settings.samples, 'hessian samples', source);
  try {
    const rate = model.forward(x);
    const { loss, grad } = lossFns.mseRate(rate, labels);
    rate.dispose();
    grad.dispose();
    model.resetState();
    const eig = topEigenvalues(model, x, labels, { k: settings.top, maxIter: settings.maxIter, tol: settings.tol, seed: settings.seed });
    for (const v of eig.eigenvectors) disposeVector(v);
    const unsettled = eig.converged.map((c, i) => (c ? 0 : i + 1)).filter((i) => i > 0);
    if (unsettled.length > 0)
      warn(`warning: ${path}: eigenvalue${unsettled.length > 1 ? 's' : ''} ${unsettled.join(', ')} did not converge within ${settings.maxIter} iterations`);
    let trace: PointHessian['trace'] = null;
    if (settings.trace) {
      const t = traceOfModel(model, x, labels, { maxIter: settings.maxIter, tol: settings.tol, seed: settings.seed });
      trace = { value: t.trace, standard_error: t.standardError, sample_count: t.samples.length, converged: t.converged, samples: t.samples };
      if (!t.converged) warn(`warning: ${path}: the trace did not settle within ${settings.maxIter} Rademacher samples`);
    }
    let density: PointHessian['density'] = null;
    if (settings.density) {
      const d = densityOfModel(model, x, labels, { iter: settings.iter, nV: 1, seed: settings.seed });
      density = { nodes: d.nodes[0]!, weights: d.weights[0]!, steps: d.nodes[0]!.length };
    }
    const result: PointHessian = {
      ikun_version: ikunVersion(), checkpoint: path, settings, data: source, sample, images: settings.samples, loss, parameters: model.parameterCount(),
      eigenvalues: eig.eigenvalues, iterations: eig.iterations, last_relative_change: eig.lastRelativeChanges, converged: eig.converged, trace, density,
      seconds: (performance.now() - start) / 1000,
    };
    writeFileAtomic(join(runDir, POINT_HESSIAN_FILE), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    x.dispose();
  }
}
