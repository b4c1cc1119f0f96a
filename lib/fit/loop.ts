// One epoch of fit(): the training steps (from a step inside the epoch when resumed there) and the test
// pass. After each step: the finiteness check, the onStep hook, a checkpoint every checkpointEvery steps,
// the stop signal; then the loop yields to the event loop (Node runs its finalizers there, and a signal
// handler or a worker's message gets its turn).
import type { DataLoader } from '../data.js';
import { IkunError, failWith } from '../errors.js';
import type { AccumulatingLoss } from '../loss.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim.js';
import type { DType, Device, Parameter } from '../tensor.js';
import { EpochBatches } from './batches.js';
import { BufferSnapshot, describeNonFinite, failDiverged, nonFiniteKind } from './divergence.js';
import { EpochAccumulator, firstNonFinite, type EpochProgress, type EpochTotals, type NonFiniteTotal } from './metrics.js';
import type { FitHooks, LossFunction, StepInfo } from './options.js';
import { positionText, type RunPosition } from './checkpoints.js';

export interface Placement {
  dtype: DType;
  device: Device;
}

/** What the epochs of one fit() share. */
export interface LoopContext {
  model: Module;
  params: Parameter[];
  /** The spiking layers' names, for the firing rates. */
  layers: string[];
  place: Placement;
  optimizer: Optimizer;
  loss: LossFunction;
  deviceLoss: AccumulatingLoss | null;
  hooks: Required<FitHooks>;
  epochs: number;
  trainLoader: DataLoader;
  testLoader: DataLoader;
  /** The loaders' batches on the model's device (on a GPU the data sets stay there for the run). */
  trainBatches: EpochBatches;
  testBatches: EpochBatches;
  onNan: 'stop' | 'skip';
  /** Read each step's loss and gradient norm before its optimiser step (else device counters, read at the epoch's end). */
  checkEachStep: boolean;
  signal: AbortSignal | null;
  checkpointEvery: number | null;
  /** The run folder (null: none). */
  runDir: string | null;
  /** Writes last.safetensors at a position inside an epoch (null: no run folder). */
  saveAt: ((position: RunPosition) => void) | null;
  /** Where the last checkpoint written stands ('' without a run folder), for the messages. */
  lastCheckpoint: string;
}

export const yieldToEventLoop = (): Promise<void> => new Promise((done) => setImmediate(done));

/** A step's progress; its loss is read from the device only when a hook asks for it. */
export function stepInfo(epoch: number, epochs: number, step: number, steps: number, phase: 'train' | 'test', loss: () => number): StepInfo {
  return { epoch, epochs, step, steps, phase, get loss() { return loss(); } };
}

function keptText(ctx: LoopContext): string {
  return ctx.lastCheckpoint ? `last.safetensors (${ctx.lastCheckpoint}) is left as it was` : '';
}

/**
 * Stops the run at a position: writes last.safetensors there (with a run folder) and throws INTERRUPTED.
 * The position is in whole steps, so nothing of the step in progress is lost.
 */
function interrupt(ctx: LoopContext, position: RunPosition, steps: number, alreadySaved = false): never {
  let saved = '';
  if (ctx.saveAt) {
    const save = ctx.saveAt;
    if (!alreadySaved) writeGuarded(ctx, position.epochsDone + 1, position.step, () => save(position));
    saved = positionText(position);
  }
  const where = position.step === 0 ? `after epoch ${position.epochsDone}` : `in epoch ${position.epochsDone + 1} after step ${position.step} of ${steps}`;
  return failWith('INTERRUPTED', { epoch: position.epochsDone, step: position.step, steps, saved, dir: ctx.runDir ?? '' },
    `fit: stopped ${where}${saved ? '; last.safetensors holds this point: continue the run with resume: true' : ' (no run folder: nothing was saved)'}`);
}

/**
 * Writes a checkpoint through `write`; a state holding a non-finite value (NON_FINITE_STATE, e.g. a
 * BatchNorm statistic) is divergence: the run stops with the last good checkpoint left as it was.
 */
export function writeGuarded(ctx: LoopContext, epoch: number, step: number, write: () => void): void {
  try {
    write();
  } catch (error) {
    if (!(error instanceof IkunError) || error.code !== 'NON_FINITE_STATE') throw error;
    failDiverged({ epoch, step, steps: ctx.trainLoader.batchCount(), what: `'${error.details.tensor}' holds non-finite values, so no checkpoint was written`, kept: keptText(ctx) });
  }
}

/** The stop signal came after the epoch's checkpoint was written: stop there (INTERRUPTED). */
export function stopAfterEpoch(ctx: LoopContext, epoch: number): never {
  return interrupt(ctx, { epochsDone: epoch, step: 0, progress: null }, ctx.trainLoader.batchCount(), true);
}

/** Throws DIVERGED when totals read from the device show a non-finite loss or gradient norm (nanCheck 'epoch'). */
function checkTotals(ctx: LoopContext, epoch: number, steps: number, bad: NonFiniteTotal | null): void {
  if (!bad) return;
  const now = describeNonFinite(ctx.model, 0, 0);
  failDiverged({
    epoch, step: bad.step ?? -1, steps,
    what: `the ${bad.total} became ${bad.kind}${bad.step === null ? '' : ' at that step (counted on the device, read at the end of the steps)'}${now ? `; now ${now}` : ''}`,
    kept: keptText(ctx),
  });
}

/** The totals' state now, for a checkpoint; refuses (DIVERGED) when they show a non-finite step. */
function progressForCheckpoint(ctx: LoopContext, totals: EpochAccumulator, epoch: number, steps: number, seconds: number): EpochProgress {
  const progress = totals.snapshot(seconds);
  checkTotals(ctx, epoch, steps, firstNonFinite(progress));
  return progress;
}

/**
 * The training steps of `epoch` (1-based) from step `start.step` on, with the totals of the steps before
 * (start.progress) when the epoch resumes inside. Returns the epoch's totals.
 */
export async function trainSteps(ctx: LoopContext, epoch: number, start: { step: number; progress: EpochProgress | null }): Promise<EpochTotals> {
  const { model, optimizer, hooks, trainLoader } = ctx;
  const steps = trainLoader.batchCount();
  if (start.step > steps)
    throw new IkunError('RUN_INCONSISTENT', `fit: resume: the checkpoint is at step ${start.step} of epoch ${epoch}, which has ${steps} steps with this batch size`);
  const began = performance.now();
  model.train();
  const totals = new EpochAccumulator(ctx.layers, ctx.place.device, { trackFiniteness: !ctx.checkEachStep, progress: start.progress });
  const seconds = (): number => totals.trainSecondsBefore + (performance.now() - began) / 1000;
  // Skipping a bad batch must also undo what its forward did to BatchNorm's running statistics.
  const buffers = ctx.onNan === 'skip' ? new BufferSnapshot(model) : null;
  let step = start.step;
  try {
    for (const batch of ctx.trainBatches.epoch(epoch - 1, start.step)) {
      step += 1;
      const { x, labels } = batch;
      totals.beginStep();
      buffers?.save();
      optimizer.zeroGrad();
      const out = model.forward(x);
      totals.addFiringRates(model);
      const grad = totals.addLoss(out, labels, batch.hostLabels, ctx.loss, ctx.deviceLoss);
      model.backwardImpl(grad, false);
      totals.addGradNorm(ctx.params);
      totals.addCorrect(out, labels);
      model.resetState(); // the paper resets membranes after every batch
      for (const t of [x, labels, out, grad]) t.dispose();
      // The per-step decision reads two numbers from the device (free on the CPU; on a GPU this waits for
      // the step's kernels, which is why it runs only on the CPU or with onNan 'skip'). Otherwise only a
      // custom loss function's host number is looked at here and the device counters are read later.
      const health = ctx.checkEachStep ? totals.stepHealth() : { loss: totals.stagedHostLoss(), gradNorm: 0 };
      if (nonFiniteKind(health.loss) || nonFiniteKind(health.gradNorm)) {
        if (ctx.onNan === 'stop')
          failDiverged({ epoch, step, steps, what: describeNonFinite(model, health.loss, health.gradNorm), kept: keptText(ctx) });
        buffers!.restore();
        totals.skipStep();
      } else {
        optimizer.step();
        totals.commitStep(batch.size);
      }
      hooks.onStep(stepInfo(epoch, ctx.epochs, step, steps, 'train', () => totals.stepLoss()));
      const globalStep = (epoch - 1) * steps + step;
      const due = ctx.checkpointEvery !== null && globalStep % ctx.checkpointEvery === 0;
      if (ctx.signal?.aborted) interrupt(ctx, { epochsDone: epoch - 1, step, progress: progressForCheckpoint(ctx, totals, epoch, steps, seconds()) }, steps);
      if (due && ctx.saveAt) {
        const save = ctx.saveAt;
        const position = { epochsDone: epoch - 1, step, progress: progressForCheckpoint(ctx, totals, epoch, steps, seconds()) };
        writeGuarded(ctx, epoch, step, () => save(position));
        ctx.lastCheckpoint = positionText(position);
      }
      await yieldToEventLoop();
    }
    const trained = totals.read(seconds());
    checkTotals(ctx, epoch, steps, trained.firstNonFinite);
    if (trained.steps === 0)
      failDiverged({ epoch, step: steps, steps, what: `every batch of the epoch had a non-finite loss or gradient and was skipped`, kept: keptText(ctx) });
    return trained;
  } finally {
    totals.dispose();
    buffers?.dispose();
  }
}

/**
 * One pass over loader in evaluation mode (running BatchNorm statistics), membranes reset after every
 * batch: the mean loss and the accuracy. shouldStop is asked after every batch; when it says so the pass
 * ends early and returns null.
 */
export async function testPass(model: Module, batches: EpochBatches, steps: number, lossFn: LossFunction, deviceLoss: AccumulatingLoss | null,
  place: Placement, onStep: (step: number, steps: number, loss: () => number) => void, shouldStop: () => boolean = () => false):
  Promise<{ loss: number; accuracy: number } | null> {
  model.eval();
  const totals = new EpochAccumulator([], place.device);
  try {
    let step = 0;
    for (const batch of batches.epoch(0)) {
      const { x, labels } = batch;
      totals.beginStep();
      const out = model.forward(x);
      const grad = totals.addLoss(out, labels, batch.hostLabels, lossFn, deviceLoss);
      totals.addCorrect(out, labels);
      totals.commitStep(batch.size);
      model.resetState();
      for (const t of [x, labels, out, grad]) t.dispose();
      onStep(++step, steps, () => totals.stepLoss());
      // After the last batch the epoch is as good as done: finish it rather than redo the pass later.
      if (step < steps && shouldStop()) return null;
      await yieldToEventLoop();
    }
    const { loss, accuracy } = totals.read();
    return { loss, accuracy };
  } finally {
    totals.dispose();
  }
}

/**
 * The test pass of fit()'s epoch `epoch`: on a stop signal, last.safetensors gets the position after the
 * epoch's training steps (their totals in `trained`), so that a resumed run only redoes the test pass.
 */
export async function testEpoch(ctx: LoopContext, epoch: number, trained: EpochTotals): Promise<{ loss: number; accuracy: number }> {
  const steps = ctx.trainLoader.batchCount();
  const result = await testPass(ctx.model, ctx.testBatches, ctx.testLoader.batchCount(), ctx.loss, ctx.deviceLoss, ctx.place,
    (s, n, l) => ctx.hooks.onStep(stepInfo(epoch, ctx.epochs, s, n, 'test', l)), () => ctx.signal?.aborted === true);
  if (result === null) interrupt(ctx, { epochsDone: epoch - 1, step: steps, progress: trained.progress }, steps);
  const kind = nonFiniteKind(result.loss);
  if (kind) {
    const now = describeNonFinite(ctx.model, 0, 0);
    failDiverged({ epoch, step: -1, steps, what: `the test loss is ${kind}${now ? `; ${now}` : ''}`, kept: keptText(ctx) });
  }
  return result;
}
