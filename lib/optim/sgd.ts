// SGD with PyTorch's update rule (momentum, dampening, Nesterov, weight decay), run in native code.
import { native, type NativeStorage } from '../native.js';
import { checkKnownKeys, checkOptionsObject, fail } from '../errors.js';
import { Parameter, Tensor } from '../tensor.js';
import { checkBool, checkFinite, checkNonNegative, withDefaults } from './checks.js';
import { Optimizer, type HyperParameters, type ParameterList } from './optimizer.js';
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD: L2 weight decay through the gradient, momentum buffer started at the first gradient. */
export class SGD extends Optimizer {
  momentum = 0;
  dampening = 0;
  weightDecay = 0;
  nesterov = false;

  constructor(params: ParameterList, options: SGDOptions) {
    super(params);
    const o = checkOptionsObject('SGD options', options);
    checkKnownKeys('SGD options', o, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov']);
    if (o.lr === undefined) fail('SGD: lr is required');
    this.applyHyper(withDefaults(o, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }), 'SGD');
  }

  override get kind(): string {
    return 'SGD';
  }

  protected get stateNames(): readonly string[] {
    return ['momentum_buffer'];
  }

  protected hyperValues(): HyperParameters {
    return { lr: this._lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov };
  }

  protected applyHyper(h: Record<string, unknown>, where: string): void {
    const lr = checkNonNegative(`${where}: lr`, h.lr);
    const momentum = checkNonNegative(`${where}: momentum`, h.momentum);
    const dampening = checkFinite(`${where}: dampening`, h.dampening);
    const weightDecay = checkNonNegative(`${where}: weightDecay`, h.weightDecay);
    const nesterov = checkBool(`${where}: nesterov`, h.nesterov);
    if (nesterov && (momentum <= 0 || dampening !== 0))
      fail(`${where}: nesterov momentum requires momentum > 0 and dampening 0, got momentum ${momentum} and dampening ${dampening}`);
    this._lr = lr;
    this.momentum = momentum;
    this.dampening = dampening;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
  }

  protected update(updates: ReadonlyArray<{ index: number; param: Parameter; grad: Tensor }>): void {
    const buffers: Array<NativeStorage | null> = [], firstSteps: boolean[] = [];
    for (const { index, param } of updates) {
      if (this.momentum === 0) {
        buffers.push(null);
        firstSteps.push(false);
        continue;
      }
      const s = this.stateOf(index, param);
      buffers.push(s.tensors[0]!.storage);
      firstSteps.push(s.fresh);
    }
    native.sgdStep(updates.map((u) => u.param.storage), updates.map((u) => u.grad.storage), buffers, firstSteps, {
      lr: this._lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov,
    });
  }
}
