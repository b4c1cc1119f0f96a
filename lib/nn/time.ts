// The time-axis layers that turn a static input into a multi-step one ([N, ...] -> [T, N, ...]) and a
// multi-step output into a firing rate ([T, N, ...] -> [N, ...]).
import * as F from '../functional.js';
import { checkInteger, describe } from '../errors.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';
import { settings } from './format.js';
import { fail, formatShapeOf } from './util.js';

/** Direct encoding: [N, ...] -> [T, N, ...], the same input at every step. */
export class RepeatOverTime extends Module {
  readonly steps: number;
  private inputShape: readonly number[] | null = null;
  private outShape: readonly number[] | undefined;

  constructor(steps: number) {
    super();
    this.steps = checkInteger('RepeatOverTime: steps', steps, 1);
  }

  override extraRepr(): string {
    return settings({ steps: this.steps });
  }

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) fail(`RepeatOverTime.forward: input must be a Tensor, got ${describe(x)}`);
    x.checkAlive('RepeatOverTime.forward');
    this.inputShape = x.shape;
    const y = F.repeatOverTime(x, this.steps);
    this.outShape = y.shape;
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.outShape, gradOut instanceof Tensor ? gradOut.dtype : 'float32');
    return needInputGrad ? F.sumOverTime(dy).reshape(this.inputShape!) : null;
  }

  override forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(x);
    return [y, xDot ? F.repeatOverTime(xDot, this.steps) : Tensor.zeros(y.shape, y.dtype, y.device)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    const dx = this.backwardImpl(dy, needInputGrad);
    return dx ? [dx, F.sumOverTime(dyDot).reshape(this.inputShape!)] : [null, null];
  }

  protected override clearState(): void {
    this.inputShape = null;
    this.outShape = undefined;
  }
}

/** Firing rate: the mean over T of [T, N, ...] -> [N, ...]. */
export class MeanOverTime extends Module {
  private outShape: readonly number[] | undefined;
  private steps = 0;

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) fail(`MeanOverTime.forward: input must be a Tensor, got ${describe(x)}`);
    x.checkAlive('MeanOverTime.forward');
    if (x.rank < 2) fail(`MeanOverTime.forward: input must be [T, N, ...], got shape ${formatShapeOf(x.shape)}`);
    this.steps = x.shape[0]!;
    const y = F.sumOverTime(x, 1 / this.steps);
    this.outShape = y.shape;
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.outShape, gradOut instanceof Tensor ? gradOut.dtype : 'float32');
    return needInputGrad ? F.repeatOverTime(dy, this.steps, 1 / this.steps) : null;
  }

  override forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    const y = this.forward(x);
    return [y, xDot ? F.sumOverTime(xDot, 1 / this.steps) : Tensor.zeros(y.shape, y.dtype, y.device)];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    const dx = this.backwardImpl(dy, needInputGrad);
    return dx ? [dx, F.repeatOverTime(dyDot, this.steps, 1 / this.steps)] : [null, null];
  }

  protected override clearState(): void {
    this.outShape = undefined;
  }
}
