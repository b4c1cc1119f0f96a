// Stateless layers. Multi-step inputs [T, N, ...] are folded to [T*N, ...] (SpikingJelly's multi-step
// mode), so Conv2d, BatchNorm2d and MaxPool2d take rank 4 ([N, C, H, W]) or rank 5 ([T, N, C, H, W]).
import * as F from '../functional.js';
import { checkBoolean, checkFiniteNumber, checkInteger, describe } from '../errors.js';
import { defaultGenerator } from '../random.js';
import { Parameter, Tensor, type DType, type Device } from '../tensor.js';
import { Module } from './module.js';
import { settings } from './format.js';
import { fail, formatShapeOf, moduleOptions, type FactoryOptions } from './util.js';

/** dtype and device for String(model), shown when they are not the defaults (float32 on the CPU). */
function placement(dtype: DType, device: Device): { dtype?: DType; device?: Device } {
  return { ...(dtype !== 'float32' ? { dtype } : {}), ...(device !== 'cpu' ? { device } : {}) };
}

/** Uniform(-bound, bound) parameter from the default generator (PyTorch's default layer init). */
function uniformParameter(shape: number[], bound: number, dtype: DType, device: Device): Parameter {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (2 * defaultGenerator.uniform() - 1) * bound;
  const p = Parameter.fromTensor(Tensor.empty(shape, dtype, device));
  p.copyFrom(values);
  p.gradBuffer();
  return p;
}

function constantParameter(shape: number[], value: number, dtype: DType, device: Device): Parameter {
  const p = Parameter.fromTensor(Tensor.zeros(shape, dtype, device).fill(value));
  p.gradBuffer();
  return p;
}

/** The buffer a Hessian-vector product accumulates this parameter's part of H v into. */
export function gradTangentBuffer(p: Parameter): Tensor {
  if (!p.gradTangent) p.gradTangent = Tensor.zeros(p.shape, p.dtype, p.device);
  return p.gradTangent;
}

/** Folds [T, N, ...rest] to [T*N, ...rest] when x has one more dimension than the layer's own rank. */
function foldTime(x: Tensor, rank: number, who: string): { folded: Tensor; lead: number[] | null } {
  if (x.rank === rank) return { folded: x, lead: null };
  if (x.rank === rank + 1) return { folded: x.reshape([x.shape[0]! * x.shape[1]!, ...x.shape.slice(2)]), lead: [x.shape[0]!, x.shape[1]!] };
  return fail(`${who}.forward: input must have rank ${rank} ([N, ...]) or ${rank + 1} ([T, N, ...]), got shape ${formatShapeOf(x.shape)}`);
}

function unfoldTime(y: Tensor, lead: number[] | null): Tensor {
  return lead ? y.reshape([...lead, ...y.shape.slice(1)]) : y;
}

function pair(name: string, value: unknown): [number, number] {
  if (Array.isArray(value) && value.length === 2) return [checkInteger(name, value[0], 1), checkInteger(name, value[1], 1)];
  const v = checkInteger(name, value, 1);
  return [v, v];
}

export interface Conv2dOptions extends FactoryOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: number;
  readonly padding: number;
  readonly dtype: DType;
  readonly device: Device;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private saved: { x: Tensor; outShape: readonly number[]; lead: number[] | null } | null = null;
  private savedDual: { x: Tensor; xDot: Tensor | null; lead: number[] | null } | null = null;

  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], options: Conv2dOptions = {}) {
    super();
    const o = moduleOptions('Conv2d', options, ['stride', 'padding', 'bias']);
    this.inChannels = checkInteger('Conv2d: inChannels', inChannels, 1);
    this.outChannels = checkInteger('Conv2d: outChannels', outChannels, 1);
    this.kernelSize = pair('Conv2d: kernelSize', kernelSize);
    this.stride = o.stride === undefined ? 1 : checkInteger('Conv2d: stride', o.stride, 1);
    this.padding = o.padding === undefined ? 0 : checkInteger('Conv2d: padding', o.padding, 0);
    const hasBias = o.bias === undefined ? true : checkBoolean('Conv2d: bias', o.bias);
    this.dtype = o.dtype;
    this.device = o.device;
    const fanIn = this.inChannels * this.kernelSize[0] * this.kernelSize[1];
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.registerParameter('weight', uniformParameter([this.outChannels, this.inChannels, ...this.kernelSize], bound, this.dtype, this.device));
    this.bias = hasBias ? this.registerParameter('bias', uniformParameter([this.outChannels], bound, this.dtype, this.device)) : null;
  }

  override extraRepr(): string {
    const [kh, kw] = this.kernelSize;
    return settings({ kernelSize: kh === kw ? kh : this.kernelSize, stride: this.stride, padding: this.padding, bias: this.bias !== null,
      ...placement(this.dtype, this.device) }, [this.inChannels, this.outChannels]);
  }

  forward(input: Tensor): Tensor {
    const { folded: x, lead } = foldTime(this.checkInput(input, this.dtype, this.device), 4, 'Conv2d');
    if (x.shape[1] !== this.inChannels)
      fail(`Conv2d.forward: input has ${x.shape[1]} channels (shape ${formatShapeOf(input.shape)}), expected inChannels = ${this.inChannels}`);
    const [h, w] = [x.shape[2]!, x.shape[3]!];
    if (h + 2 * this.padding < this.kernelSize[0] || w + 2 * this.padding < this.kernelSize[1])
      fail(`Conv2d.forward: input ${h}x${w} (padding ${this.padding}) is smaller than the kernel ${this.kernelSize.join('x')}`);
    const y = unfoldTime(F.conv2dForward(x, this.weight, this.bias, this), lead);
    this.saved = { x, outShape: y.shape, lead };
    this.savedDual = null; // forwardDual sets it again after this
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.saved?.outShape, this.dtype);
    const { x, lead } = this.saved!;
    const folded = lead ? dy.reshape([x.shape[0]!, ...dy.shape.slice(2)]) : dy;
    const dx = F.conv2dBackward(x, this.weight, folded, this, this.weight.gradBuffer(), this.bias?.gradBuffer() ?? null, needInputGrad);
    return dx && unfoldTime(dx, lead);
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(input);
    const { x, lead } = this.saved!;
    const xDot = inputDot && (lead ? inputDot.reshape(x.shape) : inputDot);
    const yDot = F.conv2dForwardTangent(x, xDot, this.weight, this.weight.tangent, this.bias?.tangent ?? null, this);
    this.savedDual = { x, xDot, lead };
    return [y, unfoldTime(yDot, lead)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    this.checkGradOut(dy, this.saved?.outShape, this.dtype);
    const { x, xDot, lead } = this.savedDual!;
    const fold = (t: Tensor): Tensor => (lead ? t.reshape([x.shape[0]!, ...t.shape.slice(2)]) : t);
    const [dx, dxDot] = F.conv2dBackwardTangent(x, xDot, this.weight, this.weight.tangent, fold(dy), fold(dyDot), this,
      gradTangentBuffer(this.weight), this.bias ? gradTangentBuffer(this.bias) : null, needInputGrad);
    return [dx && unfoldTime(dx, lead), dxDot && unfoldTime(dxDot, lead)];
  }

  protected override clearState(): void {
    this.saved = null;
    this.savedDual = null;
  }
}

export interface LinearOptions extends FactoryOptions {
  bias?: boolean;
}

/** y = x W^T + b over the last dimension; any leading dimensions ([N, in] or [T, N, in]). */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly dtype: DType;
  readonly device: Device;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private saved: { x2d: Tensor; outShape: readonly number[] } | null = null;
  private savedDual: { xDot2d: Tensor | null } | null = null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    const o = moduleOptions('Linear', options, ['bias']);
    this.inFeatures = checkInteger('Linear: inFeatures', inFeatures, 1);
    this.outFeatures = checkInteger('Linear: outFeatures', outFeatures, 1);
    const hasBias = o.bias === undefined ? true : checkBoolean('Linear: bias', o.bias);
    this.dtype = o.dtype;
    this.device = o.device;
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.weight = this.registerParameter('weight', uniformParameter([this.outFeatures, this.inFeatures], bound, this.dtype, this.device));
    this.bias = hasBias ? this.registerParameter('bias', uniformParameter([this.outFeatures], bound, this.dtype, this.device)) : null;
  }

  override extraRepr(): string {
    return settings({ inFeatures: this.inFeatures, outFeatures: this.outFeatures, bias: this.bias !== null, ...placement(this.dtype, this.device) });
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.dtype, this.device);
    if (x.rank < 2 || x.shape[x.rank - 1] !== this.inFeatures)
      fail(`Linear.forward: input must be [..., ${this.inFeatures}] (inFeatures), got shape ${formatShapeOf(x.shape)}`);
    const x2d = x.reshape([-1, this.inFeatures]);
    const y = F.linearForward(x2d, this.weight, this.bias).reshape([...x.shape.slice(0, -1), this.outFeatures]);
    this.saved = { x2d, outShape: y.shape };
    this.savedDual = null; // forwardDual sets it again after this
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.saved?.outShape, this.dtype);
    const { x2d } = this.saved!;
    const dx = F.linearBackward(x2d, this.weight, dy.reshape([-1, this.outFeatures]), this.weight.gradBuffer(),
      this.bias?.gradBuffer() ?? null, needInputGrad);
    return dx && dx.reshape([...dy.shape.slice(0, -1), this.inFeatures]);
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(input);
    const { x2d } = this.saved!;
    const xDot2d = inputDot && inputDot.reshape([-1, this.inFeatures]);
    const yDot = F.linearForwardTangent(x2d, xDot2d, this.weight, this.weight.tangent, this.bias?.tangent ?? null);
    this.savedDual = { xDot2d };
    return [y, yDot.reshape(y.shape)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    this.checkGradOut(dy, this.saved?.outShape, this.dtype);
    const { x2d } = this.saved!;
    const lead = dy.shape.slice(0, -1);
    const [dx, dxDot] = F.linearBackwardTangent(x2d, this.savedDual!.xDot2d, this.weight, this.weight.tangent,
      dy.reshape([-1, this.outFeatures]), dyDot.reshape([-1, this.outFeatures]), gradTangentBuffer(this.weight),
      this.bias ? gradTangentBuffer(this.bias) : null, needInputGrad);
    return [dx && dx.reshape([...lead, this.inFeatures]), dxDot && dxDot.reshape([...lead, this.inFeatures])];
  }

  protected override clearState(): void {
    this.saved = null;
    this.savedDual = null;
  }
}

export interface BatchNorm2dOptions extends FactoryOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running estimate; null: cumulative average. */
  momentum?: number | null;
  affine?: boolean;
}

/** BatchNorm over channels of [N, C, H, W] (or [T, N, C, H, W], statistics over T*N*H*W). */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly dtype: DType;
  readonly device: Device;
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  private saved: { ctx: F.BatchNormContext; outShape: readonly number[]; lead: number[] | null } | null = null;
  private savedDual: { xDot: Tensor } | null = null;

  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super();
    const o = moduleOptions('BatchNorm2d', options, ['eps', 'momentum', 'affine']);
    this.numFeatures = checkInteger('BatchNorm2d: numFeatures', numFeatures, 1);
    this.eps = o.eps === undefined ? 1e-5 : checkFiniteNumber('BatchNorm2d: eps', o.eps);
    if (this.eps <= 0) fail(`BatchNorm2d: eps must be positive, got ${this.eps}`);
    if (o.momentum === null) this.momentum = null;
    else {
      this.momentum = o.momentum === undefined ? 0.1 : checkFiniteNumber('BatchNorm2d: momentum', o.momentum);
      if (this.momentum < 0 || this.momentum > 1) fail(`BatchNorm2d: momentum must be in [0, 1] or null, got ${this.momentum}`);
    }
    if (o.affine !== undefined && o.affine !== true) fail(`BatchNorm2d: affine must be true (affine=false is not supported), got ${describe(o.affine)}`);
    this.dtype = o.dtype;
    this.device = o.device;
    const c = this.numFeatures;
    this.weight = this.registerParameter('weight', constantParameter([c], 1, this.dtype, this.device));
    this.bias = this.registerParameter('bias', constantParameter([c], 0, this.dtype, this.device));
    this.runningMean = this.registerBuffer('running_mean', Tensor.zeros([c], this.dtype, this.device));
    this.runningVar = this.registerBuffer('running_var', Tensor.zeros([c], this.dtype, this.device).fill(1));
    // PyTorch keeps an int64 scalar; ikun keeps it as a float64 scalar (exact up to 2^53), whatever the
    // module's dtype.
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', Tensor.zeros([], 'float64', this.device), { fixedDType: true });
  }

  override extraRepr(): string {
    return settings({ eps: this.eps, momentum: this.momentum, affine: true, ...placement(this.dtype, this.device) }, [this.numFeatures]);
  }

  forward(input: Tensor): Tensor {
    return this.forwardReplicated(input, 1);
  }

  /**
   * @internal forward for an input that stands for `replicas` identical copies (the first block of a
   * network fed one static image at every time step): the same outputs as running on the copies, and a
   * backward that, given the gradient summed over the copies, returns the input gradient summed likewise.
   */
  forwardReplicated(input: Tensor, replicas: number): Tensor {
    const { x, lead, momentum } = this.prepare(input, replicas);
    const { y, ctx } = F.batchNormForward(x, this.weight, this.bias, this.runningMean, this.runningVar, this.training, momentum,
      this.eps, replicas, this.batchCounter());
    const out = unfoldTime(y, lead);
    this.releaseSaved(); // also forgets the tangent state; forwardDual sets it again after this
    this.saved = { ctx, outShape: out.shape, lead };
    return out;
  }

  /**
   * @internal forwardReplicated without the output: the statistics (and, training, the running estimates and
   * the batch count) for a fused neuron kernel that normalises its input as it reads it. backward then takes
   * the gradient of the output that was never stored (its shape is the input's).
   */
  forwardStatistics(input: Tensor, replicas: number): F.BatchNormContext {
    const { x, lead, momentum } = this.prepare(input, replicas);
    const ctx = F.batchNormStatistics(x, this.weight, this.bias, this.runningMean, this.runningVar, this.training, momentum, this.eps,
      replicas, this.batchCounter());
    this.releaseSaved();
    this.saved = { ctx, outShape: input.shape, lead };
    return ctx;
  }

  /**
   * In training, num_batches_tracked: the statistics kernel counts the batch in it, without a launch of its
   * own and without reading it (on a GPU a read would wait for the device).
   */
  private batchCounter(): Tensor | null {
    return this.training ? this.numBatchesTracked : null;
  }

  /** Checks the input; the momentum of this forward (the batch is counted by the forward that follows). */
  private prepare(input: Tensor, replicas: number): { x: Tensor; lead: number[] | null; momentum: number } {
    const { folded: x, lead } = foldTime(this.checkInput(input, this.dtype, this.device), 4, 'BatchNorm2d');
    if (x.shape[1] !== this.numFeatures)
      fail(`BatchNorm2d.forward: input has ${x.shape[1]} channels (shape ${formatShapeOf(input.shape)}), expected numFeatures = ${this.numFeatures}`);
    let momentum = 0;
    if (this.training) {
      if ((x.size * replicas) / this.numFeatures < 2)
        fail(`BatchNorm2d.forward: training needs more than one value per channel, got input shape ${formatShapeOf(input.shape)}`);
      // the cumulative average (momentum null) needs the count including this batch: the one case that reads it
      momentum = this.momentum ?? 1 / (Math.round(this.numBatchesTracked.item()) + 1);
    }
    return { x, lead, momentum };
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.saved?.outShape, this.dtype);
    const { ctx, lead } = this.saved!;
    const dx = F.batchNormBackward(ctx, this.weight, dy, this.weight.gradBuffer(), this.bias.gradBuffer(), needInputGrad);
    return dx && unfoldTime(dx, lead);
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    return this.forwardReplicatedDual(input, inputDot, 1);
  }

  /** @internal forwardDual for an input standing for `replicas` identical copies (see forwardReplicated). */
  forwardReplicatedDual(input: Tensor, inputDot: Tensor | null, replicas: number): [Tensor, Tensor] {
    const y = this.forwardReplicated(input, replicas);
    const { ctx, lead } = this.saved!;
    const xDot = inputDot ? inputDot.reshape(ctx.x.shape) : Tensor.zeros(ctx.x.shape, this.dtype, this.device);
    const yDot = F.batchNormForwardTangent(ctx, xDot, this.weight, this.weight.tangent, this.bias.tangent);
    this.savedDual = { xDot };
    return [y, unfoldTime(yDot, lead)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    this.checkGradOut(dy, this.saved?.outShape, this.dtype);
    const { ctx, lead } = this.saved!;
    const [dx, dxDot] = F.batchNormBackwardTangent(ctx, this.savedDual!.xDot, this.weight, this.weight.tangent,
      dy.reshape(ctx.x.shape), dyDot.reshape(ctx.x.shape), gradTangentBuffer(this.weight), gradTangentBuffer(this.bias));
    if (!needInputGrad) {
      dx.dispose();
      dxDot.dispose();
      return [null, null];
    }
    return [unfoldTime(dx, lead), unfoldTime(dxDot, lead)];
  }

  private releaseSaved(): void {
    this.savedDual = null;
    this.saved?.ctx.savedMean.dispose();
    this.saved?.ctx.savedInvStd.dispose();
  }

  protected override clearState(): void {
    this.releaseSaved();
    this.saved = null;
  }
}

export interface MaxPool2dOptions {
  stride?: number;
}

/** Max-pool without padding; the gradient goes to the first maximum of each window (row-major), as PyTorch. */
export class MaxPool2d extends Module {
  readonly kernelSize: number;
  readonly stride: number;
  private saved: { ctx: F.MaxPoolContext; outShape: readonly number[]; lead: number[] | null; dtype: DType } | null = null;

  constructor(kernelSize: number, options: MaxPool2dOptions = {}) {
    super();
    this.kernelSize = checkInteger('MaxPool2d: kernelSize', kernelSize, 1);
    const o = moduleOptions('MaxPool2d', options, ['stride']);
    this.stride = o.stride === undefined ? this.kernelSize : checkInteger('MaxPool2d: stride', o.stride, 1);
  }

  override extraRepr(): string {
    return settings({ kernelSize: this.kernelSize, stride: this.stride });
  }

  forward(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) fail(`MaxPool2d.forward: input must be a Tensor, got ${describe(input)}`);
    input.checkAlive('MaxPool2d.forward');
    const { folded: x, lead } = foldTime(input, 4, 'MaxPool2d');
    if (x.shape[2]! < this.kernelSize || x.shape[3]! < this.kernelSize)
      fail(`MaxPool2d.forward: input ${x.shape[2]}x${x.shape[3]} is smaller than the kernel ${this.kernelSize}`);
    const { y, ctx } = F.maxPool2dForward(x, this.kernelSize, this.stride);
    const out = unfoldTime(y, lead);
    this.saved?.ctx.argmax.dispose();
    this.saved = { ctx, outShape: out.shape, lead, dtype: x.dtype };
    return out;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.saved?.outShape, this.saved?.dtype ?? 'float32');
    if (!needInputGrad) return null;
    const { ctx, lead } = this.saved!;
    return unfoldTime(F.maxPool2dBackward(ctx, dy), lead);
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(input);
    const { ctx, lead } = this.saved!;
    const yDot = inputDot
      ? F.maxPool2dForwardTangent(ctx, inputDot.reshape(ctx.inputShape))
      : Tensor.zeros(ctx.outShape, ctx.dtype, ctx.device);
    return [y, unfoldTime(yDot, lead)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    const dx = this.backwardImpl(dy, needInputGrad);
    if (!dx) return [null, null];
    const { ctx, lead } = this.saved!;
    return [dx, unfoldTime(F.maxPool2dBackward(ctx, dyDot.reshape(ctx.outShape)), lead)];
  }

  protected override clearState(): void {
    this.saved?.ctx.argmax.dispose();
    this.saved = null;
  }
}

export interface FlattenOptions {
  /** First dimension to flatten (default 1: [N, ...] -> [N, rest]; use 2 for multi-step [T, N, ...]). */
  startDim?: number;
}

/** Flattens dimensions startDim.. into one (a view, no copy). */
export class Flatten extends Module {
  readonly startDim: number;
  private inputShape: readonly number[] | null = null;
  private outShape: readonly number[] | undefined;

  constructor(options: FlattenOptions = {}) {
    super();
    const o = moduleOptions('Flatten', options, ['startDim']);
    this.startDim = o.startDim === undefined ? 1 : checkInteger('Flatten: startDim', o.startDim, 0);
  }

  override extraRepr(): string {
    return settings({ startDim: this.startDim });
  }

  forward(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) fail(`Flatten.forward: input must be a Tensor, got ${describe(input)}`);
    if (input.rank < this.startDim + 1)
      fail(`Flatten.forward: startDim ${this.startDim} needs an input of rank >= ${this.startDim + 1}, got shape ${formatShapeOf(input.shape)}`);
    this.inputShape = input.shape;
    const y = input.reshape([...input.shape.slice(0, this.startDim), -1]);
    this.outShape = y.shape;
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.outShape, gradOut instanceof Tensor ? gradOut.dtype : 'float32');
    return needInputGrad ? dy.reshape(this.inputShape!) : null;
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(input);
    return [y, inputDot ? inputDot.reshape(y.shape) : Tensor.zeros(y.shape, y.dtype, y.device)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    const dx = this.backwardImpl(dy, needInputGrad);
    return dx ? [dx, dyDot.reshape(this.inputShape!)] : [null, null];
  }

  protected override clearState(): void {
    this.inputShape = null;
    this.outShape = undefined;
  }
}
