// The configuration of `ikun train` / train(): every field with its default and its check, what
// config.json records of it (the values the run actually used, with the ones asked for beside them), and
// fit()'s settings for it.
import { checkBoolean, checkFiniteNumber, checkInteger, checkKnownKeys, checkOneOf, checkOptionsObject, describe, fail } from '../errors.js';
import type { FitOptions } from '../fit.js';
import { defaultLr } from '../fit/default-lr.js';
import * as init from '../init-methods.js';
import { CUDA_PRECISIONS, type CudaPrecision } from '../precision.js';
import * as surrogate from '../surrogate.js';
import type { Device } from '../tensor.js';

export interface TrainConfig {
  dataset: 'fashion-mnist' | 'mnist';
  /** Data folder (the --data flag); null searches $IKUN_DATA, the Debian folder, ./data. */
  data: string | null;
  /** Use the bundled sample (4,000 train / 1,000 test images). */
  sample: boolean;
  init: init.InitMethod;
  betaMode: init.BetaMode;
  opt: 'sgd' | 'adam' | 'adamw';
  /** null: 0.1 for SGD, 1e-3 for Adam/AdamW (the paper's). */
  lr: number | null;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: 'cosine' | 'step' | 'none';
  etaMin: number;
  stepSize: number;
  gamma: number;
  warmup: number;
  epochs: number;
  batch: number;
  /** null: same as batch */
  testBatch: number | null;
  T: number;
  channels: number;
  /** Training images used; null: 20,000 (the paper) for full data sets, all of the bundled sample. */
  subset: number | null;
  seed: number;
  neuron: 'if' | 'lif';
  surrogate: string;
  loss: 'mse' | 'ce';
  device: 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;
  /** CUDA convolutions and matrix products: 'tf32' tensor cores (default), exact 'fp32', or 'bf16' mixed precision (no effect on the CPU). */
  precision: CudaPrecision;
  /** The run folder. */
  out: string;
  /** Also write last.safetensors every this many training steps; null: at the end of each epoch only. */
  checkpointEvery: number | null;
  /** A non-finite loss or gradient: stop the run (keeping the last good checkpoint), or skip that batch. */
  onNan: 'stop' | 'skip';
}

export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  dataset: 'fashion-mnist', data: null, sample: false, init: 'ikun_v1', betaMode: 'code', opt: 'sgd', lr: null,
  momentum: 0.9, nesterov: false, weightDecay: 0, schedule: 'cosine', etaMin: 0, stepSize: 30, gamma: 0.1, warmup: 0,
  epochs: 64, batch: 128, testBatch: null, T: 4, channels: 128, subset: null, seed: 42, neuron: 'if',
  surrogate: 'atan:2', loss: 'mse', device: 'auto', precision: 'tf32', out: 'runs/run', checkpointEvery: null, onNan: 'stop',
});

const KEYS = Object.keys(DEFAULT_CONFIG) as Array<keyof TrainConfig>;

/** Fills defaults and checks every field; errors name the field and the expected value. */
export function resolveConfig(partial: Partial<TrainConfig>): TrainConfig {
  const o = checkOptionsObject('train config', partial);
  checkKnownKeys('train config', o, KEYS);
  const c = { ...DEFAULT_CONFIG, ...o } as TrainConfig;
  checkOneOf('dataset', c.dataset, ['fashion-mnist', 'mnist'] as const);
  if (c.data !== null && (typeof c.data !== 'string' || c.data === '')) fail(`data must be a folder path, got ${describe(c.data)}`);
  checkBoolean('sample', c.sample);
  checkOneOf('init', c.init, init.INIT_METHODS);
  checkOneOf('betaMode', c.betaMode, init.BETA_MODES);
  checkOneOf('opt', c.opt, ['sgd', 'adam', 'adamw'] as const);
  if (c.lr !== null && !(checkFiniteNumber('lr', c.lr) > 0)) fail(`lr must be positive, got ${c.lr}`);
  if (checkFiniteNumber('momentum', c.momentum) < 0 || c.momentum >= 1) fail(`momentum must be in [0, 1), got ${c.momentum}`);
  checkBoolean('nesterov', c.nesterov);
  if (checkFiniteNumber('weightDecay', c.weightDecay) < 0) fail(`weightDecay must be >= 0, got ${c.weightDecay}`);
  checkOneOf('schedule', c.schedule, ['cosine', 'step', 'none'] as const);
  if (checkFiniteNumber('etaMin', c.etaMin) < 0) fail(`etaMin must be >= 0, got ${c.etaMin}`);
  checkInteger('stepSize', c.stepSize, 1);
  if (!(checkFiniteNumber('gamma', c.gamma) > 0)) fail(`gamma must be positive, got ${c.gamma}`);
  checkInteger('warmup', c.warmup, 0);
  checkInteger('epochs', c.epochs, 1);
  checkInteger('batch', c.batch, 1);
  if (c.testBatch !== null) checkInteger('testBatch', c.testBatch, 1);
  checkInteger('T', c.T, 1);
  checkInteger('channels', c.channels, 1);
  if (c.subset !== null) checkInteger('subset', c.subset, 1);
  checkInteger('seed', c.seed, 0, 2 ** 32 - 1);
  checkOneOf('neuron', c.neuron, ['if', 'lif'] as const);
  surrogate.parse(c.surrogate);
  checkOneOf('loss', c.loss, ['mse', 'ce'] as const);
  checkOneOf('precision', c.precision, CUDA_PRECISIONS);
  if (typeof c.device !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(c.device))
    fail(`device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got ${describe(c.device)}`);
  if (typeof c.out !== 'string' || c.out === '') fail(`out must be a folder path, got ${describe(c.out)}`);
  if (c.checkpointEvery !== null) checkInteger('checkpointEvery', c.checkpointEvery, 1);
  checkOneOf('onNan', c.onNan, ['stop', 'skip'] as const);
  return c;
}

/**
 * What a resumed run may change of its saved configuration: the epoch total, how often it saves, and what
 * it does on a non-finite loss or gradient (say, to go past the batch that stopped it). Everything else
 * would make it another run.
 */
export const RESUME_OVERRIDES = ['epochs', 'checkpointEvery', 'onNan'] as const;
export type ResumeOverrides = Partial<Pick<TrainConfig, (typeof RESUME_OVERRIDES)[number]>>;

/** Checks resume()'s overrides: known keys only (each value is checked with the resolved configuration). */
export function checkResumeOverrides(overrides: unknown): ResumeOverrides {
  const o = checkOptionsObject('resume overrides', overrides);
  checkKnownKeys('resume overrides', o, RESUME_OVERRIDES);
  return o as ResumeOverrides;
}

/** The saved configuration with the overrides given (undefined ones leave the saved value). */
export function withOverrides(saved: Partial<TrainConfig>, overrides: ResumeOverrides): Partial<TrainConfig> {
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...saved, ...given };
}

/** What the run resolved from the configuration: the device it trains on and the training images it uses. */
export interface ResolvedRun {
  device: Device;
  subsetSize: number;
}

// The fields whose configured value stands for something resolved when the run starts.
const RESOLVED_FIELDS = ['lr', 'device', 'subset', 'testBatch', 'weightDecay'] as const;

/**
 * What config.json records: the values the run used (lr 0.1 rather than null, cpu rather than auto, the
 * subset size, the test batch), and under `requested` the values asked for where they differ, which a
 * resume resolves again (so that 'auto' may pick another device and a whole-sample run stays unshuffled).
 */
export function recordedConfig(c: TrainConfig, run: ResolvedRun): Record<string, unknown> {
  const used: Pick<TrainConfig, (typeof RESOLVED_FIELDS)[number]> = {
    lr: c.lr ?? defaultLr(c.opt),
    device: run.device as TrainConfig['device'],
    subset: run.subsetSize,
    testBatch: c.testBatch ?? c.batch,
    // AdamW's weight decay 0 stands for its default 1e-2 (see fitSettings).
    weightDecay: c.opt === 'adamw' && c.weightDecay === 0 ? 1e-2 : c.weightDecay,
  };
  const requested: Record<string, unknown> = {};
  for (const k of RESOLVED_FIELDS) if (c[k] !== used[k]) requested[k] = c[k];
  return { ...c, ...used, ...(Object.keys(requested).length > 0 ? { requested } : {}) };
}

/** The configuration to resume a run with, from its config.json (either form: recorded, or an older one). */
export function configFromRecord(saved: Record<string, unknown>): Partial<TrainConfig> {
  const { ikun_version: _version, requested, ...rest } = saved;
  const asked = requested !== null && typeof requested === 'object' && !Array.isArray(requested) ? requested as Record<string, unknown> : {};
  return { ...rest, ...asked } as Partial<TrainConfig>;
}

/** fit()'s optimiser and schedule settings for a train config (the settings that apply to its choices only). */
export function fitSettings(c: TrainConfig): FitOptions {
  const sgd = c.opt === 'sgd';
  return {
    epochs: c.epochs, batchSize: c.batch, testBatchSize: c.testBatch ?? c.batch, seed: c.seed, loss: c.loss,
    optimizer: c.opt,
    ...(c.lr !== null ? { lr: c.lr } : {}),
    ...(sgd ? { momentum: c.momentum, nesterov: c.nesterov } : {}),
    // AdamW's weight decay 0 stands for its default 1e-2, as it always has for train configs
    ...(c.opt === 'adamw' && c.weightDecay === 0 ? {} : { weightDecay: c.weightDecay }),
    schedule: c.schedule,
    ...(c.schedule === 'cosine' ? { etaMin: c.etaMin } : c.schedule === 'step' ? { stepSize: c.stepSize, gamma: c.gamma } : {}),
    warmup: c.warmup,
    ...(c.checkpointEvery !== null ? { checkpointEvery: c.checkpointEvery } : {}),
    onNan: c.onNan,
  };
}
