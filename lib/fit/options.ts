// fit()'s options: checked once, with defaults those of `ikun train` (SGD lr 0.1 momentum 0.9, cosine
// schedule over the epochs, MSE on firing rates, batch 128, last partial batch dropped). The optimiser
// and schedule are given by name (built here) or as objects the caller made.
import { checkBoolean, checkFiniteNumber, checkInteger, checkKnownKeys, checkOneOf, checkOptionsObject, describe, fail } from '../errors.js';
import * as lossFns from '../loss.js';
import type { Module } from '../nn/module.js';
import { Adam, AdamW, CosineAnnealingLR, LinearWarmup, Optimizer, SGD, Scheduler, StepLR } from '../optim.js';
import type { Tensor } from '../tensor.js';
import type { EpochMetrics } from './run-folder.js';
import { defaultLr } from './default-lr.js';

export type LossFunction = (output: Tensor, labels: Int32Array) => lossFns.LossResult;

export interface StepInfo {
  epoch: number;
  /** Total epochs of the run (a resumed run's total, not the default). */
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  phase: 'train' | 'test';
}

export interface FitHooks {
  /** Human-readable lines (data, resuming, ...). */
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (metrics: EpochMetrics) => void;
}

export interface FitOptions extends FitHooks {
  /** Total epochs of the run (a resumed run continues up to this many; default 1). */
  epochs?: number;
  /** Training batch size (default 128). */
  batchSize?: number;
  /** Test batch size (default batchSize). */
  testBatchSize?: number;
  /** Shuffle the training samples each epoch, seeded by seed and the epoch (default true). */
  shuffle?: boolean;
  /** Drop the last partial training batch (default true, as the paper's runs). */
  dropLast?: boolean;
  /** Seed of the shuffles (default 42). */
  seed?: number;
  /** An optimiser made for this model's parameters, or 'sgd' (default), 'adam', 'adamw' with lr, momentum, ... */
  optimizer?: Optimizer | 'sgd' | 'adam' | 'adamw';
  /** Learning rate of a named optimiser (default 0.1 for SGD, 1e-3 for Adam/AdamW). */
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  /** Weight decay of a named optimiser (default 0; AdamW 1e-2). */
  weightDecay?: number;
  /** A scheduler of the optimiser, or 'cosine' (default, over the epochs to etaMin), 'step' or 'none'; stepped per epoch. */
  schedule?: Scheduler | 'cosine' | 'step' | 'none';
  etaMin?: number;
  stepSize?: number;
  gamma?: number;
  /** Linear warm-up epochs before a named schedule (default 0). */
  warmup?: number;
  /** 'mse' (default), 'ce', or a function (output, labels) -> { loss, grad }. */
  loss?: 'mse' | 'ce' | LossFunction;
  /** Run folder to write (config.json, metrics, best and last checkpoints); none when absent. */
  out?: string;
  /** Continue the run in `out` from its last.safetensors (default false). */
  resume?: boolean;
  /** What config.json records (default: these options); train() records its whole configuration. */
  config?: Record<string, unknown>;
  /**
   * Stops the run after the step in progress when aborted: with a run folder, last.safetensors then holds
   * that point of the epoch and fit rejects with an IkunError of code INTERRUPTED (resume: true continues
   * there). Checked after each step's onStep hook.
   */
  signal?: AbortSignal;
  /** Also write last.safetensors every this many training steps (default: only at the end of an epoch). */
  checkpointEvery?: number;
  /**
   * A non-finite loss or gradient: 'stop' (default) ends the run with an IkunError of code DIVERGED and
   * leaves the last good checkpoint as it was; 'skip' skips that batch (no optimiser step, BatchNorm
   * statistics put back) and counts it in the epoch's skipped_steps.
   */
  onNan?: 'stop' | 'skip';
  /**
   * When the loop looks for non-finite values: 'step' reads the step's loss and gradient norm from the
   * device every step, before the optimiser step (the default on the CPU, where reading is free, and
   * always with onNan 'skip'); 'epoch' reads device-side counters only where the loop reads anyway (epoch
   * end, checkpoints, a stop), so that no step waits for a GPU (the default on a GPU); the first bad step
   * is still named, but the rest of that epoch runs on.
   */
  nanCheck?: 'step' | 'epoch';
}

export interface ResolvedFit {
  epochs: number;
  batchSize: number;
  testBatchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  seed: number;
  optimizer: Optimizer;
  scheduler: Scheduler | null;
  loss: LossFunction;
  /** The built-in losses as the loop runs them: the loss stays on the model's device (null: a custom loss). */
  deviceLoss: lossFns.AccumulatingLoss | null;
  out: string | null;
  resume: boolean;
  config: Record<string, unknown>;
  hooks: Required<FitHooks>;
  signal: AbortSignal | null;
  checkpointEvery: number | null;
  onNan: 'stop' | 'skip';
  /** null: by the model's device ('step' on the CPU, 'epoch' on a GPU). */
  nanCheck: 'step' | 'epoch' | null;
}

const KEYS = ['epochs', 'batchSize', 'testBatchSize', 'shuffle', 'dropLast', 'seed', 'optimizer', 'lr', 'momentum', 'nesterov', 'weightDecay',
  'schedule', 'etaMin', 'stepSize', 'gamma', 'warmup', 'loss', 'out', 'resume', 'config', 'log', 'onStep', 'onEpoch',
  'signal', 'checkpointEvery', 'onNan', 'nanCheck'] as const;

function optionalNumber(name: string, v: unknown, check: (x: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = checkFiniteNumber(`fit: ${name}`, v);
  if (!check(n)) fail(`fit: ${name} must be ${what}, got ${n}`);
  return n;
}

function hook<F>(name: string, v: unknown): F | undefined {
  if (v !== undefined && typeof v !== 'function') fail(`fit: ${name} must be a function, got ${describe(v)}`);
  return v as F | undefined;
}

export { defaultLr };

function buildOptimizer(o: Record<string, unknown>, model: Module): Optimizer {
  const hyper = ['lr', 'momentum', 'nesterov', 'weightDecay'].filter((k) => o[k] !== undefined);
  if (o.optimizer instanceof Optimizer) {
    if (hyper.length > 0) fail(`fit: ${hyper.join(', ')} configure a named optimizer; the Optimizer object given carries its own settings`);
    const own = new Set(model.parameters());
    if (!o.optimizer.namedParameters.every(([, p]) => own.has(p)))
      fail(`fit: optimizer holds parameters that are not the model's; make it with the model's namedParameters()`);
    return o.optimizer;
  }
  const kind = o.optimizer === undefined ? 'sgd' : checkOneOf('fit: optimizer', o.optimizer, ['sgd', 'adam', 'adamw'] as const);
  const lr = optionalNumber('lr', o.lr, (x) => x > 0, 'positive');
  const weightDecay = optionalNumber('weightDecay', o.weightDecay, (x) => x >= 0, '>= 0') ?? 0;
  const params = model.namedParameters();
  if (params.length === 0) fail('fit: the model has no parameters to train');
  if (kind === 'sgd') {
    const momentum = optionalNumber('momentum', o.momentum, (x) => x >= 0 && x < 1, 'in [0, 1)') ?? 0.9;
    const nesterov = o.nesterov === undefined ? false : checkBoolean('fit: nesterov', o.nesterov);
    return new SGD(params, { lr: lr ?? defaultLr('sgd'), momentum, nesterov, weightDecay });
  }
  if (o.momentum !== undefined || o.nesterov !== undefined) fail(`fit: momentum and nesterov apply to optimizer 'sgd', not '${kind}'`);
  const Cls = kind === 'adam' ? Adam : AdamW;
  return new Cls(params, { lr: lr ?? defaultLr(kind), weightDecay: kind === 'adamw' && o.weightDecay === undefined ? 1e-2 : weightDecay });
}

function buildScheduler(o: Record<string, unknown>, optimizer: Optimizer, epochs: number): Scheduler | null {
  const hyper = ['etaMin', 'stepSize', 'gamma', 'warmup'].filter((k) => o[k] !== undefined);
  if (o.schedule instanceof Scheduler) {
    if (hyper.length > 0) fail(`fit: ${hyper.join(', ')} configure a named schedule; the Scheduler object given carries its own settings`);
    if (o.schedule.optimizer !== optimizer) fail('fit: schedule must be a Scheduler of the optimizer fit uses (pass both, or name the schedule)');
    return o.schedule;
  }
  const kind = o.schedule === undefined ? 'cosine' : checkOneOf('fit: schedule', o.schedule, ['cosine', 'step', 'none'] as const);
  const warmup = o.warmup === undefined ? 0 : checkInteger('fit: warmup', o.warmup, 0);
  let main: Scheduler | null = null;
  if (kind === 'cosine') {
    const etaMin = optionalNumber('etaMin', o.etaMin, (x) => x >= 0, '>= 0') ?? 0;
    main = new CosineAnnealingLR(optimizer, { tMax: Math.max(1, epochs - warmup), etaMin });
  } else if (kind === 'step') {
    const stepSize = o.stepSize === undefined ? 30 : checkInteger('fit: stepSize', o.stepSize, 1);
    const gamma = optionalNumber('gamma', o.gamma, (x) => x > 0, 'positive') ?? 0.1;
    main = new StepLR(optimizer, { stepSize, gamma });
  } else if (hyper.some((k) => k !== 'warmup')) fail(`fit: ${hyper.join(', ')} need schedule 'cosine' or 'step'`);
  if (warmup > 0) return new LinearWarmup(optimizer, { warmupEpochs: warmup, ...(main ? { after: main } : {}) });
  return main;
}

/** The JSON-friendly options, for config.json when the caller gives no config. */
function describeOptions(o: Record<string, unknown>, r: Pick<ResolvedFit, 'epochs' | 'batchSize' | 'testBatchSize' | 'shuffle' | 'dropLast' | 'seed' | 'optimizer' | 'scheduler'>): Record<string, unknown> {
  return {
    epochs: r.epochs, batchSize: r.batchSize, testBatchSize: r.testBatchSize, shuffle: r.shuffle, dropLast: r.dropLast, seed: r.seed,
    optimizer: { kind: r.optimizer.kind, lr: r.optimizer.lr }, schedule: r.scheduler?.kind ?? 'none',
    loss: typeof o.loss === 'function' ? 'custom' : (o.loss ?? 'mse'),
    ...(o.checkpointEvery !== undefined ? { checkpointEvery: o.checkpointEvery } : {}),
    onNan: o.onNan ?? 'stop',
  };
}

export function resolveFitOptions(model: Module, options: unknown): ResolvedFit {
  const o = checkOptionsObject('fit options', options);
  checkKnownKeys('fit options', o, KEYS);
  const epochs = o.epochs === undefined ? 1 : checkInteger('fit: epochs', o.epochs, 1);
  const batchSize = o.batchSize === undefined ? 128 : checkInteger('fit: batchSize', o.batchSize, 1);
  const testBatchSize = o.testBatchSize === undefined ? batchSize : checkInteger('fit: testBatchSize', o.testBatchSize, 1);
  const shuffle = o.shuffle === undefined ? true : checkBoolean('fit: shuffle', o.shuffle);
  const dropLast = o.dropLast === undefined ? true : checkBoolean('fit: dropLast', o.dropLast);
  const seed = o.seed === undefined ? 42 : checkInteger('fit: seed', o.seed, 0, 2 ** 32 - 1);
  let loss: LossFunction, deviceLoss: lossFns.AccumulatingLoss | null = null;
  if (typeof o.loss === 'function') loss = o.loss as LossFunction;
  else {
    const mse = checkOneOf('fit: loss', o.loss ?? 'mse', ['mse', 'ce'] as const) === 'mse';
    loss = mse ? lossFns.mseRate : lossFns.ceRate;
    deviceLoss = mse ? lossFns.accumulateMseRate : lossFns.accumulateCeRate;
  }
  if (o.out !== undefined && (typeof o.out !== 'string' || o.out === '')) fail(`fit: out must be a folder path, got ${describe(o.out)}`);
  const resume = o.resume === undefined ? false : checkBoolean('fit: resume', o.resume);
  if (resume && o.out === undefined) fail('fit: resume needs out, the run folder to continue');
  if (o.config !== undefined && (o.config === null || typeof o.config !== 'object' || Array.isArray(o.config)))
    fail(`fit: config must be an object (what config.json records), got ${describe(o.config)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    fail(`fit: signal must be an AbortSignal (new AbortController().signal), got ${describe(o.signal)}`);
  const checkpointEvery = o.checkpointEvery === undefined ? null : checkInteger('fit: checkpointEvery', o.checkpointEvery, 1);
  if (checkpointEvery !== null && o.out === undefined) fail('fit: checkpointEvery needs out, the run folder to write checkpoints to');
  const onNan = o.onNan === undefined ? 'stop' : checkOneOf('fit: onNan', o.onNan, ['stop', 'skip'] as const);
  const nanCheck = o.nanCheck === undefined ? null : checkOneOf('fit: nanCheck', o.nanCheck, ['step', 'epoch'] as const);
  if (onNan === 'skip' && nanCheck === 'epoch') fail("fit: onNan 'skip' decides every step, so it needs nanCheck 'step' (or no nanCheck)");
  const optimizer = buildOptimizer(o, model);
  const scheduler = buildScheduler(o, optimizer, epochs);
  const resolved = { epochs, batchSize, testBatchSize, shuffle, dropLast, seed, optimizer, scheduler, loss, deviceLoss, out: (o.out as string | undefined) ?? null, resume };
  return {
    ...resolved,
    config: (o.config as Record<string, unknown> | undefined) ?? describeOptions(o, resolved),
    hooks: {
      log: hook<(l: string) => void>('log', o.log) ?? (() => {}),
      onStep: hook<(s: StepInfo) => void>('onStep', o.onStep) ?? (() => {}),
      onEpoch: hook<(m: EpochMetrics) => void>('onEpoch', o.onEpoch) ?? (() => {}),
    },
    signal: (o.signal as AbortSignal | undefined) ?? null,
    checkpointEvery,
    onNan,
    nanCheck,
  };
}
