// Losses on firing rates [N, classes]. Each returns the mean loss and its gradient with respect to rate.
import { native } from './native.js';
import { describe, fail } from './errors.js';
import { Tensor, formatShape } from './tensor.js';
import type { Accumulation } from './functional.js';

export interface LossResult {
  loss: number;
  grad: Tensor;
}

export type Labels = readonly number[] | Int32Array;

function checkLossArgs(name: string, rate: unknown, labels: unknown): Int32Array {
  if (!(rate instanceof Tensor)) fail(`${name}: rate must be a Tensor [N, classes], got ${describe(rate)}`);
  rate.checkAlive(name);
  if (rate.rank !== 2) fail(`${name}: rate must have shape [N, classes], got ${formatShape(rate.shape)}`);
  const [n, classes] = rate.shape as [number, number];
  if (!(labels instanceof Int32Array) && !Array.isArray(labels))
    fail(`${name}: labels must be a number[] or an Int32Array, got ${describe(labels)}`);
  if (labels.length !== n) fail(`${name}: got ${labels.length} labels for a batch of ${n} (rate shape ${formatShape(rate.shape)})`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= classes)
      fail(`${name}: labels[${i}] must be an integer class in [0, ${classes - 1}], got ${describe(label)}`);
    out[i] = label;
  }
  return out;
}

/** Mean squared error between the rate and the one-hot label, averaged over N * classes (the paper's loss). */
export function mseRate(rate: Tensor, labels: Labels): LossResult {
  const ints = checkLossArgs('loss.mseRate', rate, labels);
  const grad = Tensor.empty(rate.shape, rate.dtype, rate.device);
  const loss = native.mseRateLoss(rate.storage, ints, grad.storage, [...rate.shape]);
  return { loss, grad };
}

/** Cross-entropy of softmax(rate) against the label, averaged over N. */
export function ceRate(rate: Tensor, labels: Labels): LossResult {
  const ints = checkLossArgs('loss.ceRate', rate, labels);
  const grad = Tensor.empty(rate.shape, rate.dtype, rate.device);
  const loss = native.crossEntropyRateLoss(rate.storage, ints, grad.storage, [...rate.shape]);
  return { loss, grad };
}

/**
 * @internal a built-in loss as the training loop runs it on any device: the gradient is returned and the
 * loss added into `into` (on the rate's device, without waiting for it). labels: an int32 tensor [N] on
 * the rate's device, checked by the caller against the classes; a label out of range makes the loss NaN.
 */
export type AccumulatingLoss = (rate: Tensor, labels: Tensor, into: Accumulation) => Tensor;

function accumulating(name: string, kernel: typeof native.mseRateLoss): AccumulatingLoss {
  return (rate, labels, into) => {
    if (rate.rank !== 2 || labels.dtype !== 'int32' || labels.size !== rate.shape[0] || labels.device !== rate.device)
      fail(`${name}: rate must be [N, classes] and labels an int32 [N] tensor on its device, got ${formatShape(rate.shape)} and ${labels.dtype} ${formatShape(labels.shape)} on ${labels.device}`);
    const grad = Tensor.empty(rate.shape, rate.dtype, rate.device);
    kernel(rate.storage, labels.storage, grad.storage, [...rate.shape], into.accumulator.storage, into.slot, into.scale);
    return grad;
  };
}

/** @internal mseRate for the training loop (see AccumulatingLoss). */
export const accumulateMseRate: AccumulatingLoss = accumulating('loss.mseRate', native.mseRateLoss);
/** @internal ceRate for the training loop (see AccumulatingLoss). */
export const accumulateCeRate: AccumulatingLoss = accumulating('loss.ceRate', native.crossEntropyRateLoss);

/** Index of the largest rate per sample (the first on ties). */
export function predict(rate: Tensor): Int32Array {
  if (!(rate instanceof Tensor) || rate.rank !== 2) fail(`predict: rate must be a Tensor [N, classes], got ${describe(rate)}`);
  const [n, classes] = rate.shape as [number, number];
  const values = rate.toArray();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[i * classes + c]! > values[i * classes + best]!) best = c;
    out[i] = best;
  }
  return out;
}
