// The paper's training procedure (ikun-paper.md, "The experiment"): a seeded subset of the training
// images, seeded shuffling per epoch with the last partial batch dropped, MSE on firing rates, membranes
// reset after every batch in training and testing, the schedule stepped once per epoch. Writes a run
// folder: config.json, metrics.jsonl, metrics.csv, best.safetensors, last.safetensors.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as checkpoint from './checkpoint.js';
import { DataLoader, loadFashionMnist, loadMnist, loadSample, packageRoot, subset as takeSubset, type Dataset } from './data.js';
import { checkBoolean, checkFiniteNumber, checkInteger, checkKnownKeys, checkOneOf, checkOptionsObject, describe, fail } from './errors.js';
import { ensureWritableFolder, writeFileAtomic } from './files.js';
import * as init from './init.js';
import * as lossFns from './loss.js';
import { CSNN } from './models.js';
import { native } from './native.js';
import { Adam, AdamW, CosineAnnealingLR, LinearWarmup, SGD, StepLR, gradNorm, type Optimizer, type Scheduler, type SchedulerState } from './optim.js';
import * as surrogate from './surrogate.js';
import { Tensor } from './tensor.js';

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
  /** The run folder. */
  out: string;
}

export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  dataset: 'fashion-mnist', data: null, sample: false, init: 'ikun_v1', betaMode: 'code', opt: 'sgd', lr: null,
  momentum: 0.9, nesterov: false, weightDecay: 0, schedule: 'cosine', etaMin: 0, stepSize: 30, gamma: 0.1, warmup: 0,
  epochs: 64, batch: 128, testBatch: null, T: 4, channels: 128, subset: null, seed: 42, neuron: 'if',
  surrogate: 'atan:2', loss: 'mse', device: 'auto', out: 'runs/run',
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
  if (typeof c.device !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(c.device))
    fail(`device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got ${describe(c.device)}`);
  if (typeof c.out !== 'string' || c.out === '') fail(`out must be a folder path, got ${describe(c.out)}`);
  return c;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  lr: number;
  grad_norm: number;
  epoch_s: number;
  test_s: number;
  samples_per_s: number;
  firing_rates: Record<string, number>;
}

export interface StepInfo {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  phase: 'train' | 'test';
}

export interface TrainHooks {
  /** Human-readable lines (data, init table, device). */
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (metrics: EpochMetrics) => void;
}

export interface TrainResult {
  runDir: string;
  config: TrainConfig;
  metrics: EpochMetrics[];
  bestTestAcc: number;
}

const CSV_COLUMNS = ['epoch', 'train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'grad_norm', 'epoch_s', 'test_s', 'samples_per_s'] as const;

/** Picks the compute device: 'auto' is the CPU until this build can run CUDA tensors. */
export function resolveDevice(device: TrainConfig['device'], log: (line: string) => void): 'cpu' {
  if (device === 'cpu') return 'cpu';
  const info = native.cudaInfo();
  if (device === 'auto') {
    log(`device: cpu (${info.available ? 'CUDA tensors are not available in this version of ikun yet' : `no usable GPU: ${info.reason}`})`);
    return 'cpu';
  }
  return fail(`device '${device}' cannot be used: ${info.available ? 'CUDA tensors are not available in this version of ikun yet' : info.reason}. Use --device cpu.`);
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

function makeOptimizer(c: TrainConfig, model: CSNN): Optimizer {
  const params = model.namedParameters();
  if (c.opt === 'sgd') return new SGD(params, { lr: c.lr ?? 0.1, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
  const Cls = c.opt === 'adam' ? Adam : AdamW;
  return new Cls(params, { lr: c.lr ?? 1e-3, weightDecay: c.opt === 'adamw' && c.weightDecay === 0 ? 1e-2 : c.weightDecay });
}

function makeScheduler(c: TrainConfig, optimizer: Optimizer): Scheduler | null {
  const remaining = Math.max(1, c.epochs - c.warmup);
  let main: Scheduler | null = null;
  if (c.schedule === 'cosine') main = new CosineAnnealingLR(optimizer, { tMax: remaining, etaMin: c.etaMin });
  else if (c.schedule === 'step') main = new StepLR(optimizer, { stepSize: c.stepSize, gamma: c.gamma });
  if (c.warmup > 0) return new LinearWarmup(optimizer, { warmupEpochs: c.warmup, ...(main ? { after: main } : {}) });
  return main;
}

function imagesTensor(images: Float32Array, count: number): Tensor {
  const x = Tensor.empty([count, 1, 28, 28], 'float32');
  x.copyFrom(images);
  return x;
}

function correctCount(rate: Tensor, labels: Int32Array): number {
  const predicted = lossFns.predict(rate);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct;
}

const yieldToEventLoop = (): Promise<void> => new Promise((done) => setImmediate(done));

/** Checks the run folder can be written before any work is done. */
function prepareRunDir(dir: string, resuming: boolean): void {
  ensureWritableFolder(dir);
  // A folder whose run stopped before its first epoch ended holds nothing to keep: start over in it.
  if (!resuming && existsSync(join(dir, 'last.safetensors')))
    fail(`'${dir}' already holds a run (last.safetensors); continue it with --resume ${dir} or choose another --out`);
}

function csvLine(m: EpochMetrics, layers: string[]): string {
  return [...CSV_COLUMNS.map((k) => String(m[k])), ...layers.map((l) => String(m.firing_rates[l] ?? ''))].join(',');
}

function writeMetrics(dir: string, metrics: EpochMetrics[], layers: string[]): void {
  writeFileAtomic(join(dir, 'metrics.jsonl'), metrics.map((m) => JSON.stringify(m)).join('\n') + (metrics.length ? '\n' : ''));
  const header = [...CSV_COLUMNS, ...layers.map((l) => `firing_rate_${l}`)].join(',');
  writeFileAtomic(join(dir, 'metrics.csv'), [header, ...metrics.map((m) => csvLine(m, layers))].join('\n') + '\n');
}

interface RunState {
  config: TrainConfig;
  runDir: string;
  model: CSNN;
  optimizer: Optimizer;
  scheduler: Scheduler | null;
  metrics: EpochMetrics[];
  bestTestAcc: number;
}

function buildModel(c: TrainConfig): CSNN {
  return new CSNN({ channels: c.channels, T: c.T, neuron: c.neuron, surrogate: surrogate.parse(c.surrogate), dtype: 'float32', device: 'cpu' });
}

async function runEpochs(state: RunState, hooks: TrainHooks): Promise<TrainResult> {
  const { config: c, runDir, model, optimizer, scheduler } = state;
  const log = hooks.log ?? (() => {});
  const data = loadData(c);
  const subsetSize = c.subset ?? (c.sample ? data.train.count : Math.min(20_000, data.train.count));
  if (subsetSize > data.train.count)
    fail(`subset ${subsetSize} is larger than the ${data.train.count} training images of the ${data.source}`);
  const trainSet = subsetSize === data.train.count && c.subset === null && c.sample ? data.train : takeSubset(data.train, subsetSize, c.seed);
  const trainLoader = new DataLoader(trainSet, { batchSize: c.batch, shuffle: true, dropLast: true, seed: c.seed });
  const testLoader = new DataLoader(data.test, { batchSize: c.testBatch ?? c.batch, shuffle: false, dropLast: false });
  if (trainLoader.batchCount() === 0) fail(`batch ${c.batch} is larger than the ${trainSet.count} training images: no full batch to train on`);
  log(`data: ${data.source}, ${trainSet.count} training images (${trainLoader.batchCount()} batches of ${c.batch}), ${data.test.count} test images`);
  const lossFn = c.loss === 'mse' ? lossFns.mseRate : lossFns.ceRate;
  const spiking = model.spikingLayers();
  const layerNames = spiking.map(([n]) => n);
  const params = model.parameters();

  for (let epoch = state.metrics.length + 1; epoch <= c.epochs; epoch++) {
    const lr = optimizer.lr;
    const start = performance.now();
    model.train();
    let lossSum = 0, correct = 0, seen = 0, normSum = 0, step = 0;
    const spikeSums = new Float64Array(spiking.length), spikeCounts = new Float64Array(spiking.length);
    const steps = trainLoader.batchCount();
    for (const batch of trainLoader.epoch(epoch - 1)) {
      const x = imagesTensor(batch.images, batch.size);
      optimizer.zeroGrad();
      const rate = model.forward(x);
      const rates = model.lastFiringRates();
      layerNames.forEach((name, i) => {
        spikeSums[i]! += rates[name]!;
        spikeCounts[i]! += 1;
      });
      const { loss, grad } = lossFn(rate, batch.labels);
      model.backwardImpl(grad, false);
      normSum += gradNorm(params);
      optimizer.step();
      lossSum += loss * batch.size;
      correct += correctCount(rate, batch.labels);
      seen += batch.size;
      model.resetState(); // the paper resets membranes after every batch
      for (const t of [x, rate, grad]) t.dispose();
      hooks.onStep?.({ epoch, step: ++step, steps, loss, phase: 'train' });
      await yieldToEventLoop();
    }
    const trainSeconds = (performance.now() - start) / 1000;
    const testStart = performance.now();
    const test = await evaluate(model, testLoader, lossFn, (s, n, l) => hooks.onStep?.({ epoch, step: s, steps: n, loss: l, phase: 'test' }));
    const testSeconds = (performance.now() - testStart) / 1000;
    scheduler?.step();
    const m: EpochMetrics = {
      epoch,
      train_loss: lossSum / seen,
      train_acc: correct / seen,
      test_loss: test.loss,
      test_acc: test.accuracy,
      lr,
      grad_norm: normSum / steps,
      epoch_s: trainSeconds + testSeconds,
      test_s: testSeconds,
      samples_per_s: seen / trainSeconds,
      firing_rates: Object.fromEntries(layerNames.map((n, i) => [n, spikeSums[i]! / spikeCounts[i]!])),
    };
    state.metrics.push(m);
    const improved = m.test_acc > state.bestTestAcc;
    if (improved) state.bestTestAcc = m.test_acc;
    // Metrics first, then the checkpoint: a run killed in between redoes this epoch on --resume.
    writeMetrics(runDir, state.metrics, layerNames);
    const metadata = { config: JSON.stringify(c), epoch: String(epoch), seed: String(c.seed), best_test_acc: String(state.bestTestAcc) };
    if (improved) checkpoint.saveCheckpoint(join(runDir, 'best.safetensors'), model, { metadata: { ...metadata, test_acc: String(m.test_acc) } });
    checkpoint.saveCheckpoint(join(runDir, 'last.safetensors'), model, { optimizer, ...(scheduler ? { scheduler } : {}), metadata });
    hooks.onEpoch?.(m);
  }
  return { runDir, config: c, metrics: state.metrics, bestTestAcc: state.bestTestAcc };
}

/** Test pass in eval mode (running BatchNorm statistics), membranes reset after every batch. */
export async function evaluate(model: CSNN, loader: DataLoader, lossFn: typeof lossFns.mseRate,
  onStep?: (step: number, steps: number, loss: number) => void): Promise<{ loss: number; accuracy: number }> {
  model.eval();
  let lossSum = 0, correct = 0, seen = 0, step = 0;
  const steps = loader.batchCount();
  for (const batch of loader.epoch(0)) {
    const x = imagesTensor(batch.images, batch.size);
    const rate = model.forward(x);
    const { loss, grad } = lossFn(rate, batch.labels);
    lossSum += loss * batch.size;
    correct += correctCount(rate, batch.labels);
    seen += batch.size;
    model.resetState();
    for (const t of [x, rate, grad]) t.dispose();
    onStep?.(++step, steps, loss);
    await yieldToEventLoop();
  }
  return { loss: lossSum / seen, accuracy: correct / seen };
}

function writeConfig(runDir: string, config: TrainConfig): void {
  writeFileAtomic(join(runDir, 'config.json'), JSON.stringify({ ...config, out: runDir, ikun_version: checkpoint.ikunVersion() }, null, 2) + '\n');
}

/** The saved scheduler position (epoch, base lr) with the hyperparameters of a freshly built schedule. */
function withScheduleOf(saved: SchedulerState, fresh: SchedulerState): SchedulerState {
  return { ...saved, hyper: fresh.hyper, ...(saved.after && fresh.after ? { after: withScheduleOf(saved.after, fresh.after) } : {}) };
}

/** @internal trains on the calling thread (the worker thread runs this). */
export async function trainHere(partial: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const config = resolveConfig(partial);
  const log = hooks.log ?? (() => {});
  resolveDevice(config.device, log);
  const runDir = resolve(config.out);
  prepareRunDir(runDir, false);
  const model = buildModel(config);
  const rows = init.apply(model, config.init, { betaMode: config.betaMode, seed: config.seed });
  for (const line of init.formatTable(rows, config.init)) log(line);
  const optimizer = makeOptimizer(config, model);
  const scheduler = makeScheduler(config, optimizer);
  writeConfig(runDir, config);
  return runEpochs({ config, runDir, model, optimizer, scheduler, metrics: [], bestTestAcc: -1 }, hooks);
}

/** @internal resumes on the calling thread (the worker thread runs this). */
export async function resumeHere(runDirArg: string, hooks: TrainHooks = {}, overrides: { epochs?: number } = {}): Promise<TrainResult> {
  const runDir = resolve(runDirArg);
  const configPath = join(runDir, 'config.json'), lastPath = join(runDir, 'last.safetensors');
  if (!existsSync(configPath)) fail(`--resume: '${runDir}' is not a run folder (no config.json)`);
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    return fail(`--resume: cannot read ${configPath}: ${(error as Error).message}`);
  }
  delete saved.ikun_version;
  const config = resolveConfig({ ...(saved as Partial<TrainConfig>), out: runDir, ...(overrides.epochs !== undefined ? { epochs: overrides.epochs } : {}) });
  const log = hooks.log ?? (() => {});
  resolveDevice(config.device, log);
  prepareRunDir(runDir, true);
  if (!existsSync(lastPath))
    fail(`--resume: '${runDir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again with the same --out`);
  const contents = checkpoint.readCheckpoint(lastPath);
  const model = buildModel(config);
  checkpoint.loadModelState(model, contents, lastPath);
  const optimizer = makeOptimizer(config, model);
  const scheduler = makeScheduler(config, optimizer);
  const optState = checkpoint.optimizerState(contents, lastPath);
  if (optState) optimizer.loadStateDict(optState);
  const done = checkpoint.metadataNumber(contents, 'epoch', lastPath);
  if (done >= config.epochs)
    fail(`--resume: '${runDir}' has finished all ${config.epochs} epochs; pass --epochs with a larger total to train on`);
  const schedState = checkpoint.schedulerState(contents, lastPath);
  if (scheduler && schedState) {
    // A new --epochs total reshapes the schedule (e.g. the cosine horizon): keep the saved position,
    // take the horizon from the new total.
    scheduler.loadStateDict(config.epochs === saved.epochs ? schedState : withScheduleOf(schedState, scheduler.stateDict()));
  }
  if (config.epochs !== saved.epochs) writeConfig(runDir, config);
  const metricsPath = join(runDir, 'metrics.jsonl');
  const metrics = existsSync(metricsPath)
    ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochMetrics).filter((m) => m.epoch <= done)
    : [];
  if (metrics.length !== done) fail(`--resume: metrics.jsonl holds ${metrics.length} of the ${done} epochs in last.safetensors; the run folder is inconsistent`);
  log(`resuming ${runDir} after epoch ${done} of ${config.epochs}`);
  const bestTestAcc = Number(contents.metadata.best_test_acc ?? -1);
  return runEpochs({ config, runDir, model, optimizer, scheduler, metrics, bestTestAcc }, hooks);
}

// ---- off the JS thread ---------------------------------------------------------------------------------
// Each training step is seconds of native work; run the loop in a worker thread so the caller's event
// loop (servers, progress bars, signals) stays responsive. Hooks run on the caller's thread; a hook that
// throws stops the run after that epoch, like a killed process (the run folder can then be --resume'd).

type WorkerRequest = { kind: 'train'; config: Partial<TrainConfig> } | { kind: 'resume'; runDir: string; overrides: { epochs?: number } };
export type WorkerMessage =
  | { kind: 'log'; line: string }
  | { kind: 'step'; info: StepInfo }
  | { kind: 'epoch'; metrics: EpochMetrics }
  | { kind: 'done'; result: TrainResult }
  | { kind: 'error'; message: string };

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
        else finish(new Error(message.message));
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
