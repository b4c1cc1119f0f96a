// Sequential: children run in order, named '0', '1', ... as in PyTorch (or by name from a Map, as
// PyTorch's OrderedDict form). Where its layers form the patterns of the fused kernels (fusion/plan.ts)
// it runs those, in training and in evaluation; the numbers are those of the layers one by one.
import { checkInteger, describe } from '../errors.js';
import { Tensor } from '../tensor.js';
import { planSteps } from './fusion/plan.js';
import type { Dual, DualGrad, Entry, Step } from './fusion/steps.js';
import { Module } from './module.js';
import { fail } from './util.js';

/** What the last forward produced and keeps for backward. */
interface RunState {
  steps: Step[];
  /** Outputs of every step but the last (inputs of the next ones); freed at the next forward. */
  intermediates: Tensor[];
  input: Tensor;
  output: Tensor;
  outputShape: readonly number[];
  tangents: Array<Tensor | null>;
  dual: boolean;
}

function isPlainSequential(m: Module): m is Sequential {
  return m instanceof Sequential && m.forward === Sequential.prototype.forward && m.backwardImpl === Sequential.prototype.backwardImpl;
}

export class Sequential extends Module {
  private readonly layers: Module[];
  /**
   * Whether forward runs the fused kernels where the layers allow (default true). false runs each layer
   * on its own: the same numbers, more memory traffic; for checks and comparisons.
   */
  fusion = true;
  private plans = new Map<boolean, Step[]>();
  private state: RunState | null = null;

  /** new Sequential(a, b, c) names the children '0', '1', '2'; new Sequential(new Map([['conv', a], ...])) by name. */
  constructor(...layers: Module[] | [Map<string, Module>]) {
    super();
    const named: Array<[string, unknown]> = layers.length === 1 && layers[0] instanceof Map
      ? [...(layers[0] as Map<string, Module>).entries()]
      : (layers as Module[]).map((m, i) => [String(i), m]);
    named.forEach(([name, m], i) => {
      if (!(m instanceof Module)) fail(`Sequential: ${layers[0] instanceof Map ? `entry '${name}'` : `argument ${i}`} must be a Module, got ${describe(m)}`);
      if (typeof name !== 'string' || name === '' || name.includes('.'))
        fail(`Sequential: child names must be non-empty strings without '.', got ${describe(name)}`);
      this.registerModule(name, m);
    });
    this.layers = named.map(([, m]) => m as Module);
  }

  get length(): number {
    return this.layers.length;
  }

  at(index: number): Module {
    checkInteger('Sequential.at: index', index, 0, this.layers.length - 1);
    return this.layers[index]!;
  }

  /** The layers in run order with their names below this module; nested plain Sequentials are opened up. */
  private entries(prefix = ''): Entry[] {
    const out: Entry[] = [];
    for (const [name, m] of this._modules) {
      if (isPlainSequential(m)) out.push(...m.entries(`${prefix}${name}.`));
      else out.push({ name: `${prefix}${name}`, module: m });
    }
    return out;
  }

  /** @internal the steps this Sequential runs, by their layers' names (fused layers joined with '+') */
  planLabels(): string[] {
    return this.plan().map((step) => step.label);
  }

  private plan(): Step[] {
    let steps = this.plans.get(this.fusion);
    if (!steps) {
      steps = planSteps(this.entries(), this.fusion);
      this.plans.set(this.fusion, steps);
    }
    return steps;
  }

  forward(x: Tensor): Tensor {
    this.releaseState();
    const steps = this.plan();
    if (steps.length === 0) return this.finish(steps, x, x, [], [], false);
    let y = x;
    const produced: Tensor[] = [];
    for (const step of steps) {
      y = step.forward(y);
      produced.push(y);
    }
    produced.pop();
    return this.finish(steps, x, y, produced, [], false);
  }

  private finish(steps: Step[], input: Tensor, output: Tensor, intermediates: Tensor[], tangents: Array<Tensor | null>, dual: boolean): Tensor {
    this.state = { steps, intermediates, input, output, outputShape: output.shape, tangents, dual };
    return output;
  }

  private checkBackward(gradOut: unknown, dual: boolean, what: string): RunState {
    const s = this.state;
    if (!s) return fail(`${this.typeName}.${what}: call forward first (no saved activations; resetState() clears them)`);
    if (s.dual !== dual)
      fail(`${this.typeName}.${what}: the last forward was ${s.dual ? 'forwardDual; use backwardDual' : 'forward; use backward (backwardDual needs forwardDual)'}`);
    this.checkGradOut(gradOut, s.outputShape, s.output.dtype);
    return s;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const { steps } = this.checkBackward(gradOut, false, 'backward');
    let grad: Tensor | null = gradOut;
    for (let i = steps.length - 1; i >= 0 && grad; i--) {
      const next: Tensor | null = steps[i]!.backward(grad, i > 0 || needInputGrad);
      // Gradients between layers are ours alone: free them now instead of waiting for the GC.
      if (grad.storage !== gradOut.storage && grad.storage !== next?.storage) grad.dispose();
      grad = next;
    }
    return grad;
  }

  override forwardDual(x: Tensor, xDot: Tensor | null): Dual {
    this.releaseState();
    const steps = this.plan();
    let y = x, yDot = xDot;
    const produced: Tensor[] = [];
    for (const step of steps) {
      [y, yDot] = step.forwardDual(y, yDot);
      produced.push(y, yDot);
    }
    produced.splice(-2);
    if (!yDot) yDot = Tensor.zeros(y.shape, y.dtype, y.device);
    this.finish(steps, x, y, produced, [xDot, yDot], true);
    return [y, yDot];
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): DualGrad {
    const { steps } = this.checkBackward(dy, true, 'backwardDual');
    let grad: Tensor | null = dy, gradDot: Tensor | null = dyDot;
    for (let i = steps.length - 1; i >= 0 && grad && gradDot; i--) {
      const [next, nextDot]: DualGrad = steps[i]!.backwardDual(grad, gradDot, i > 0 || needInputGrad);
      // as in backward: gradients between layers are ours alone (unless a layer passed a view through)
      const keep = new Set([dy.storage, dyDot.storage, next?.storage, nextDot?.storage]);
      for (const t of [grad, gradDot]) if (!keep.has(t.storage)) t.dispose();
      [grad, gradDot] = [next, nextDot];
    }
    return [grad, gradDot];
  }

  /** Frees activations of the previous forward that only the layers' saved state still refers to. */
  private releaseState(): void {
    const s = this.state;
    if (!s) return;
    const keep = new Set([s.input.storage, s.output.storage, ...s.tangents.map((t) => t?.storage)]);
    for (const t of s.intermediates) if (!keep.has(t.storage)) t.dispose();
    for (const step of s.steps) step.release();
    this.state = null;
  }

  protected override clearState(): void {
    this.releaseState();
  }
}
