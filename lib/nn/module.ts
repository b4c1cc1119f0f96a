// Module: the base of every layer and model, named like PyTorch (namedParameters, zeroGrad, train/eval).
// forward(x) computes and keeps what backward needs; backward(gradOut) returns the input gradient and
// accumulates parameter gradients into Parameter.grad.
import { fail, formatShapeOf } from './util.js';
import * as F from '../functional.js';
import { native } from '../native.js';
import { Parameter, Tensor, isDType, placementOf, type DType, type Device, type FloatDType } from '../tensor.js';
import { inspect } from 'node:util';
import { formatModule } from './format.js';
import { summarise } from './summary.js';
import { collectState, loadInto, shareOf, type LoadStateDictOptions, type LoadStateDictResult, type StateDict } from './state-dict.js';

/** @internal a spiking layer's last forward, for its firing rate: sum(spikes) / neuronSteps (spikes, or counts that add up to them) */
export interface FiringRateSource {
  spikes: Tensor;
  neuronSteps: number;
}

/** @internal set while model.summary() runs: Sequential reports each layer's output to it */
export const outputWatcher: { current: ((module: Module, output: Tensor) => void) | null } = { current: null };

export abstract class Module {
  training = true;
  protected readonly _parameters = new Map<string, Parameter>();
  protected readonly _buffers = new Map<string, Tensor>();
  protected readonly _modules = new Map<string, Module>();
  /** Buffers that keep their dtype when the module is converted (counters, as PyTorch's int64 ones). */
  protected readonly _fixedDTypeBuffers = new Set<string>();

  abstract forward(x: Tensor): Tensor;

  /** Gradient with respect to the input of the last forward, given the gradient of its output. */
  backward(gradOut: Tensor): Tensor {
    return this.backwardImpl(gradOut, true)!;
  }

  /** @internal needInputGrad = false lets the first layer of a model skip its input gradient. */
  abstract backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null;

  /**
   * @internal Forward-mode (R-op) pass for Hessian-vector products: the output and its tangent, given
   * the input's tangent (null: zero) and each parameter's `tangent`. Keeps what backwardDual needs.
   */
  forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    void x, xDot;
    return fail(`${this.typeName} does not support Hessian-vector products (no forward-mode pass)`);
  }

  /**
   * @internal The backward pass and its tangent after forwardDual: returns [dx, dxDot] and accumulates
   * the tangent of each parameter gradient (its part of H v) into `gradTangent`.
   */
  backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    void dy, dyDot, needInputGrad;
    return fail(`${this.typeName} does not support Hessian-vector products (no forward-mode pass)`);
  }

  /** Drops what the last forward kept (membrane potentials, saved activations). */
  resetState(): void {
    this.clearState();
    for (const m of this._modules.values()) m.resetState();
  }

  /** @internal */
  protected clearState(): void {}

  namedParameters(prefix = ''): Array<[string, Parameter]> {
    const result: Array<[string, Parameter]> = [];
    for (const [name, p] of this._parameters) result.push([prefix + name, p]);
    for (const [name, m] of this._modules) result.push(...m.namedParameters(`${prefix}${name}.`));
    return result;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const result: Array<[string, Tensor]> = [];
    for (const [name, b] of this._buffers) result.push([prefix + name, b]);
    for (const [name, m] of this._modules) result.push(...m.namedBuffers(`${prefix}${name}.`));
    return result;
  }

  namedModules(prefix = ''): Array<[string, Module]> {
    const result: Array<[string, Module]> = [[prefix.replace(/\.$/, ''), this]];
    for (const [name, m] of this._modules) result.push(...m.namedModules(`${prefix}${name}.`));
    return result;
  }

  children(): Module[] {
    return [...this._modules.values()];
  }

  /** Whether this module emits spikes (IFNode, LIFNode): its firing rate appears in lastFiringRates(). */
  get emitsSpikes(): boolean {
    return false;
  }

  /** @internal the mean firing rate of this module's last forward; null when it emits no spikes or has not run */
  firingRate(): number | null {
    return null;
  }

  /**
   * @internal what this module's firing rate is the mean of: the sum of `spikes` over `neuronSteps`; null
   * when it emits no spikes or has not run
   */
  firingRateSource(): FiringRateSource | null {
    return null;
  }

  /**
   * @internal the firing rates of the last forward, added on the device into accumulator[firstSlot + i]
   * for spiking layer i (spikingLayers() order) times scale, without waiting for the device: one native
   * call for all of them (two launches on a GPU). Returns which layers reported one.
   */
  accumulateFiringRates(accumulator: Tensor, firstSlot: number, scale = 1): boolean[] {
    const sources = this.spikingLayers().map(([, m]) => m.firingRateSource());
    const tensors: Tensor[] = [], slots: number[] = [], scales: number[] = [];
    sources.forEach((source, i) => {
      if (!source) return;
      tensors.push(source.spikes);
      slots.push(firstSlot + i);
      scales.push(source.neuronSteps === 0 ? 0 : scale / source.neuronSteps);
    });
    if (tensors.length > 0) native.sumsInto(tensors.map((t) => t.storage), accumulator.storage, slots, scales);
    return sources.map((source) => source !== null);
  }

  /** The spiking layers in namedModules order (their rates after a forward: lastFiringRates()). */
  spikingLayers(): Array<[string, Module]> {
    return this.namedModules().filter(([, m]) => m.emitsSpikes);
  }

  /**
   * Mean firing rate (spikes per neuron and step) of each spiking layer in the last forward, by module
   * name, whether the layer ran on its own or inside a fused kernel. Read it before resetState().
   */
  lastFiringRates(): Record<string, number> {
    const rates: Record<string, number> = {};
    for (const [name, m] of this.spikingLayers()) {
      const rate = m.firingRate();
      if (rate !== null) rates[name] = rate;
    }
    return rates;
  }

  /** Sets every parameter's gradient to zero. */
  zeroGrad(): void {
    F.zeroAll(this.parameters().flatMap((p) => (p.grad ? [p.grad] : [])), 'zeroGrad');
  }

  /**
   * Moves every parameter (with its gradient) and buffer to a device and/or converts them to a dtype, in
   * place, as PyTorch's module.to: `model.to('cuda')`, `model.to('float64')`, `model.to({ dtype, device })`.
   * The Parameter objects stay the same, so an optimiser built on them still updates them (build it after
   * moving the model, so that its state is created on the model's device). Saved activations are dropped.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device }): this {
    const first = this.namedParameters()[0]?.[1] ?? this.namedBuffers()[0]?.[1];
    const current = { dtype: first && isDType(first.dtype) ? first.dtype : 'float32', device: first?.device ?? 'cpu' } as { dtype: FloatDType; device: Device };
    const { dtype, device } = placementOf(`${this.typeName}.to`, target, current);
    const convert = typeof target === 'string' ? isDType(target) : (target as { dtype?: DType }).dtype !== undefined;
    this.resetState();
    for (const m of this.namedModules().map(([, mod]) => mod)) m.applyPlacement(convert ? dtype : null, device);
    return this;
  }

  /** @internal moves this module's own tensors (not its children's) and updates its dtype/device fields */
  protected applyPlacement(dtype: FloatDType | null, device: Device): void {
    for (const p of this._parameters.values()) {
      p.moveTo(dtype ?? p.dtype, device);
      p.grad?.moveTo(dtype ?? p.grad.dtype, device);
    }
    for (const [name, b] of this._buffers) b.moveTo(dtype && !this._fixedDTypeBuffers.has(name) ? dtype : b.dtype, device);
    const self = this as unknown as { dtype?: DType; device?: Device };
    if ('device' in this) self.device = device;
    if ('dtype' in this && dtype) self.dtype = dtype;
  }

  train(mode = true): this {
    if (typeof mode !== 'boolean') fail(`train(mode): mode must be a boolean, got ${String(mode)}`);
    this.training = mode;
    for (const m of this._modules.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Every parameter and buffer by its PyTorch state-dict name, module by module as PyTorch orders them.
   * The tensors share the model's memory (as in PyTorch): copy them (t.clone()) to keep a snapshot.
   */
  stateDict(): StateDict {
    return Object.fromEntries(this.stateEntries().map(([name, t]) => [name, shareOf(t)]));
  }

  /**
   * Copies a state dict (from stateDict(), load(path) or PyTorch's names) into this model's parameters
   * and buffers, converting dtypes. strict (default true) refuses missing and unexpected keys; shape
   * mismatches are refused always. Everything is checked before anything is copied. A state dict of the
   * same layers under other module names (models.csnn's 'conv_fc.0.weight' for a hand-built Sequential's
   * '0.weight' or '1.weight') loads too: by one leading name taken off, put on or swapped, or else by
   * order when attribute names and shapes agree one for one (LoadStateDictResult.matched says which).
   */
  loadStateDict(stateDict: StateDict | Map<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    return loadInto(this.typeName, this.stateEntries(), stateDict, options);
  }

  private stateEntries(): Array<[string, Tensor]> {
    return collectState(this, (m) => ({ parameters: m._parameters, buffers: m._buffers, modules: m._modules }));
  }

  /** The module's settings for String(model), e.g. 'inFeatures=784, outFeatures=10, bias=true'; override in your own modules. */
  extraRepr(): string {
    return '';
  }

  /** The module tree with each layer's settings, as PyTorch prints models. */
  toString(): string {
    return formatModule(this, this._modules);
  }

  /** console.log(model) prints toString(). */
  [inspect.custom](): string {
    return this.toString();
  }

  /**
   * A table of each layer's output shape and parameter count for an input of inputShape (batch
   * included, e.g. [1, 1, 28, 28]), from one forward pass on zeros that changes nothing in the model.
   */
  summary(inputShape: readonly number[]): string {
    return summarise(this, inputShape);
  }

  /** Total number of parameter elements. */
  parameterCount(): number {
    return this.parameters().reduce((sum, p) => sum + p.size, 0);
  }

  protected registerParameter(name: string, p: Parameter): Parameter {
    this._parameters.set(name, p);
    return p;
  }

  protected registerBuffer<T extends Tensor>(name: string, b: T, options: { fixedDType?: boolean } = {}): T {
    this._buffers.set(name, b);
    if (options.fixedDType) this._fixedDTypeBuffers.add(name);
    return b;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._modules.set(name, m);
    return m;
  }

  protected get typeName(): string {
    return this.constructor.name;
  }

  /** @internal common input check: dtype and device must match the module's. */
  protected checkInput(x: unknown, dtype: DType, device: Device): Tensor {
    if (!(x instanceof Tensor)) fail(`${this.typeName}.forward: input must be a Tensor, got ${String(x)}`);
    x.checkAlive(`${this.typeName}.forward`);
    if (x.dtype !== dtype) fail(`${this.typeName}.forward: input dtype is ${x.dtype} but the module is ${dtype}; convert one of them`);
    if (x.device !== device) fail(`${this.typeName}.forward: input is on ${x.device} but the module is on ${device}`);
    return x;
  }

  /** @internal backward needs a forward first and a gradient shaped like the output. */
  protected checkGradOut(gradOut: unknown, expectedShape: readonly number[] | undefined, dtype: DType): Tensor {
    if (!expectedShape) fail(`${this.typeName}.backward: call forward first (no saved activations; resetState() clears them)`);
    if (!(gradOut instanceof Tensor)) fail(`${this.typeName}.backward: gradOut must be a Tensor, got ${String(gradOut)}`);
    gradOut.checkAlive(`${this.typeName}.backward`);
    if (gradOut.dtype !== dtype) fail(`${this.typeName}.backward: gradOut dtype is ${gradOut.dtype}, expected ${dtype}`);
    if (gradOut.shape.length !== expectedShape.length || gradOut.shape.some((d, i) => d !== expectedShape[i]))
      fail(`${this.typeName}.backward: gradOut has shape ${formatShapeOf(gradOut.shape)}, expected the output shape ${formatShapeOf(expectedShape)}`);
    return gradOut;
  }
}
