// `ikun eval`'s core: a checkpoint's test loss and accuracy, its accuracy per class and the confusion
// matrix, on the test set it was trained against (or the one asked for). Batches run in eval mode
// (BatchNorm running statistics) with the membranes reset after every batch, as the training's test pass.
import { resolve } from 'node:path';
import { loadCheckpointModel, type ModelConfig } from './checkpoint-model.js';
import { loadFashionMnist, loadMnist, loadSample, type Dataset } from './data.js';
import { checkInteger, fail } from './errors.js';
import * as lossFns from './loss.js';
import { Tensor } from './tensor.js';

export interface EvalOptions {
  /** Folder with the IDX files (default: the run's data folder, $IKUN_DATA, ...). */
  data?: string;
  /** The bundled sample's test images. */
  sample?: boolean;
  /** Images per batch (default 256). */
  batch?: number;
  /** Model settings the checkpoint does not carry (a PyTorch file): T, neuron, surrogate. */
  overrides?: Partial<ModelConfig>;
}

export interface EvalResult {
  checkpoint: string;
  /** What the test images were: 'bundled Fashion-MNIST sample', 'fashion-mnist' or 'mnist'. */
  data: string;
  sample: boolean;
  images: number;
  loss: 'mse' | 'ce';
  test_loss: number;
  test_acc: number;
  /** Correct / images of that class, per class 0..9 (null for a class with no test image). */
  per_class_acc: Array<number | null>;
  /** confusion[true][predicted] = count. */
  confusion: number[][];
  config_source: string;
}

/** The test set a checkpoint is evaluated on and what to call it. */
export function testSetFor(config: ModelConfig, options: { data?: string; sample?: boolean }): { test: Dataset; source: string; sample: boolean } {
  const sample = options.sample === true || (options.data === undefined && config.sample === true);
  if (sample) return { test: loadSample().test, source: 'bundled Fashion-MNIST sample', sample: true };
  const dataset = config.dataset === 'mnist' ? 'mnist' : 'fashion-mnist';
  const dir = options.data ?? (typeof config.data === 'string' && config.data !== '' ? config.data : undefined);
  const loader = dataset === 'mnist' ? loadMnist : loadFashionMnist;
  return { test: loader(dir !== undefined ? { dir } : {}).test, source: dataset, sample: false };
}

/** The first `count` images of a test set as one float32 batch [count, 1, H, W] with their labels: the data the
 * Hessian numbers are measured on. `what` names the setting in the error (e.g. '--samples'). */
export function firstTestImages(test: Dataset, count: number, what: string, source: string): { x: Tensor; labels: Int32Array } {
  if (count > test.count) fail(`${what} ${count} is more than the ${test.count} test images of the ${source}`);
  const pixels = test.height * test.width;
  const x = Tensor.empty([count, 1, test.height, test.width], 'float32').copyFrom(test.images.subarray(0, count * pixels));
  return { x, labels: test.labels.slice(0, count) };
}

const CLASSES = 10;

export async function evaluateCheckpoint(path: string, options: EvalOptions = {}): Promise<EvalResult> {
  const batch = checkInteger('batch', options.batch ?? 256, 1);
  const file = resolve(path);
  const { model, config, configSource } = loadCheckpointModel(file, { overrides: options.overrides ?? {} });
  const { test, source, sample } = testSetFor(config, options);
  if (test.height !== 28 || test.width !== 28 || (test.channels ?? 1) !== 1)
    fail(`the test images of the ${source} are ${test.channels ?? 1}x${test.height}x${test.width}; the CSNN takes 1x28x28`);
  const lossName = config.loss === 'ce' ? 'ce' : 'mse';
  const lossOf = lossName === 'ce' ? lossFns.ceRate : lossFns.mseRate;
  const confusion = Array.from({ length: CLASSES }, () => new Array<number>(CLASSES).fill(0));
  const pixels = test.height * test.width;
  let lossSum = 0, correct = 0;
  for (let start = 0; start < test.count; start += batch) {
    const n = Math.min(batch, test.count - start);
    const x = Tensor.empty([n, 1, test.height, test.width], 'float32').copyFrom(test.images.subarray(start * pixels, (start + n) * pixels));
    const labels = test.labels.subarray(start, start + n);
    const rate = model.forward(x);
    const { loss, grad } = lossOf(rate, labels);
    const predicted = lossFns.predict(rate);
    for (const t of [x, rate, grad]) t.dispose();
    model.resetState();
    lossSum += loss * n; // every image weighs the same, whatever its batch
    for (let i = 0; i < n; i++) {
      const truth = labels[i]!, guess = predicted[i]!;
      if (truth < 0 || truth >= CLASSES) fail(`test label ${truth} of image ${start + i} is outside 0..${CLASSES - 1}`);
      confusion[truth]![guess]! += 1;
      if (truth === guess) correct++;
    }
    // Keep the caller's event loop (a progress display, signals) alive between batches.
    await new Promise<void>((done) => setImmediate(done));
  }
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? null : row[c]! / total;
  });
  return {
    checkpoint: file, data: source, sample, images: test.count, loss: lossName, test_loss: lossSum / test.count, test_acc: correct / test.count,
    per_class_acc: perClass, confusion, config_source: configSource,
  };
}
