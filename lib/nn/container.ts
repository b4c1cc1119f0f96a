// Containers and the time-axis layers that turn a static input into a multi-step one and back.
import * as F from '../functional.js';
import { checkInteger, describe } from '../errors.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';
import { fail, formatShapeOf } from './util.js';

/** Runs children in order; they are named '0', '1', ... as in PyTorch. */
export class Sequential extends Module {
  private readonly layers: Module[];
  private intermediates: Tensor[] = [];
  private lastInput: Tensor | null = null;
  private lastOutput: Tensor | null = null;
  private lastTangents: Array<Tensor | null> = [];

  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => {
      if (!(m instanceof Module)) fail(`Sequential: argument ${i} must be a Module, got ${describe(m)}`);
      this.registerModule(String(i), m);
    });
    this.layers = layers;
  }

  get length(): number {
    return this.layers.length;
  }

  at(index: number): Module {
    checkInteger('Sequential.at: index', index, 0, this.layers.length - 1);
    return this.layers[index]!;
  }

  forward(x: Tensor): Tensor {
    return this.forwardFrom(x, 0);
  }

  /** @internal runs children start.. on x (a model that runs the first children itself uses this). */
  forwardFrom(x: Tensor, start: number): Tensor {
    this.releaseIntermediates();
    this.lastTangents = [];
    let y = x;
    const produced: Tensor[] = [];
    for (let i = start; i < this.layers.length; i++) {
      y = this.layers[i]!.forward(y);
      produced.push(y);
    }
    produced.pop();
    this.intermediates = produced;
    this.lastInput = x;
    this.lastOutput = y;
    return y;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    return this.backwardTo(gradOut, 0, needInputGrad);
  }

  /** @internal backward through children from the last down to `stop`; returns the gradient of child stop's input. */
  backwardTo(gradOut: Tensor, stop: number, needInputGrad: boolean): Tensor | null {
    let grad: Tensor | null = gradOut;
    for (let i = this.layers.length - 1; i >= stop; i--) {
      const next: Tensor | null = this.layers[i]!.backwardImpl(grad!, i > stop || needInputGrad);
      // Gradients between layers are ours alone: free them now instead of waiting for the GC.
      if (grad!.storage !== gradOut.storage && grad!.storage !== next?.storage) grad!.dispose();
      grad = next;
      if (!grad) break;
    }
    return grad;
  }

  override forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    return this.forwardDualFrom(x, xDot, 0);
  }

  /** @internal forwardDual over children start.. (activations and tangents are freed at the next forward). */
  forwardDualFrom(x: Tensor, xDot: Tensor | null, start: number): [Tensor, Tensor] {
    this.releaseIntermediates();
    let y = x, yDot = xDot;
    const produced: Tensor[] = [];
    for (let i = start; i < this.layers.length; i++) {
      [y, yDot] = this.layers[i]!.forwardDual(y, yDot);
      produced.push(y, yDot);
    }
    produced.splice(-2);
    this.intermediates = produced;
    this.lastInput = x;
    this.lastOutput = y;
    this.lastTangents = [xDot, yDot];
    return [y, yDot!];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    return this.backwardDualTo(dy, dyDot, 0, needInputGrad);
  }

  /** @internal backwardDual through children from the last down to `stop`. */
  backwardDualTo(dy: Tensor, dyDot: Tensor, stop: number, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    let grad: Tensor | null = dy, gradDot: Tensor | null = dyDot;
    for (let i = this.layers.length - 1; i >= stop && grad && gradDot; i--) {
      const [next, nextDot]: [Tensor | null, Tensor | null] = this.layers[i]!.backwardDual(grad, gradDot, i > stop || needInputGrad);
      // as in backwardTo: gradients between layers are ours alone (unless a layer passed a view through)
      const keep = new Set([dy.storage, dyDot.storage, next?.storage, nextDot?.storage]);
      for (const t of [grad, gradDot]) if (!keep.has(t.storage)) t.dispose();
      [grad, gradDot] = [next, nextDot];
    }
    return [grad, gradDot];
  }

  /** Frees activations of the previous forward that only the children's saved state still refers to. */
  private releaseIntermediates(): void {
    const keep = new Set([this.lastInput?.storage, this.lastOutput?.storage, ...this.lastTangents.map((t) => t?.storage)]);
    for (const t of this.intermediates) if (!keep.has(t.storage)) t.dispose();
    this.intermediates = [];
  }

  protected override clearState(): void {
    this.releaseIntermediates();
    this.lastInput = null;
    this.lastOutput = null;
    this.lastTangents = [];
  }
}

/** Direct encoding: [N, ...] -> [T, N, ...], the same input at every step. */
export class RepeatOverTime extends Module {
  readonly steps: number;
  private inputShape: readonly number[] | null = null;
  private outShape: readonly number[] | undefined;

  constructor(steps: number) {
    super();
    this.steps = checkInteger('RepeatOverTime: steps', steps, 1);
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
