// fit(model, { train, test }, options): the training loop of `ikun train` for any model and data set.
// Per epoch: seeded shuffle (last partial batch dropped by default), forward, loss, backward, gradient
// norm, optimiser step, membranes reset after every batch; then a test pass in evaluation mode, the
// schedule stepped, metrics and checkpoints written to the run folder. Runs on the calling thread,
// yielding to the event loop after every batch; train() runs it in a worker thread. A stop signal, a
// checkpoint every N steps and a resume continue inside an epoch to the step (lib/fit/loop.ts); a
// non-finite loss or gradient stops the run or skips the batch (lib/fit/divergence.ts).
import { DataLoader, fromArrays, imageSize, type Dataset } from './data.js';
import { describe, fail } from './errors.js';
import { positionText, writeLast, type RunPosition, type RunState } from './fit/checkpoints.js';
import { EpochBatches } from './fit/batches.js';
import { stopAfterEpoch, testEpoch, testPass, trainSteps, writeGuarded, type LoopContext, type Placement } from './fit/loop.js';
import { resolveFitOptions, type FitOptions, type LossFunction } from './fit/options.js';
import { prepareRunDir, restoreRun, writeEpoch, writeRunConfig, type EpochMetrics } from './fit/run-folder.js';
import type { AccumulatingLoss } from './loss.js';
import { Module } from './nn/module.js';
import { resolve } from 'node:path';

export type { EpochMetrics } from './fit/run-folder.js';
export type { FitHooks, FitOptions, LossFunction, StepInfo } from './fit/options.js';

/** Images and labels you bring: count * channels * height * width values, image i channel-major. */
export interface ImageArrays {
  images: Float32Array | ArrayLike<number>;
  labels: Int32Array | ArrayLike<number>;
  /** [channels, height, width] of one image. */
  shape: readonly [number, number, number];
}

export interface FitData {
  train: Dataset | ImageArrays;
  test: Dataset | ImageArrays;
  /** What the data is, for the log line (e.g. 'Fashion-MNIST'). */
  name?: string;
}

export interface FitResult {
  /** The run folder (absolute), or null when fit wrote none. */
  runDir: string | null;
  /** Every epoch of the run, resumed ones included. */
  metrics: EpochMetrics[];
  bestTestAcc: number;
}

function toDataset(name: string, value: unknown): Dataset {
  if (value !== null && typeof value === 'object' && 'shape' in value) {
    const a = value as ImageArrays;
    return fromArrays(a.images, a.labels, a.shape);
  }
  if (value === null || typeof value !== 'object' || !(('images' in value) && ('labels' in value)))
    fail(`fit: data.${name} must be a Dataset (data.loadSample().${name}, data.fromArrays(...)) or { images, labels, shape }, got ${describe(value)}`);
  const d = value as Dataset;
  // DataLoader checks the rest; the shape of an image matters here only.
  return d;
}

/** Where the model's parameters live: inputs are made there. */
function placementOf(model: Module): Placement {
  const p = model.parameters()[0];
  return { dtype: p?.dtype ?? 'float32', device: p?.device ?? 'cpu' };
}

/**
 * One pass over loader in evaluation mode (running BatchNorm statistics), membranes reset after every
 * batch: the mean loss and the accuracy.
 */
export async function evaluate(model: Module, loader: DataLoader, lossFn: LossFunction,
  onStep?: (step: number, steps: number, loss: () => number) => void, deviceLoss: AccumulatingLoss | null = null):
  Promise<{ loss: number; accuracy: number }> {
  if (!(model instanceof Module)) fail(`evaluate: model must be an ikun Module, got ${describe(model)}`);
  const place = placementOf(model);
  const batches = new EpochBatches(loader, place);
  try {
    return (await testPass(model, batches, loader.batchCount(), lossFn, deviceLoss, place, onStep ?? (() => {})))!;
  } finally {
    batches.dispose();
  }
}

/**
 * Trains model on data.train and tests it on data.test after every epoch. Options (all optional):
 * epochs, batchSize, the optimiser and schedule (by name with their settings, or as objects), loss,
 * hooks (log, onStep, onEpoch), a run folder `out` to write metrics and checkpoints to, which
 * `resume: true` continues (inside an epoch when the run stopped there), a stop `signal`,
 * `checkpointEvery` steps, and what to do on a non-finite loss or gradient (`onNan`, `nanCheck`).
 * Resolves when all epochs are done.
 */
export async function fit(model: Module, data: FitData, options: FitOptions = {}): Promise<FitResult> {
  if (!(model instanceof Module)) fail(`fit: model must be an ikun Module (e.g. models.csnn() or an nn.Sequential), got ${describe(model)}`);
  if (data === null || typeof data !== 'object') fail(`fit: data must be { train, test }, got ${describe(data)}`);
  const trainSet = toDataset('train', data.train), testSet = toDataset('test', data.test);
  const o = resolveFitOptions(model, options);
  const { optimizer, scheduler, hooks } = o;
  const runDir = o.out === null ? null : resolve(o.out);
  const trainLoader = new DataLoader(trainSet, { batchSize: o.batchSize, shuffle: o.shuffle, dropLast: o.dropLast, seed: o.seed });
  const testLoader = new DataLoader(testSet, { batchSize: o.testBatchSize, shuffle: false, dropLast: false });
  if (imageSize(trainSet) !== imageSize(testSet) || (trainSet.channels ?? 1) !== (testSet.channels ?? 1))
    fail(`fit: train images are ${trainSet.channels ?? 1}x${trainSet.height}x${trainSet.width} but test images ${testSet.channels ?? 1}x${testSet.height}x${testSet.width}`);
  if (trainLoader.batchCount() === 0)
    fail(`fit: batchSize ${o.batchSize} is larger than the ${trainSet.count} training images: no full batch to train on (pass dropLast: false or a smaller batchSize)`);
  if (testLoader.batchCount() === 0) fail('fit: the test set is empty');

  let metrics: EpochMetrics[] = [];
  let bestTestAcc = -1;
  let position: RunPosition = { epochsDone: 0, step: 0, progress: null };
  if (runDir !== null) {
    prepareRunDir(runDir, o.resume);
    if (o.resume) {
      ({ metrics, bestTestAcc, position } = restoreRun(runDir, model, optimizer, scheduler, o.epochs, hooks.log));
      hooks.log(`resuming ${runDir} ${positionText(position)} (a run of ${o.epochs} epochs)`);
    }
    writeRunConfig(runDir, o.config);
  }
  hooks.log(`data: ${data.name ? `${data.name}, ` : ''}${trainSet.count} training images (${trainLoader.batchCount()} batches of ${o.batchSize}), ` +
    `${testSet.count} test images`);
  const place = placementOf(model);
  // On a GPU the data sets stay on the device for the whole run (batches gathered there).
  const trainBatches = new EpochBatches(trainLoader, place), testBatches = new EpochBatches(testLoader, place);
  const state = (): RunState => ({ model, optimizer, scheduler, config: o.config, seed: o.seed, bestTestAcc });
  const ctx: LoopContext = {
    model, params: model.parameters(), layers: model.spikingLayers().map(([name]) => name), place, optimizer,
    loss: o.loss, deviceLoss: o.deviceLoss, hooks, epochs: o.epochs, trainLoader, testLoader, trainBatches, testBatches, onNan: o.onNan,
    // Reading a step's numbers costs nothing on the CPU; on a GPU it would make every step wait for the device.
    checkEachStep: o.onNan === 'skip' || (o.nanCheck ?? (place.device === 'cpu' ? 'step' : 'epoch')) === 'step',
    signal: o.signal, checkpointEvery: o.checkpointEvery, runDir,
    saveAt: runDir === null ? null : (at) => writeLast(runDir, state(), at),
    lastCheckpoint: runDir !== null && o.resume ? positionText(position) : '',
  };

  try {
    for (let epoch = position.epochsDone + 1; epoch <= o.epochs; epoch++) {
      const lr = optimizer.lr;
      const resumedHere = epoch === position.epochsDone + 1;
      const trained = await trainSteps(ctx, epoch, resumedHere ? position : { step: 0, progress: null });
      const trainSeconds = trained.progress.trainSeconds;
      const testStart = performance.now();
      const test = await testEpoch(ctx, epoch, trained);
      const testSeconds = (performance.now() - testStart) / 1000;
      scheduler?.step();
      const m: EpochMetrics = {
        epoch,
        train_loss: trained.loss,
        train_acc: trained.accuracy,
        test_loss: test.loss,
        test_acc: test.accuracy,
        lr,
        grad_norm: trained.gradNorm,
        epoch_s: trainSeconds + testSeconds,
        test_s: testSeconds,
        samples_per_s: trained.samples / trainSeconds,
        skipped_steps: trained.skipped,
        firing_rates: trained.firingRates,
      };
      metrics.push(m);
      const improved = m.test_acc > bestTestAcc;
      if (improved) bestTestAcc = m.test_acc;
      if (runDir !== null) {
        writeGuarded(ctx, epoch, trainLoader.batchCount(), () => writeEpoch(runDir, state(), metrics, ctx.layers, improved));
        ctx.lastCheckpoint = positionText({ epochsDone: epoch, step: 0 });
      }
      hooks.onEpoch(m);
      // A stop that came during the test pass's last step or the epoch's hooks: the epoch's end is on disk.
      if (o.signal?.aborted && epoch < o.epochs) stopAfterEpoch(ctx, epoch);
    }
  } finally {
    trainBatches.dispose();
    testBatches.dispose();
  }
  return { runDir, metrics, bestTestAcc };
}
