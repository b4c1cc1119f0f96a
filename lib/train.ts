// The paper's training procedure (ikun-paper.md, "The experiment") as one configuration: the data set
// and its seeded subset, the CSNN and its initialisation, then fit() runs the loop (seeded shuffling per
// epoch with the last partial batch dropped, MSE on firing rates, membranes reset after every batch, the
// schedule stepped once per epoch) and writes the run folder: config.json, metrics.jsonl, metrics.csv,
// best.safetensors, last.safetensors. train() and resume() run it in a worker thread.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { dataNotFoundMessage, loadFashionMnist, loadMnist, loadSample, packageRoot, subset as takeSubset, type Dataset } from './data.js';
import {
  IkunError, checkBoolean, checkFiniteNumber, checkInteger, checkKnownKeys, checkOneOf, checkOptionsObject, describe, fail, failWith, rephrase,
  type ErrorDetails, type Wording,
} from './errors.js';
import { fit, type EpochMetrics, type FitHooks, type FitOptions, type StepInfo } from './fit.js';
import { checkResumable, finishedText, prepareRunDir, readRunConfig } from './fit/run-folder.js';
import * as init from './init.js';
import { CSNN } from './models.js';
import { native } from './native.js';
import * as surrogate from './surrogate.js';
import { cudaUnavailableReason, type Device } from './tensor.js';

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
  /** CUDA convolutions and matrix products: 'tf32' tensor cores (default) or exact 'fp32' (no effect on the CPU). */
  precision: 'tf32' | 'fp32';
  /** The run folder. */
  out: string;
}

export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  dataset: 'fashion-mnist', data: null, sample: false, init: 'ikun_v1', betaMode: 'code', opt: 'sgd', lr: null,
  momentum: 0.9, nesterov: false, weightDecay: 0, schedule: 'cosine', etaMin: 0, stepSize: 30, gamma: 0.1, warmup: 0,
  epochs: 64, batch: 128, testBatch: null, T: 4, channels: 128, subset: null, seed: 42, neuron: 'if',
  surrogate: 'atan:2', loss: 'mse', device: 'auto', precision: 'tf32', out: 'runs/run',
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
  checkOneOf('precision', c.precision, ['tf32', 'fp32'] as const);
  if (typeof c.device !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(c.device))
    fail(`device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got ${describe(c.device)}`);
  if (typeof c.out !== 'string' || c.out === '') fail(`out must be a folder path, got ${describe(c.out)}`);
  return c;
}

export type { EpochMetrics, StepInfo } from './fit.js';

/** Hooks of train() and resume(): log lines, each step, each epoch (a hook that throws stops the run after that epoch). */
export type TrainHooks = FitHooks;

export interface TrainResult {
  runDir: string;
  config: TrainConfig;
  metrics: EpochMetrics[];
  bestTestAcc: number;
}

/**
 * The device a run trains on, said in one line: 'auto' takes cuda:0 when a CUDA GPU is usable and the CPU
 * otherwise ("device: cpu (no CUDA GPU found)"); 'cuda'/'cuda:N' where none is usable fails with the reason.
 */
export function resolveDevice(device: TrainConfig['device'], log: (line: string) => void): Device {
  if (device === 'cpu') {
    log('device: cpu');
    return 'cpu';
  }
  const count = native.cudaDeviceCount();
  if (device === 'auto') {
    if (count === 0) {
      log(`device: cpu (${native.cudaInfo().reason || 'no CUDA GPU found'})`);
      return 'cpu';
    }
    log(`device: cuda:0 (${native.cudaDeviceInfo(0).name})`);
    return 'cuda:0';
  }
  const index = device === 'cuda' ? 0 : Number(device.slice(5));
  if (count === 0) {
    const reason = cudaUnavailableReason();
    return failWith('DEVICE_UNAVAILABLE', { device, reason }, `device '${device}' cannot be used: ${reason}. Use device 'cpu' instead.`);
  }
  if (index >= count) {
    const reason = `${count} CUDA device${count === 1 ? ' is' : 's are'} visible (cuda:0${count > 1 ? `..cuda:${count - 1}` : ''})`;
    return failWith('DEVICE_UNAVAILABLE', { device, reason }, `device '${device}' cannot be used: ${reason}.`);
  }
  log(`device: cuda:${index} (${native.cudaDeviceInfo(index).name})`);
  return `cuda:${index}`;
}

function loadData(c: TrainConfig): { train: Dataset; test: Dataset; source: string } {
  if (c.sample) {
    const { train, test } = loadSample();
    return { train, test, source: 'bundled Fashion-MNIST sample' };
  }
  const loader = c.dataset === 'mnist' ? loadMnist : loadFashionMnist;
  const { train, test } = loader(c.data === null ? {} : { dir: c.data });
  return { train, test, source: c.dataset };
}

/** fit()'s optimiser and schedule settings for a train config (the settings that apply to its choices only). */
function fitSettings(c: TrainConfig): FitOptions {
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
  };
}

/** The training subset (seeded) and the test set of a config. */
function trainingData(c: TrainConfig): { train: Dataset; test: Dataset; name: string } {
  const data = loadData(c);
  const subsetSize = c.subset ?? (c.sample ? data.train.count : Math.min(20_000, data.train.count));
  if (subsetSize > data.train.count)
    fail(`subset ${subsetSize} is larger than the ${data.train.count} training images of the ${data.source}`);
  const train = subsetSize === data.train.count && c.subset === null && c.sample ? data.train : takeSubset(data.train, subsetSize, c.seed);
  return { train, test: data.test, name: data.source };
}

function buildModel(c: TrainConfig, device: Device): CSNN {
  native.cudaSetPrecision(c.precision); // process-wide (worker threads share it): the run's setting from here on
  return new CSNN({ channels: c.channels, T: c.T, neuron: c.neuron, surrogate: surrogate.parse(c.surrogate), dtype: 'float32', device });
}

/** train()'s and resume()'s words for the coded errors of the run folder, the data and the device. */
const TRAIN_WORDING: Wording = {
  RUN_EXISTS: (d) => `'${d.dir}' already holds a run (last.safetensors); continue it with resume('${d.dir}') or choose another out`,
  RUN_NOT_FOUND: (d) => `resume: '${d.dir}' is not a run folder (no config.json)`,
  RUN_NOT_STARTED: (d) => `resume: '${d.dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again with train({ out: '${d.dir}', ... })`,
  RUN_FINISHED: (d) => `resume: '${d.dir}' has finished ${finishedText(Number(d.done), Number(d.epochs))}; pass { epochs } with a larger total to train on`,
  DATA_NOT_FOUND: (d) => dataNotFoundMessage(d, { dir: '`data`', sample: '`sample: true`' }),
};

async function inTrainWords<R>(run: () => Promise<R>): Promise<R> {
  try {
    return await run();
  } catch (error) {
    throw rephrase(error, TRAIN_WORDING);
  }
}

/** @internal trains on the calling thread (the worker thread runs this). */
export async function trainHere(partial: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  return inTrainWords(async () => {
    const config = resolveConfig(partial);
    const log = hooks.log ?? (() => {});
    const device = resolveDevice(config.device, log);
    const runDir = resolve(config.out);
    prepareRunDir(runDir, false); // before the data loads: a folder that cannot be used fails at once
    const data = trainingData(config);
    const model = buildModel(config, device);
    const rows = init.apply(model, config.init, { betaMode: config.betaMode, seed: config.seed });
    for (const line of init.formatTable(rows, config.init)) log(line);
    const result = await fit(model, data, { ...fitSettings(config), ...hooks, out: runDir, config: { ...config } });
    return { runDir, config, metrics: result.metrics, bestTestAcc: result.bestTestAcc };
  });
}

/** @internal resumes on the calling thread (the worker thread runs this). */
export async function resumeHere(runDirArg: string, hooks: TrainHooks = {}, overrides: { epochs?: number } = {}): Promise<TrainResult> {
  return inTrainWords(async () => {
    const runDir = resolve(runDirArg);
    const saved = readRunConfig(runDir);
    delete saved.ikun_version;
    const config = resolveConfig({ ...(saved as Partial<TrainConfig>), out: runDir, ...(overrides.epochs !== undefined ? { epochs: overrides.epochs } : {}) });
    const device = resolveDevice(config.device, hooks.log ?? (() => {}));
    checkResumable(runDir); // before the data loads
    const data = trainingData(config);
    const result = await fit(buildModel(config, device), data, { ...fitSettings(config), ...hooks, out: runDir, resume: true, config: { ...config } });
    return { runDir, config, metrics: result.metrics, bestTestAcc: result.bestTestAcc };
  });
}

// ---- off the JS thread ---------------------------------------------------------------------------------
// Each training step is seconds of native work; run the loop in a worker thread so the caller's event
// loop (servers, progress bars, signals) stays responsive. Hooks run on the caller's thread; a hook that
// throws stops the run after that epoch, like a killed process (the run folder can then be resumed).

type WorkerRequest = { kind: 'train'; config: Partial<TrainConfig> } | { kind: 'resume'; runDir: string; overrides: { epochs?: number } };
export type WorkerMessage =
  | { kind: 'log'; line: string }
  | { kind: 'step'; info: StepInfo }
  | { kind: 'epoch'; metrics: EpochMetrics }
  | { kind: 'done'; result: TrainResult }
  | { kind: 'error'; message: string; code?: string; details?: ErrorDetails };

function workerScript(): URL {
  // Compiled next to this file; under a TypeScript runner (vitest), the compiled copy in dist/.
  const sibling = new URL('./train-worker.js', import.meta.url);
  if (existsSync(sibling)) return sibling;
  const compiled = pathToFileURL(join(packageRoot(), 'dist', 'lib', 'train-worker.js'));
  if (!existsSync(compiled)) fail(`the training worker ${compiled.pathname} is missing; build it with 'npm run build:ts'`);
  return compiled;
}

// After each epoch the worker waits on `gate` until the caller's onEpoch hook has run: 1 continue, 2 stop.
// So a hook that throws stops the run exactly after that epoch, as a killed process would.
export const GATE_WAIT = 0, GATE_CONTINUE = 1, GATE_STOP = 2;

function runInWorker(request: WorkerRequest, hooks: TrainHooks): Promise<TrainResult> {
  return new Promise((resolveResult, reject) => {
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(workerScript(), { workerData: { ...request, gate } });
    const openGate = (value: number): void => {
      Atomics.store(gate, 0, value);
      Atomics.notify(gate, 0);
    };
    let settled = false;
    const finish = (error: Error | null, result?: TrainResult): void => {
      if (settled) return;
      settled = true;
      if (error) {
        openGate(GATE_STOP);
        void worker.terminate();
        reject(error);
      } else resolveResult(result!);
    };
    worker.on('message', (message: WorkerMessage) => {
      try {
        if (message.kind === 'log') hooks.log?.(message.line);
        else if (message.kind === 'step') hooks.onStep?.(message.info);
        else if (message.kind === 'epoch') {
          hooks.onEpoch?.(message.metrics);
          openGate(GATE_CONTINUE);
        }
        else if (message.kind === 'done') finish(null, message.result);
        else finish(message.code ? new IkunError(message.code, message.message, message.details) : new Error(message.message));
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
    worker.on('error', (error) => finish(error));
    worker.on('exit', (code) => finish(new Error(`ikun: the training worker stopped unexpectedly (exit code ${code})`)));
  });
}

/**
 * Trains a CSNN from scratch into config.out, in a worker thread; resolves when all epochs are done.
 * Invalid configurations are rejected before the worker starts.
 */
export async function train(partial: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  resolveConfig(partial);
  return runInWorker({ kind: 'train', config: partial }, hooks);
}

/** Continues a run folder from last.safetensors; the remaining epochs give the same metrics as an uninterrupted run. */
export async function resume(runDir: string, hooks: TrainHooks = {}, overrides: { epochs?: number } = {}): Promise<TrainResult> {
  if (typeof runDir !== 'string' || runDir === '') fail(`resume: runDir must be a folder path, got ${describe(runDir)}`);
  return runInWorker({ kind: 'resume', runDir, overrides }, hooks);
}
