// Optimisers (SGD, Adam, AdamW) with PyTorch's update rules, run in native code, and epoch-level learning-rate
// schedulers (cosine annealing, step decay, linear warm-up) with PyTorch's closed forms.
//
// Optimisers take a list of parameters, or named pairs such as module.namedParameters(); the names key the
// state dict (`<name>.momentum_buffer`, `<name>.exp_avg`, `<name>.exp_avg_sq`, as in PyTorch's state).
import type { Accumulation } from './functional.js';
import { native, type NativeStorage } from './native.js';
import { Parameter, Tensor, formatShape, type Device } from './tensor.js';
import { checkKnownKeys, checkOptionsObject, describe, fail } from './errors.js';

export type NamedParameters = Array<[string, Parameter]>;
export type ParameterList = Parameter[] | NamedParameters;
export type HyperParameters = Record<string, number | boolean>;

export interface OptimizerState {
  /** 'SGD', 'Adam' or 'AdamW' */
  kind: string;
  /** optimiser steps taken so far */
  step: number;
  /** hyperparameters, lr included (loading restores them, as PyTorch's param_groups) */
  hyper: HyperParameters;
  /** per-parameter state, `<parameter name>.<state name>`; only parameters that have been updated have state */
  tensors: Array<[string, Tensor]>;
}

// ---------------------------------------------------------------------------------------------------------------
// Argument checks

function checkNonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(`${name} must be a finite non-negative number, got ${describe(value)}`);
  return value;
}

function checkPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail(`${name} must be a finite positive number, got ${describe(value)}`);
  return value;
}

function checkFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${name} must be a finite number, got ${describe(value)}`);
  return value;
}

function checkUnitInterval(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1)
    fail(`${name} must be a number in [0, 1), got ${describe(value)}`);
  return value;
}

function checkBool(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

function checkInt(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    fail(`${name} must be an integer >= ${min}, got ${describe(value)}`);
  return value;
}

/** 'a', 'b', 'c', 'd', 'e' and 3 more */
function listNames(names: readonly string[], shown = 5): string {
  const head = names.slice(0, shown).map((n) => `'${n}'`).join(', ');
  return names.length > shown ? `${head} and ${names.length - shown} more` : head;
}

/** options with undefined entries replaced by the defaults */
function withDefaults(options: Record<string, unknown>, defaults: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) result[key] = value;
  return result;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Normalises Parameter[] or [name, Parameter][] into named pairs, checking types, duplicates and devices. */
function namedParameterList(where: string, params: unknown): NamedParameters {
  if (!Array.isArray(params) || params.length === 0)
    fail(`${where}: params must be a non-empty array of Parameter (or of [name, Parameter] pairs), got ${describe(params)}`);
  const named = Array.isArray(params[0]);
  const result: NamedParameters = [];
  params.forEach((entry: unknown, i: number) => {
    if (named) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !(entry[1] instanceof Parameter))
        fail(`${where}: params[${i}] must be a [name, Parameter] pair like the others, got ${describe(entry)}`);
      if (entry[0] === '') fail(`${where}: params[${i}] has an empty name`);
      result.push([entry[0], entry[1]]);
    } else {
      if (!(entry instanceof Parameter)) fail(`${where}: params[${i}] must be a Parameter, got ${describe(entry)}`);
      result.push([`param.${i}`, entry]);
    }
  });
  const names = new Set<string>();
  const seen = new Set<Parameter>();
  let device: Device | undefined;
  for (const [name, p] of result) {
    if (names.has(name)) fail(`${where}: parameter name '${name}' appears more than once`);
    if (seen.has(p)) fail(`${where}: parameter '${name}' appears more than once (as another name)`);
    names.add(name);
    seen.add(p);
    if (device === undefined) device = p.device;
    else if (p.device !== device)
      fail(`${where}: all parameters must be on one device; '${result[0]![0]}' is on ${device}, '${name}' is on ${p.device}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Optimizer

export abstract class Optimizer {
  /** The parameters, with their names (given, or 'param.0', 'param.1', ...). */
  readonly namedParameters: ReadonlyArray<readonly [string, Parameter]>;
  protected _lr = 0;
  protected _step = 0;
  /** Per parameter: its state tensors (in the order of stateNames) or null before its first update. */
  protected state: Array<Tensor[] | null>;

  /** 'SGD', 'Adam', 'AdamW' (a prototype getter, so that the constructor's messages can use it) */
  get kind(): string {
    return 'Optimizer';
  }
  /** PyTorch's names of the per-parameter state tensors. */
  protected abstract get stateNames(): readonly string[];
  /** Shape and dtype of a state tensor: the parameter's, unless a subclass says otherwise (Adam's step). */
  protected stateLayout(_suffix: string, p: Parameter): { shape: readonly number[]; dtype: Parameter['dtype']; device: Device } {
    return { shape: p.shape, dtype: p.dtype, device: p.device };
  }
  protected abstract hyperValues(): HyperParameters;
  /** Validates and applies hyperparameters (constructor options and loaded state). */
  protected abstract applyHyper(hyper: Record<string, unknown>, where: string): void;
  /** Updates the listed parameters in one native call (one kernel launch on a GPU). */
  protected abstract update(updates: ReadonlyArray<{ index: number; param: Parameter; grad: Tensor }>): void;

  protected constructor(params: ParameterList) {
    this.namedParameters = Object.freeze(namedParameterList(this.kind, params).map((e) => Object.freeze(e)));
    this.state = this.namedParameters.map(() => null);
  }

  /** The parameters in order. */
  get params(): Parameter[] {
    return this.namedParameters.map(([, p]) => p);
  }

  /** Learning rate used by the next step(); schedulers set it. */
  get lr(): number {
    return this._lr;
  }

  set lr(value: number) {
    this._lr = checkNonNegative(`${this.kind}: lr`, value);
  }

  /** Optimiser steps taken so far. */
  get stepCount(): number {
    return this._step;
  }

  /** Updates every parameter that has a gradient (parameters whose grad is null are skipped). */
  step(): void {
    // Check everything first so that a bad gradient never leaves a half-updated model.
    for (const [name, p] of this.namedParameters) {
      p.checkAlive(`${this.kind}.step: parameter '${name}'`);
      const g = p.grad;
      if (!g) continue;
      if (!(g instanceof Tensor)) fail(`${this.kind}.step: parameter '${name}' has a grad that is not a Tensor (${describe(g)})`);
      g.checkAlive(`${this.kind}.step: gradient of '${name}'`);
      if (g.dtype !== p.dtype || g.size !== p.size)
        fail(`${this.kind}.step: gradient of '${name}' is ${g.dtype} ${formatShape(g.shape)}, the parameter is ${p.dtype} ${formatShape(p.shape)}`);
      if (g.device !== p.device) fail(`${this.kind}.step: gradient of '${name}' is on ${g.device}, the parameter on ${p.device}`);
    }
    this.checkStateDevices();
    this._step += 1;
    const updates = this.namedParameters.flatMap(([, param], index) => (param.grad ? [{ index, param, grad: param.grad }] : []));
    if (updates.length > 0) this.update(updates);
  }

  /** State made before the model moved to another device cannot update it: say so instead of failing in native code. */
  private checkStateDevices(): void {
    this.namedParameters.forEach(([name, p], i) => {
      const s = this.state[i];
      if (!s) return;
      this.stateNames.forEach((suffix, k) => {
        const wanted = this.stateLayout(suffix, p).device;
        if (s[k]!.device !== wanted)
          fail(`${this.kind}.step: the state '${name}.${suffix}' is on ${s[k]!.device} but parameter '${name}' is on ${p.device}; ` +
            'build the optimiser after moving the model (model.to(device)), or move its state with loadStateDict(stateDict())');
      });
    });
  }

  /** Zeroes every gradient (setToNone: drops them instead, so that the next step skips them until a backward). */
  zeroGrad(setToNone = false): void {
    for (const [, p] of this.namedParameters) {
      if (setToNone) p.grad = null;
      else p.grad?.fill(0);
    }
  }

  /** A snapshot of the optimiser state (tensors are copies). */
  stateDict(): OptimizerState {
    const tensors: Array<[string, Tensor]> = [];
    this.namedParameters.forEach(([name], i) => {
      const s = this.state[i];
      if (s) this.stateNames.forEach((suffix, k) => tensors.push([`${name}.${suffix}`, s[k]!.clone()]));
    });
    return { kind: this.kind, step: this._step, hyper: this.hyperValues(), tensors };
  }

  /** Restores a state from stateDict(). Everything is checked before anything changes; the tensors are copied. */
  loadStateDict(state: OptimizerState): void {
    const where = `${this.kind}.loadStateDict`;
    if (state === null || typeof state !== 'object') fail(`${where}: state must be an object from stateDict(), got ${describe(state)}`);
    if (state.kind !== this.kind) fail(`${where}: the state is of a ${describe(state.kind)} optimizer, this is ${this.kind}`);
    const step = checkInt(`${where}: step`, state.step, 0);

    const hyper = state.hyper as unknown;
    if (hyper === null || typeof hyper !== 'object' || Array.isArray(hyper)) fail(`${where}: hyper must be an object, got ${describe(hyper)}`);
    const current = this.hyperValues();
    for (const key of Object.keys(current))
      if (!(key in hyper)) fail(`${where}: hyper is missing '${key}'`);
    for (const key of Object.keys(hyper))
      if (!(key in current)) fail(`${where}: hyper has unknown key '${key}' (known: ${Object.keys(current).join(', ')})`);

    if (!Array.isArray(state.tensors)) fail(`${where}: tensors must be an array of [name, Tensor] pairs, got ${describe(state.tensors)}`);
    const slots = new Map<string, [number, number]>();
    this.namedParameters.forEach(([name], i) => this.stateNames.forEach((suffix, k) => slots.set(`${name}.${suffix}`, [i, k])));
    const loaded: Array<Array<Tensor | undefined> | null> = this.namedParameters.map(() => null);
    const seen = new Set<string>();
    state.tensors.forEach((entry: unknown, j: number) => {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !(entry[1] instanceof Tensor))
        fail(`${where}: tensors[${j}] must be a [name, Tensor] pair, got ${describe(entry)}`);
      const [name, t] = entry as [string, Tensor];
      const slot = slots.get(name);
      if (!slot)
        fail(`${where}: '${name}' is not a state of this optimizer (expected '<parameter>.${this.stateNames.join("' or '<parameter>.")}' ` +
          `for parameters ${listNames(this.namedParameters.map(([n]) => n))})`);
      if (seen.has(name)) fail(`${where}: '${name}' appears more than once`);
      seen.add(name);
      const [i, k] = slot;
      const [pname, p] = this.namedParameters[i]!;
      const layout = this.stateLayout(this.stateNames[k]!, p);
      t.checkAlive(`${where}: '${name}'`);
      if (!sameShape(t.shape, layout.shape))
        fail(`${where}: '${name}' has shape ${formatShape(t.shape)} but parameter '${pname}' needs ${formatShape(layout.shape)}`);
      if (t.dtype !== layout.dtype) fail(`${where}: '${name}' is ${t.dtype} but parameter '${pname}' needs ${layout.dtype}`);
      (loaded[i] ??= this.stateNames.map(() => undefined))[k] = t;
    });
    loaded.forEach((s, i) => {
      if (!s) return;
      const missing = this.stateNames.findIndex((_, k) => s[k] === undefined);
      if (missing >= 0) fail(`${where}: '${this.namedParameters[i]![0]}.${this.stateNames[missing]}' is missing (the parameter has other state)`);
    });

    // applyHyper validates before it assigns; put the old values back if it refuses.
    const before = this.hyperValues();
    try {
      this.applyHyper(hyper as Record<string, unknown>, `${where}: hyper`);
    } catch (error) {
      this.applyHyper(before, `${where}: hyper`);
      throw error;
    }
    this._step = step;
    this.state = loaded.map((s, i) => {
      if (!s) return null;
      const p = this.namedParameters[i]![1];
      return s.map((t, k) => Tensor.empty(t!.shape, t!.dtype, this.stateLayout(this.stateNames[k]!, p).device).copyFrom(t!));
    });
  }

  /** The state tensors of parameter i, created zeroed if needed; `fresh` says whether they were just created. */
  protected stateOf(i: number, p: Parameter): { tensors: Tensor[]; fresh: boolean } {
    const s = this.state[i];
    if (s) return { tensors: s, fresh: false };
    const tensors = this.stateNames.map((suffix) => {
      const layout = this.stateLayout(suffix, p);
      return Tensor.zeros(layout.shape, layout.dtype, layout.device);
    });
    this.state[i] = tensors;
    return { tensors, fresh: true };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SGD

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

// ---------------------------------------------------------------------------------------------------------------
// Adam, AdamW

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

/** Global L2 norm of the gradients of params (parameters without a gradient count as zero). */
export function gradNorm(params: ParameterList): number {
  return native.gradNorm(gradientStorages(params));
}

/** @internal adds the gradient norm into an accumulation instead (no wait for a GPU). */
export function accumulateGradNorm(params: ParameterList, into: Accumulation): void {
  native.gradNorm(gradientStorages(params), into.accumulator.storage, into.slot, into.scale);
}

function gradientStorages(params: ParameterList): NativeStorage[] {
  const list = namedParameterList('gradNorm', params);
  const storages: NativeStorage[] = [];
  for (const [name, p] of list) {
    if (!p.grad) continue;
    p.grad.checkAlive(`gradNorm: gradient of '${name}'`);
    storages.push(p.grad.storage);
  }
  return storages;
}

// ---------------------------------------------------------------------------------------------------------------
// Learning-rate schedulers

export interface SchedulerState {
  kind: string;
  lastEpoch: number;
  baseLr: number;
  hyper: Record<string, number>;
  /** LinearWarmup: the state of the scheduler that follows the warm-up (null if none) */
  after?: SchedulerState | null;
}

/**
 * Base of the epoch-level schedulers. Construction takes the optimizer's current lr as the base lr, sets
 * lastEpoch to 0 and the lr to the epoch-0 value; step() (once per epoch, after the epoch's optimizer steps)
 * advances the epoch and sets the optimizer's lr to the closed-form value for it.
 */
export abstract class Scheduler {
  readonly optimizer: Optimizer;
  protected _baseLr: number;
  protected _lastEpoch = 0;

  /** 'CosineAnnealingLR', 'StepLR', 'LinearWarmup' */
  get kind(): string {
    return 'Scheduler';
  }
  /** The lr this scheduler gives at epoch (closed form; does not change anything). */
  abstract lrAt(epoch: number): number;
  protected abstract hyperValues(): Record<string, number>;
  protected abstract applyHyper(h: Record<string, unknown>, where: string): void;

  protected constructor(optimizer: Optimizer) {
    if (!(optimizer instanceof Optimizer)) fail(`${this.kind}: optimizer must be an Optimizer, got ${describe(optimizer)}`);
    this.optimizer = optimizer;
    this._baseLr = optimizer.lr;
  }

  get baseLr(): number {
    return this._baseLr;
  }

  get lastEpoch(): number {
    return this._lastEpoch;
  }

  /** The lr for the current epoch. */
  getLr(): number {
    return this.lrAt(this._lastEpoch);
  }

  /** Advances one epoch and sets the optimizer's lr. */
  step(): void {
    this.seek(this._lastEpoch + 1);
  }

  /** @internal moves to an epoch and sets the optimizer's lr */
  seek(epoch: number): void {
    this._lastEpoch = epoch;
    this.optimizer.lr = this.getLr();
  }

  stateDict(): SchedulerState {
    return { kind: this.kind, lastEpoch: this._lastEpoch, baseLr: this._baseLr, hyper: this.hyperValues() };
  }

  /** Restores a state from stateDict() (checked in full first) and sets the optimizer's lr for its epoch. */
  loadStateDict(state: SchedulerState): void {
    this.restore(state, `${this.kind}.loadStateDict`)();
    this.optimizer.lr = this.getLr();
  }

  /** @internal checks state and returns the function that applies it */
  restore(state: SchedulerState, where: string): () => void {
    if (state === null || typeof state !== 'object') fail(`${where}: state must be an object from stateDict(), got ${describe(state)}`);
    if (state.kind !== this.kind) fail(`${where}: the state is of a ${describe(state.kind)} scheduler, this is ${this.kind}`);
    const lastEpoch = checkInt(`${where}: lastEpoch`, state.lastEpoch, 0);
    const baseLr = checkNonNegative(`${where}: baseLr`, state.baseLr);
    const hyper = state.hyper as unknown;
    if (hyper === null || typeof hyper !== 'object' || Array.isArray(hyper)) fail(`${where}: hyper must be an object, got ${describe(hyper)}`);
    const current = this.hyperValues();
    for (const key of Object.keys(current))
      if (!(key in hyper)) fail(`${where}: hyper is missing '${key}'`);
    for (const key of Object.keys(hyper))
      if (!(key in current)) fail(`${where}: hyper has unknown key '${key}' (known: ${Object.keys(current).join(', ')})`);
    this.applyHyper(hyper as Record<string, unknown>, `${where}: hyper`); // validates
    this.applyHyper(current, `${where}: hyper`); // and puts the current values back until commit
    const more = this.restoreMore(state, where);
    return () => {
      this.applyHyper(hyper as Record<string, unknown>, `${where}: hyper`);
      this._lastEpoch = lastEpoch;
      this._baseLr = baseLr;
      more();
    };
  }

  /** @internal subclass hook for nested state */
  protected restoreMore(_state: SchedulerState, _where: string): () => void {
    return () => {};
  }

  protected checkEpoch(epoch: number): number {
    return checkInt(`${this.kind}.lrAt: epoch`, epoch, 0);
  }
}

export interface CosineAnnealingLROptions {
  tMax: number;
  etaMin?: number;
}

/** torch.optim.lr_scheduler.CosineAnnealingLR (closed form): etaMin + (base - etaMin)(1 + cos(pi e / tMax)) / 2. */
export class CosineAnnealingLR extends Scheduler {
  tMax = 1;
  etaMin = 0;

  constructor(optimizer: Optimizer, options: CosineAnnealingLROptions) {
    super(optimizer);
    const o = checkOptionsObject('CosineAnnealingLR options', options);
    checkKnownKeys('CosineAnnealingLR options', o, ['tMax', 'etaMin']);
    this.applyHyper(withDefaults(o, { etaMin: 0 }), 'CosineAnnealingLR');
    this.seek(0);
  }

  override get kind(): string {
    return 'CosineAnnealingLR';
  }

  lrAt(epoch: number): number {
    const e = this.checkEpoch(epoch);
    return this.etaMin + ((this._baseLr - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2;
  }

  protected hyperValues(): Record<string, number> {
    return { tMax: this.tMax, etaMin: this.etaMin };
  }

  protected applyHyper(h: Record<string, unknown>, where: string): void {
    const tMax = checkInt(`${where}: tMax`, h.tMax, 1);
    const etaMin = checkNonNegative(`${where}: etaMin`, h.etaMin);
    this.tMax = tMax;
    this.etaMin = etaMin;
  }
}

export interface StepLROptions {
  stepSize: number;
  gamma?: number;
}

/** torch.optim.lr_scheduler.StepLR: base * gamma^floor(e / stepSize). */
export class StepLR extends Scheduler {
  stepSize = 1;
  gamma = 0.1;

  constructor(optimizer: Optimizer, options: StepLROptions) {
    super(optimizer);
    const o = checkOptionsObject('StepLR options', options);
    checkKnownKeys('StepLR options', o, ['stepSize', 'gamma']);
    this.applyHyper(withDefaults(o, { gamma: 0.1 }), 'StepLR');
    this.seek(0);
  }

  override get kind(): string {
    return 'StepLR';
  }

  lrAt(epoch: number): number {
    const e = this.checkEpoch(epoch);
    return this._baseLr * Math.pow(this.gamma, Math.floor(e / this.stepSize));
  }

  protected hyperValues(): Record<string, number> {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }

  protected applyHyper(h: Record<string, unknown>, where: string): void {
    const stepSize = checkInt(`${where}: stepSize`, h.stepSize, 1);
    const gamma = checkPositive(`${where}: gamma`, h.gamma);
    this.stepSize = stepSize;
    this.gamma = gamma;
  }
}

export interface LinearWarmupOptions {
  warmupEpochs: number;
  startFactor?: number;
  /** the scheduler that takes over after warm-up (its epoch 0 is epoch warmupEpochs); it is driven by this one */
  after?: Scheduler;
}

/**
 * Linear warm-up (torch.optim.lr_scheduler.LinearLR with endFactor 1, chained like SequentialLR): the lr goes
 * from startFactor * base at epoch 0 to base at epoch warmupEpochs, then `after` takes over with its own epoch
 * counter starting at 0. Step only this scheduler; it steps `after`. Construct `after` first.
 */
export class LinearWarmup extends Scheduler {
  warmupEpochs = 0;
  startFactor = 0.1;
  readonly after: Scheduler | null;

  constructor(optimizer: Optimizer, options: LinearWarmupOptions) {
    super(optimizer);
    const o = checkOptionsObject('LinearWarmup options', options);
    checkKnownKeys('LinearWarmup options', o, ['warmupEpochs', 'startFactor', 'after']);
    const after = o.after ?? null;
    if (after !== null) {
      if (!(after instanceof Scheduler)) fail(`LinearWarmup: after must be a Scheduler, got ${describe(after)}`);
      if (after.optimizer !== optimizer) fail('LinearWarmup: after must schedule the same optimizer');
      if (after === (this as Scheduler)) fail('LinearWarmup: after cannot be the warm-up itself');
    }
    this.after = after;
    this.applyHyper(withDefaults(o, { startFactor: 0.1 }), 'LinearWarmup');
    this.seek(0);
  }

  override get kind(): string {
    return 'LinearWarmup';
  }

  lrAt(epoch: number): number {
    const e = this.checkEpoch(epoch);
    if (e >= this.warmupEpochs) return this.after ? this.after.lrAt(e - this.warmupEpochs) : this._baseLr;
    return this._baseLr * (this.startFactor + ((1 - this.startFactor) * e) / this.warmupEpochs);
  }

  override seek(epoch: number): void {
    if (this.after) this.after.seek(Math.max(0, epoch - this.warmupEpochs));
    super.seek(epoch);
  }

  override stateDict(): SchedulerState {
    return { ...super.stateDict(), after: this.after ? this.after.stateDict() : null };
  }

  protected override restoreMore(state: SchedulerState, where: string): () => void {
    const nested = state.after ?? null;
    if ((nested === null) !== (this.after === null))
      fail(`${where}: after is ${nested === null ? 'absent from the state' : `a ${describe(nested.kind)} state`} but this warm-up ` +
        (this.after ? `hands over to ${this.after.kind}` : 'has no after scheduler'));
    return this.after && nested ? this.after.restore(nested, `${where}: after`) : () => {};
  }

  protected hyperValues(): Record<string, number> {
    return { warmupEpochs: this.warmupEpochs, startFactor: this.startFactor };
  }

  protected applyHyper(h: Record<string, unknown>, where: string): void {
    const warmupEpochs = checkInt(`${where}: warmupEpochs`, h.warmupEpochs, 0);
    const startFactor = h.startFactor;
    if (typeof startFactor !== 'number' || !Number.isFinite(startFactor) || startFactor <= 0 || startFactor > 1)
      fail(`${where}: startFactor must be a number in (0, 1], got ${describe(startFactor)}`);
    this.warmupEpochs = warmupEpochs;
    this.startFactor = startFactor;
  }
}
