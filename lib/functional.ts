// The op layer: each op is a forward that returns its output plus the context its backward needs, and a
// backward that consumes that context. Modules hold contexts; a later forward-mode (R-op) pass for
// Hessian-vector products adds tangent functions beside these without changing them.
// Callers (the nn modules) have validated shapes and dtypes.
import { native, type InputNormalisationNative, type NativeStorage, type NeuronParamsNative } from './native.js';
import { Tensor, deviceIndex, type DType, type Device } from './tensor.js';

function out(shape: readonly number[], like: { dtype: DType; device: Device }): Tensor {
  return Tensor.empty(shape, like.dtype, like.device);
}

/**
 * Where an op that computes a number (a spike count, a loss, a correct count) adds it instead of returning
 * it: accumulator[slot] += value * scale, accumulator a float64 tensor on the op's device. Nothing waits for
 * the device, so a training step on a GPU can gather its metrics there and read them once per epoch.
 */
export interface Accumulation {
  accumulator: Tensor;
  slot: number;
  scale: number;
}

/** The trailing arguments of a native op for an accumulation (none: the op returns its number). */
export function accumulationArgs(a: Accumulation | undefined): [NativeStorage, number, number] | [] {
  return a ? [a.accumulator.storage, a.slot, a.scale] : [];
}

/** Int32 labels in the memory of `device` (an upload for a CUDA device, queued without waiting). */
export function labelsOn(labels: Int32Array, device: Device): NativeStorage {
  const storage = new native.Storage(2, labels.length, false, deviceIndex(device));
  storage.write(labels);
  return storage;
}

// ---- conv2d -------------------------------------------------------------------------------------------

export interface Conv2dGeometry {
  stride: number;
  padding: number;
}

export function conv2dDims(x: Tensor, weight: Tensor, g: Conv2dGeometry): number[] {
  const [n, cin, h, w] = x.shape as [number, number, number, number];
  const [cout, , kh, kw] = weight.shape as [number, number, number, number];
  return [n, cin, h, w, cout, kh, kw, g.stride, g.padding];
}

export function conv2dOutputShape(dims: number[]): number[] {
  const [n, , h, w, cout, kh, kw, stride, pad] = dims as [number, number, number, number, number, number, number, number, number];
  return [n, cout, Math.floor((h + 2 * pad - kh) / stride) + 1, Math.floor((w + 2 * pad - kw) / stride) + 1];
}

export function conv2dForward(x: Tensor, weight: Tensor, bias: Tensor | null, g: Conv2dGeometry): Tensor {
  const dims = conv2dDims(x, weight, g);
  const y = out(conv2dOutputShape(dims), x);
  native.conv2dForward(x.storage, weight.storage, bias?.storage ?? null, y.storage, dims);
  return y;
}

/** Accumulates into dWeight/dBias; returns dx when asked for. */
export function conv2dBackward(x: Tensor, weight: Tensor, dy: Tensor, g: Conv2dGeometry, dWeight: Tensor | null,
  dBias: Tensor | null, needInputGrad: boolean): Tensor | null {
  const dims = conv2dDims(x, weight, g);
  if (dWeight) native.conv2dBackwardWeight(x.storage, dy.storage, dWeight.storage, dBias?.storage ?? null, dims);
  if (!needInputGrad) return null;
  const dx = out(x.shape, x);
  native.conv2dBackwardInput(dy.storage, weight.storage, dx.storage, dims);
  return dx;
}

// ---- linear -------------------------------------------------------------------------------------------

export function linearForward(x2d: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [batch, inF] = x2d.shape as [number, number];
  const outF = weight.shape[0]!;
  const y = out([batch, outF], x2d);
  native.linearForward(x2d.storage, weight.storage, bias?.storage ?? null, y.storage, [batch, inF, outF]);
  return y;
}

export function linearBackward(x2d: Tensor, weight: Tensor, dy2d: Tensor, dWeight: Tensor | null, dBias: Tensor | null,
  needInputGrad: boolean): Tensor | null {
  const [batch, inF] = x2d.shape as [number, number];
  const dims = [batch, inF, weight.shape[0]!];
  if (dWeight) native.linearBackwardWeight(x2d.storage, dy2d.storage, dWeight.storage, dBias?.storage ?? null, dims);
  if (!needInputGrad) return null;
  const dx = out(x2d.shape, x2d);
  native.linearBackwardInput(dy2d.storage, weight.storage, dx.storage, dims);
  return dx;
}

// ---- batchnorm ----------------------------------------------------------------------------------------

export interface BatchNormContext {
  x: Tensor;
  savedMean: Tensor;
  savedInvStd: Tensor;
  training: boolean;
  dims: number[];
}

/**
 * replicas: x stands for that many identical copies (only the unbiased running variance changes).
 * batchesTracked (training only): BatchNorm2d's num_batches_tracked, counted in the statistics' launch.
 */
export function batchNormForward(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor,
  training: boolean, momentum: number, eps: number, replicas = 1, batchesTracked: Tensor | null = null): { y: Tensor; ctx: BatchNormContext } {
  const [n, c] = x.shape as [number, number];
  const dims = [n, c, x.size / Math.max(1, n * c)];
  const y = out(x.shape, x);
  const savedMean = out([c], x), savedInvStd = out([c], x);
  native.batchNormForward(x.storage, gamma.storage, beta.storage, runningMean.storage, runningVar.storage, y.storage,
    savedMean.storage, savedInvStd.storage, dims, training, momentum, eps, replicas, batchesTracked?.storage ?? null);
  return { y, ctx: { x, savedMean, savedInvStd, training, dims } };
}

/**
 * The statistics of batchNormForward without its output (running estimates updated in training): for a
 * neuron kernel that normalises its input as it reads it (neuronPoolForward with `norm`).
 */
export function batchNormStatistics(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor,
  training: boolean, momentum: number, eps: number, replicas = 1, batchesTracked: Tensor | null = null): BatchNormContext {
  const [n, c] = x.shape as [number, number];
  const dims = [n, c, x.size / Math.max(1, n * c)];
  const savedMean = out([c], x), savedInvStd = out([c], x);
  native.batchNormForward(x.storage, gamma.storage, beta.storage, runningMean.storage, runningVar.storage, null,
    savedMean.storage, savedInvStd.storage, dims, training, momentum, eps, replicas, batchesTracked?.storage ?? null);
  return { x, savedMean, savedInvStd, training, dims };
}

export function batchNormBackward(ctx: BatchNormContext, gamma: Tensor, dy: Tensor, dGamma: Tensor, dBeta: Tensor,
  needInputGrad: boolean): Tensor | null {
  const dx = needInputGrad ? out(ctx.x.shape, ctx.x) : null;
  native.batchNormBackward(dy.storage, ctx.x.storage, gamma.storage, ctx.savedMean.storage, ctx.savedInvStd.storage,
    dx?.storage ?? null, dGamma.storage, dBeta.storage, ctx.dims, ctx.training);
  return dx;
}

// ---- max-pool -----------------------------------------------------------------------------------------

export interface MaxPoolContext {
  inputShape: readonly number[];
  argmax: NativeStorage; // int32: winning offset inside each input plane
  dims: number[];
  outShape: readonly number[];
  dtype: DType;
  device: Device;
}

export function maxPool2dForward(x: Tensor, kernel: number, stride: number): { y: Tensor; ctx: MaxPoolContext } {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const dims = [n * c, h, w, kernel, stride];
  const oh = Math.floor((h - kernel) / stride) + 1, ow = Math.floor((w - kernel) / stride) + 1;
  const y = out([n, c, oh, ow], x);
  const argmax = new native.Storage(2, n * c * oh * ow, false, deviceIndex(x.device));
  native.maxPool2dForward(x.storage, y.storage, argmax, dims);
  return { y, ctx: { inputShape: x.shape, argmax, dims, outShape: y.shape, dtype: x.dtype, device: x.device } };
}

export function maxPool2dBackward(ctx: MaxPoolContext, dy: Tensor): Tensor {
  const dx = out(ctx.inputShape, ctx);
  native.maxPool2dBackward(dy.storage, ctx.argmax, dx.storage, ctx.dims);
  return dx;
}

// ---- multi-step neurons -------------------------------------------------------------------------------

/**
 * Forward over [T, ...]: returns spikes and the membrane before reset h, all backward needs. With
 * params.staticInput, x is one step ([...]) fed at every step and the outputs are [T, ...].
 */
export function neuronForward(x: Tensor, params: NeuronParamsNative): { spikes: Tensor; h: Tensor } {
  const shape = params.staticInput ? [params.steps, ...x.shape] : x.shape;
  const spikes = out(shape, x), h = out(shape, x);
  native.neuronForward(x.storage, spikes.storage, h.storage, params);
  return { spikes, h };
}

/** With params.staticInput the input gradient is one step: the sum over T. */
export function neuronBackward(h: Tensor, dSpikes: Tensor, params: NeuronParamsNative): Tensor {
  const dx = out(params.staticInput ? h.shape.slice(1) : h.shape, h);
  native.neuronBackward(dSpikes.storage, h.storage, dx.storage, params);
  return dx;
}

// ---- neuron + max-pool, fused for training ---------------------------------------------------------------

export interface NeuronPoolContext {
  // the neuron's input (or, normalised, the BatchNorm's): backward recomputes the membrane from it, and each
  // window's maximum from the membrane's spikes, so nothing else is kept
  x: Tensor;
  params: NeuronParamsNative;
  dims: number[];
  inputShape: readonly number[];
  norm: InputNormalisationNative | null;
}

/** A BatchNorm applied by the fused kernels to the neuron's input as they read it: its parameters and statistics. */
export interface InputNormalisation {
  gamma: Tensor;
  beta: Tensor;
  stats: BatchNormContext;
}

function normalisationOf(norm: InputNormalisation | undefined): InputNormalisationNative | null {
  return norm
    ? { gamma: norm.gamma.storage, beta: norm.beta.storage, mean: norm.stats.savedMean.storage, invStd: norm.stats.savedInvStd.storage }
    : null;
}

/**
 * A multi-step neuron followed by max-pool in one pass: x is [T, N, C, H, W] (or [N, C, H, W] read at
 * every one of params.steps steps when params.staticInput). Returns the pooled spikes [T, N, C, oh, ow]
 * and the number of spikes (for firing rates) as `spikeCounts`, float64 values on x's device that add up
 * to it (partial counts, one per block of the CUDA kernel: no launch of its own adds them, and no GPU is
 * waited for; sum them where the count is needed). With `norm`, x is the input of a BatchNorm whose output
 * the neuron reads (normalised on the fly, never stored). Same numbers as the layers one after the other.
 */
export function neuronPoolForward(x: Tensor, params: NeuronParamsNative, kernel: number, stride: number,
  norm?: InputNormalisation): { pooled: Tensor; spikeCounts: Tensor; ctx: NeuronPoolContext } {
  const [n, c, h, w] = (params.staticInput ? x.shape : x.shape.slice(1)) as [number, number, number, number];
  const dims = [n * c, h, w, kernel, stride];
  const oh = Math.floor((h - kernel) / stride) + 1, ow = Math.floor((w - kernel) / stride) + 1;
  const pooled = out([params.steps, n, c, oh, ow], x);
  const n2 = normalisationOf(norm);
  const counts = native.neuronPoolForward(x.storage, pooled.storage, params, dims, n2);
  const spikeCounts = new Tensor(counts, [counts.byteLength / 8], 'float64', x.device);
  return { pooled, spikeCounts, ctx: { x, params, dims, inputShape: x.shape, norm: n2 } };
}

/**
 * The input gradient (summed over the steps for a static input) given the pooled spikes' gradient; with a
 * normalisation, the gradient of the BatchNorm's output (for its backward).
 */
export function neuronPoolBackward(ctx: NeuronPoolContext, dPooled: Tensor): Tensor {
  const dx = out(ctx.inputShape, ctx.x);
  native.neuronPoolBackward(ctx.x.storage, dPooled.storage, dx.storage, ctx.params, ctx.dims, ctx.norm);
  return dx;
}

// ---- time axis ----------------------------------------------------------------------------------------

/** [N, ...] -> [T, N, ...], each step a copy times scale. */
export function repeatOverTime(x: Tensor, steps: number, scale = 1): Tensor {
  const y = out([steps, ...x.shape], x);
  native.repeatLeading(x.storage, y.storage, [steps, x.size], scale);
  return y;
}

/** [T, N, ...] -> [N, ...], scale times the sum over T (scale 1/T: the mean). */
export function sumOverTime(x: Tensor, scale = 1): Tensor {
  const steps = x.shape[0]!;
  const y = out(x.shape.slice(1), x);
  native.sumLeading(x.storage, y.storage, [steps, x.size / steps], scale);
  return y;
}

/** Sets every tensor to zero: one native call per device (one launch on a GPU for every 16 tensors, not a memset each). */
export function zeroAll(tensors: readonly Tensor[], op = 'zeroAll'): void {
  const byDevice = new Map<Device, NativeStorage[]>();
  for (const t of tensors) {
    t.checkAlive(op);
    const list = byDevice.get(t.device) ?? [];
    list.push(t.storage);
    byDevice.set(t.device, list);
  }
  for (const storages of byDevice.values()) native.zeroAll(storages);
}

// ---- forward-mode (R-op) tangents -----------------------------------------------------------------------
// Convolution and linear layers are bilinear in (input, weight), so their tangents reuse the kernels above:
// yDot = f(xDot, W) + f(x, WDot). Tensors given as null stand for zeros.

/** a += b (same element count) */
export function addInto(a: Tensor, b: Tensor): Tensor {
  native.axpy(b.storage, a.storage, 1);
  return a;
}

export function conv2dForwardTangent(x: Tensor, xDot: Tensor | null, weight: Tensor, weightDot: Tensor | null,
  biasDot: Tensor | null, g: Conv2dGeometry): Tensor {
  const dims = conv2dDims(x, weight, g);
  const yDot = Tensor.zeros(conv2dOutputShape(dims), x.dtype, x.device);
  if (weightDot || biasDot) {
    const w = weightDot ?? Tensor.zeros(weight.shape, weight.dtype, weight.device);
    native.conv2dForward(x.storage, w.storage, biasDot?.storage ?? null, yDot.storage, dims);
    if (w !== weightDot) w.dispose();
  }
  if (xDot) {
    const part = conv2dForward(xDot, weight, null, g);
    addInto(yDot, part);
    part.dispose();
  }
  return yDot;
}

/**
 * Tangent of conv2dBackward: dWDot += conv2dBackwardWeight(x, dyDot) + conv2dBackwardWeight(xDot, dy),
 * dbDot += sum(dyDot); dxDot = backwardInput(dyDot, W) + backwardInput(dy, WDot). Returns [dx, dxDot].
 */
export function conv2dBackwardTangent(x: Tensor, xDot: Tensor | null, weight: Tensor, weightDot: Tensor | null,
  dy: Tensor, dyDot: Tensor, g: Conv2dGeometry, dWeightDot: Tensor, dBiasDot: Tensor | null,
  needInputGrad: boolean): [Tensor | null, Tensor | null] {
  const dims = conv2dDims(x, weight, g);
  native.conv2dBackwardWeight(x.storage, dyDot.storage, dWeightDot.storage, dBiasDot?.storage ?? null, dims);
  if (xDot) native.conv2dBackwardWeight(xDot.storage, dy.storage, dWeightDot.storage, null, dims);
  if (!needInputGrad) return [null, null];
  const dx = out(x.shape, x), dxDot = out(x.shape, x);
  native.conv2dBackwardInput(dy.storage, weight.storage, dx.storage, dims);
  native.conv2dBackwardInput(dyDot.storage, weight.storage, dxDot.storage, dims);
  if (weightDot) {
    const part = out(x.shape, x);
    native.conv2dBackwardInput(dy.storage, weightDot.storage, part.storage, dims);
    addInto(dxDot, part);
    part.dispose();
  }
  return [dx, dxDot];
}

export function linearForwardTangent(x2d: Tensor, xDot2d: Tensor | null, weight: Tensor, weightDot: Tensor | null,
  biasDot: Tensor | null): Tensor {
  const [batch, inF] = x2d.shape as [number, number];
  const outF = weight.shape[0]!;
  const yDot = Tensor.zeros([batch, outF], x2d.dtype, x2d.device);
  if (weightDot || biasDot) {
    const w = weightDot ?? Tensor.zeros(weight.shape, weight.dtype, weight.device);
    native.linearForward(x2d.storage, w.storage, biasDot?.storage ?? null, yDot.storage, [batch, inF, outF]);
    if (w !== weightDot) w.dispose();
  }
  if (xDot2d) {
    const part = linearForward(xDot2d, weight, null);
    addInto(yDot, part);
    part.dispose();
  }
  return yDot;
}

export function linearBackwardTangent(x2d: Tensor, xDot2d: Tensor | null, weight: Tensor, weightDot: Tensor | null,
  dy2d: Tensor, dyDot2d: Tensor, dWeightDot: Tensor, dBiasDot: Tensor | null, needInputGrad: boolean): [Tensor | null, Tensor | null] {
  const [batch, inF] = x2d.shape as [number, number];
  const dims = [batch, inF, weight.shape[0]!];
  native.linearBackwardWeight(x2d.storage, dyDot2d.storage, dWeightDot.storage, dBiasDot?.storage ?? null, dims);
  if (xDot2d) native.linearBackwardWeight(xDot2d.storage, dy2d.storage, dWeightDot.storage, null, dims);
  if (!needInputGrad) return [null, null];
  const dx = out(x2d.shape, x2d), dxDot = out(x2d.shape, x2d);
  native.linearBackwardInput(dy2d.storage, weight.storage, dx.storage, dims);
  native.linearBackwardInput(dyDot2d.storage, weight.storage, dxDot.storage, dims);
  if (weightDot) {
    const part = out(x2d.shape, x2d);
    native.linearBackwardInput(dy2d.storage, weightDot.storage, part.storage, dims);
    addInto(dxDot, part);
    part.dispose();
  }
  return [dx, dxDot];
}

export function batchNormForwardTangent(ctx: BatchNormContext, xDot: Tensor, gamma: Tensor, gammaDot: Tensor | null,
  betaDot: Tensor | null): Tensor {
  const yDot = out(ctx.x.shape, ctx.x);
  native.batchNormForwardTangent(ctx.x.storage, xDot.storage, gamma.storage, gammaDot?.storage ?? null, betaDot?.storage ?? null,
    ctx.savedMean.storage, ctx.savedInvStd.storage, yDot.storage, ctx.dims, ctx.training);
  return yDot;
}

export function batchNormBackwardTangent(ctx: BatchNormContext, xDot: Tensor, gamma: Tensor, gammaDot: Tensor | null,
  dy: Tensor, dyDot: Tensor, dGammaDot: Tensor, dBetaDot: Tensor): [Tensor, Tensor] {
  const dx = out(ctx.x.shape, ctx.x), dxDot = out(ctx.x.shape, ctx.x);
  native.batchNormBackwardTangent(ctx.x.storage, xDot.storage, gamma.storage, gammaDot?.storage ?? null, ctx.savedMean.storage,
    ctx.savedInvStd.storage, dy.storage, dyDot.storage, dx.storage, dxDot.storage, dGammaDot.storage, dBetaDot.storage,
    ctx.dims, ctx.training);
  return [dx, dxDot];
}

/** Max-pool's tangent: the input tangent at each window's argmax. */
export function maxPool2dForwardTangent(ctx: MaxPoolContext, xDot: Tensor): Tensor {
  const yDot = out(ctx.outShape, ctx);
  native.maxPool2dGather(xDot.storage, ctx.argmax, yDot.storage, ctx.dims);
  return yDot;
}

export function neuronForwardTangent(h: Tensor, xDot: Tensor, params: NeuronParamsNative): { hDot: Tensor; sDot: Tensor } {
  const hDot = out(h.shape, h), sDot = out(h.shape, h);
  native.neuronForwardTangent(h.storage, xDot.storage, hDot.storage, sDot.storage, params);
  return { hDot, sDot };
}

export function neuronBackwardTangent(h: Tensor, hDot: Tensor, dSpikes: Tensor, dSpikesDot: Tensor,
  params: NeuronParamsNative): [Tensor, Tensor] {
  const shape = params.staticInput ? h.shape.slice(1) : h.shape;
  const dx = out(shape, h), dxDot = out(shape, h);
  native.neuronBackwardTangent(h.storage, hDot.storage, dSpikes.storage, dSpikesDot.storage, dx.storage, dxDot.storage, params);
  return [dx, dxDot];
}
