// Adam and AdamW with PyTorch's update rules, run in native code.
import { native, type NativeStorage } from '../native.js';
import { checkKnownKeys, checkOptionsObject, describe, fail } from '../errors.js';
import { Parameter, Tensor, type Device } from '../tensor.js';
import { checkNonNegative, checkPositive, checkUnitInterval } from './checks.js';
import { Optimizer, type HyperParameters, type ParameterList } from './optimizer.js';
export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam: L2 weight decay through the gradient, bias-corrected moments. */
export class Adam extends Optimizer {
  beta1 = 0.9;
  beta2 = 0.999;
  eps = 1e-8;
  weightDecay = 0;

  constructor(params: ParameterList, options: AdamOptions = {}) {
    super(params);
    const where = this.kind;
    const o = checkOptionsObject(`${where} options`, options);
    checkKnownKeys(`${where} options`, o, ['lr', 'betas', 'eps', 'weightDecay']);
    const betas = o.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2)
      fail(`${where}: betas must be an array of two numbers in [0, 1), got ${describe(betas)}`);
    this.applyHyper({
      lr: o.lr ?? 1e-3, beta1: betas[0], beta2: betas[1], eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? this.defaultWeightDecay,
    }, where);
  }

  override get kind(): string {
    return 'Adam';
  }

  /** AdamW: weight decay applied to the parameter (p *= 1 - lr * weightDecay) instead of through the gradient. */
  protected get decoupled(): boolean {
    return false;
  }

  protected get defaultWeightDecay(): number {
    return 0;
  }

  /** 'step': this parameter's own update count, as PyTorch keeps it (a float64 scalar). */
  protected get stateNames(): readonly string[] {
    return ['exp_avg', 'exp_avg_sq', 'step'];
  }

  // The step count lives in host memory whatever the parameter's device (as PyTorch keeps it on the CPU):
  // bias corrections are computed on the host, and reading it never waits for a GPU.
  protected override stateLayout(suffix: string, p: Parameter): { shape: readonly number[]; dtype: Parameter['dtype']; device: Device } {
    return suffix === 'step' ? { shape: [], dtype: 'float64', device: 'cpu' } : { shape: p.shape, dtype: p.dtype, device: p.device };
  }

  protected hyperValues(): HyperParameters {
    return { lr: this._lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
  }

  protected applyHyper(h: Record<string, unknown>, where: string): void {
    const lr = checkNonNegative(`${where}: lr`, h.lr);
    const beta1 = checkUnitInterval(`${where}: betas[0]`, h.beta1);
    const beta2 = checkUnitInterval(`${where}: betas[1]`, h.beta2);
    const eps = checkPositive(`${where}: eps`, h.eps);
    const weightDecay = checkNonNegative(`${where}: weightDecay`, h.weightDecay);
    this._lr = lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
  }

  protected update(updates: ReadonlyArray<{ index: number; param: Parameter; grad: Tensor }>): void {
    const m: NativeStorage[] = [], v: NativeStorage[] = [], steps: number[] = [];
    for (const { index, param } of updates) {
      const [expAvg, expAvgSq, stepCount] = this.stateOf(index, param).tensors as [Tensor, Tensor, Tensor];
      // Bias correction uses this parameter's own count (PyTorch): it differs from the optimizer's step
      // count when a parameter had no gradient on some steps.
      const step = Math.round(stepCount.item()) + 1;
      stepCount.copyFrom([step]);
      m.push(expAvg.storage);
      v.push(expAvgSq.storage);
      steps.push(step);
    }
    native.adamStep(updates.map((u) => u.param.storage), updates.map((u) => u.grad.storage), m, v, steps, {
      lr: this._lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay,
      decoupledWeightDecay: this.decoupled,
    });
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2). */
export class AdamW extends Adam {
  override get kind(): string {
    return 'AdamW';
  }

  protected override get decoupled(): boolean {
    return true;
  }

  protected override get defaultWeightDecay(): number {
    return 1e-2;
  }
}
