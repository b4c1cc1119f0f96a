// fit(model, { train, test }, options): the training loop of `ikun train` for any model and data set.
// Per epoch: seeded shuffle (last partial batch dropped by default), forward, loss, backward, gradient
// norm, optimiser step, membranes reset after every batch; then a test pass in evaluation mode, the
// schedule stepped, metrics and checkpoints written to the run folder. Runs on the calling thread,
// yielding to the event loop after every batch; train() runs it in a worker thread.
import { DataLoader, fromArrays, imageSize, type Dataset } from './data.js';
import { describe, fail } from './errors.js';
import { EpochAccumulator } from './fit/metrics.js';
import { EpochBatches } from './fit/batches.js';
import { resolveFitOptions, type FitOptions, type LossFunction, type StepInfo } from './fit/options.js';
import type { AccumulatingLoss } from './loss.js';
import { prepareRunDir, restoreRun, writeEpoch, writeRunConfig, type EpochMetrics } from './fit/run-folder.js';
import { Module } from './nn/module.js';
import type { DType, Device } from './tensor.js';
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
function placementOf(model: Module): { dtype: DType; device: Device } {
  const p = model.parameters()[0];
  return { dtype: p?.dtype ?? 'float32', device: p?.device ?? 'cpu' };
}

const yieldToEventLoop = (): Promise<void> => new Promise((done) => setImmediate(done));

/** A step's progress; its loss is read from the device only when a hook asks for it. */
function stepInfo(epoch: number, step: number, steps: number, phase: 'train' | 'test', loss: () => number): StepInfo {
  return { epoch, step, steps, phase, get loss() { return loss(); } };
}

/**
 * One pass over loader in evaluation mode (running BatchNorm statistics), membranes reset after every
 * batch: the mean loss and the accuracy.
 */
export async function evaluate(model: Module, loader: DataLoader, lossFn: LossFunction,
  onStep?: (step: number, steps: number, loss: () => number) => void, deviceLoss: AccumulatingLoss | null = null,
  batches: EpochBatches | null = null): Promise<{ loss: number; accuracy: number }> {
  if (!(model instanceof Module)) fail(`evaluate: model must be an ikun Module, got ${describe(model)}`);
  model.eval();
  const place = placementOf(model);
  const totals = new EpochAccumulator([], place.device);
  let step = 0;
  const steps = loader.batchCount();
  const source = batches ?? new EpochBatches(loader, place);
  try {
    for (const batch of source.epoch(0)) {
      const out = model.forward(batch.x);
      const grad = totals.addLoss(out, batch.labels, batch.hostLabels, lossFn, deviceLoss);
      totals.addBatch(batch.size);
      totals.addCorrect(out, batch.labels);
      model.resetState();
      for (const t of [batch.x, batch.labels, out, grad]) t.dispose();
      onStep?.(++step, steps, () => totals.stepLoss());
      await yieldToEventLoop();
    }
  } finally {
    if (!batches) source.dispose();
  }
  const { loss, accuracy } = totals.read();
  return { loss, accuracy };
}

/**
 * Trains model on data.train and tests it on data.test after every epoch. Options (all optional):
 * epochs, batchSize, the optimiser and schedule (by name with their settings, or as objects), loss,
 * hooks (log, onStep, onEpoch), and a run folder `out` to write metrics and checkpoints to, which
 * `resume: true` continues. Resolves when all epochs are done.
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
  if (runDir !== null) {
    prepareRunDir(runDir, o.resume);
    if (o.resume) {
      ({ metrics, bestTestAcc } = restoreRun(runDir, model, optimizer, scheduler, o.epochs));
      hooks.log(`resuming ${runDir} after epoch ${metrics.length} of ${o.epochs}`);
    }
    writeRunConfig(runDir, o.config);
  }
  hooks.log(`data: ${data.name ? `${data.name}, ` : ''}${trainSet.count} training images (${trainLoader.batchCount()} batches of ${o.batchSize}), ` +
    `${testSet.count} test images`);
  const layers = model.spikingLayers().map(([name]) => name);
  const params = model.parameters();
  const place = placementOf(model);
  // On a GPU the data sets stay on the device for the whole run (batches gathered there).
  const trainBatches = new EpochBatches(trainLoader, place), testBatches = new EpochBatches(testLoader, place);
  for (let epoch = metrics.length + 1; epoch <= o.epochs; epoch++) {
    const lr = optimizer.lr;
    const start = performance.now();
    model.train();
    // Every metric of a step gathers on the model's device; nothing in the loop waits for it (a hook
    // that reads a step's loss does).
    const totals = new EpochAccumulator(layers, place.device);
    const steps = trainLoader.batchCount();
    let step = 0;
    for (const batch of trainBatches.epoch(epoch - 1)) {
      optimizer.zeroGrad();
      const out = model.forward(batch.x);
      totals.addFiringRates(model);
      const grad = totals.addLoss(out, batch.labels, batch.hostLabels, o.loss, o.deviceLoss);
      model.backwardImpl(grad, false);
      totals.addGradNorm(params);
      optimizer.step();
      totals.addBatch(batch.size);
      totals.addCorrect(out, batch.labels);
      model.resetState(); // the paper resets membranes after every batch
      for (const t of [batch.x, batch.labels, out, grad]) t.dispose();
      hooks.onStep(stepInfo(epoch, ++step, steps, 'train', () => totals.stepLoss()));
      await yieldToEventLoop();
    }
    const trained = totals.read();
    const trainSeconds = (performance.now() - start) / 1000;
    const testStart = performance.now();
    const test = await evaluate(model, testLoader, o.loss, (s, n, l) => hooks.onStep(stepInfo(epoch, s, n, 'test', l)), o.deviceLoss,
      testBatches);
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
      firing_rates: trained.firingRates,
    };
    metrics.push(m);
    const improved = m.test_acc > bestTestAcc;
    if (improved) bestTestAcc = m.test_acc;
    if (runDir !== null) writeEpoch(runDir, { model, optimizer, scheduler, metrics, layers, bestTestAcc, improved, config: o.config, seed: o.seed });
    hooks.onEpoch(m);
  }
  // (a run that throws leaves its device copies to the garbage collector)
  trainBatches.dispose();
  testBatches.dispose();
  return { runDir, metrics, bestTestAcc };
}
