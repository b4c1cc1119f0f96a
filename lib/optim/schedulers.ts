// Epoch-level learning-rate schedulers with PyTorch's closed forms: cosine annealing, step decay, linear warm-up.
import { checkKnownKeys, checkOptionsObject, describe, fail } from '../errors.js';
import { checkInt, checkNonNegative, checkPositive, withDefaults, checkHyperKeys } from './checks.js';
import { Optimizer } from './optimizer.js';
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
    const current = this.hyperValues();
    const hyper = checkHyperKeys(where, state.hyper, current);
    this.applyHyper(hyper, `${where}: hyper`); // validates
    this.applyHyper(current, `${where}: hyper`); // and puts the current values back until commit
    const more = this.restoreMore(state, where);
    return () => {
      this.applyHyper(hyper, `${where}: hyper`);
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
