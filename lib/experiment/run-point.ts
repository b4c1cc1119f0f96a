// One grid point, start to end, as `ikun experiment run-one DIR --index I` runs it (a worker of the
// coordinator, or a SLURM array task): a pending point trains from scratch, a partial one resumes from
// its last.safetensors, a trained one only needs its Hessian; a done one is left alone. Training goes
// through train()/resume(), the API `ikun train` uses, so a grid point is an ordinary run folder.
import type { EpochMetrics, StepInfo } from '../fit.js';
import { resolveConfig, resume, train } from '../train.js';
import { writeRunReport } from '../report/run-report.js';
import { pointAt, pointConfig, requireExperiment } from './grid.js';
import { measurePointHessian } from './point-hessian.js';
import { pointStatus, type PointStatus } from './status.js';

export interface PointHooks {
  log?: (line: string) => void;
  warn?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (metrics: EpochMetrics) => void;
}

/** What run-one did: 'skipped' (already done), 'trained', 'resumed' or 'measured' (the Hessian only). */
export type PointAction = 'skipped' | 'trained' | 'resumed' | 'measured';

export async function runPoint(dir: string, index: number, hooks: PointHooks = {}): Promise<{ action: PointAction; status: PointStatus }> {
  const file = requireExperiment(dir);
  const point = pointAt(file, index);
  const before = pointStatus(dir, file, point);
  const log = hooks.log ?? (() => {});
  if (before.state === 'done') {
    log(`${point.run}: already done (${before.epochsDone} epochs), nothing to do`);
    return { action: 'skipped', status: before };
  }
  const trainHooks = { log, ...(hooks.onStep ? { onStep: hooks.onStep } : {}), ...(hooks.onEpoch ? { onEpoch: hooks.onEpoch } : {}) };
  let action: PointAction = 'measured';
  if (before.state === 'pending') {
    const config = pointConfig(file, point, dir);
    resolveConfig(config);
    await train(config, trainHooks);
    action = 'trained';
  } else if (before.state === 'partial') {
    await resume(before.runDir, trainHooks);
    action = 'resumed';
  }
  if (file.hessian !== null) {
    const h = measurePointHessian(before.runDir, file.hessian, hooks.warn ?? log);
    log(`${point.run}: Hessian top eigenvalue ${h.eigenvalues[0]!.toPrecision(6)}${h.trace ? `, trace ${h.trace.value.toPrecision(6)}` : ''} (${h.seconds.toFixed(1)} s)`);
  }
  writeRunReport(before.runDir);
  return { action, status: pointStatus(dir, file, point) };
}
