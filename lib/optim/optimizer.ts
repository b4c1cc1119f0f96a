// The base of the optimisers: parameters with their names, hyper-parameters, state dicts, zeroGrad.
import { describe, fail } from '../errors.js';
import { zeroAll } from '../functional.js';
import { Parameter, Tensor, formatShape, type Device } from '../tensor.js';
import { checkNonNegative, checkInt, listNames, namedParameterList, sameShape, checkHyperKeys } from './checks.js';
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
    if (setToNone) {
      for (const [, p] of this.namedParameters) p.grad = null;
      return;
    }
    zeroAll(this.namedParameters.flatMap(([, p]) => (p.grad ? [p.grad] : [])), `${this.kind}.zeroGrad`);
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

    const current = this.hyperValues();
    const hyper = checkHyperKeys(where, state.hyper, current);

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
      this.applyHyper(hyper, `${where}: hyper`);
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
