// The paper's training procedure (ikun-paper.md, "The experiment") as one configuration: the data set
// and its seeded subset, the CSNN and its initialisation, then fit() runs the loop (seeded shuffling per
// epoch with the last partial batch dropped, MSE on firing rates, membranes reset after every batch, the
// schedule stepped once per epoch) and writes the run folder: config.json, metrics.jsonl, metrics.csv,
// best.safetensors, last.safetensors. train() and resume() run it in a worker thread (lib/train/worker-host.ts).
// Everything that can be checked without training (the configuration, the device, the output folder, the
// data) is checked before the run folder is created or written.
import { dirname, resolve } from 'node:path';
import { dataNotFoundMessage, loadFashionMnist, loadMnist, loadSample, subset as takeSubset, type Dataset } from './data.js';
import { describe, fail, failWith, rephrase, type Wording } from './errors.js';
import { checkFolderUsable } from './files.js';
import { fit } from './fit.js';
import { divergedMessage } from './fit/divergence.js';
import { checkNoRunIn, checkResumable, finishedText, readRunConfig } from './fit/run-folder.js';
import * as init from './init.js';
import { CSNN } from './models.js';
import { native } from './native.js';
import * as surrogate from './surrogate.js';
import { cudaUnavailableReason, type Device } from './tensor.js';
import {
  checkResumeOverrides, configFromRecord, fitSettings, recordedConfig, resolveConfig, withOverrides, type ResumeOverrides, type TrainConfig,
} from './train/config.js';
import { runInWorker, type TrainHooks, type TrainResult } from './train/worker-host.js';

export { DEFAULT_CONFIG, RESUME_OVERRIDES, resolveConfig, type ResumeOverrides, type TrainConfig } from './train/config.js';
export type { TrainHooks, TrainResult, WorkerMessage } from './train/worker-host.js';
export { GATE, GATE_CONTINUE, GATE_STOP, GATE_WAIT, STOP } from './train/worker-host.js';
export type { EpochMetrics, StepInfo } from './fit.js';

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

/** The training subset (seeded) and the test set of a config; fails on a data set without images. */
function trainingData(c: TrainConfig): { train: Dataset; test: Dataset; name: string; subsetSize: number } {
  const data = loadData(c);
  const where = c.sample ? '' : c.data === null ? '' : ` in ${c.data}`;
  if (data.train.count === 0 || data.test.count === 0)
    fail(`the ${data.source}${where} has ${data.train.count} training and ${data.test.count} test images; training needs both`);
  const subsetSize = c.subset ?? (c.sample ? data.train.count : Math.min(20_000, data.train.count));
  if (subsetSize > data.train.count)
    fail(`subset ${subsetSize} is larger than the ${data.train.count} training images of the ${data.source}`);
  const train = subsetSize === data.train.count && c.subset === null && c.sample ? data.train : takeSubset(data.train, subsetSize, c.seed);
  return { train, test: data.test, name: data.source, subsetSize };
}

function buildModel(c: TrainConfig, device: Device): CSNN {
  native.cudaSetPrecision(c.precision); // process-wide (worker threads share it): the run's setting from here on
  return new CSNN({ channels: c.channels, T: c.T, neuron: c.neuron, surrogate: surrogate.parse(c.surrogate), dtype: 'float32', device });
}

/** train()'s and resume()'s words for the coded errors of the run folder, the data, the device and the run. */
const TRAIN_WORDING: Wording = {
  RUN_EXISTS: (d) => `'${d.dir}' already holds a run (last.safetensors); continue it with resume('${d.dir}') or choose another out`,
  RUN_NOT_FOUND: (d) => `resume: '${d.dir}' is not a run folder (no config.json)`,
  RUN_NOT_STARTED: (d) => `resume: '${d.dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again with train({ out: '${d.dir}', ... })`,
  RUN_FINISHED: (d) => `resume: '${d.dir}' has finished ${finishedText(Number(d.done), Number(d.epochs))}; pass { epochs } with a larger total to train on`,
  DATA_NOT_FOUND: (d) => dataNotFoundMessage(d, { dir: '`data`', sample: '`sample: true`' }),
  DIVERGED: (d) => divergedMessage(d, "onNan: 'skip'"),
  CHECKPOINT_UNREADABLE: (d) => `resume: no checkpoint in '${d.dir}' can be read (${d.reasons}); start the run again with train({ out: ... }) in another folder`,
  INTERRUPTED: (d) => `${stoppedText(d)}${d.saved ? `; continue it with resume('${d.dir}')` : ''}`,
  WRITE_FAILED: (d) => `cannot write ${JSON.stringify(d.path)}: ${d.reason}. The previous file is left as it was; once the disk has space again, continue the run with resume('${dirname(String(d.path))}')`,
};

/** 'stopped in epoch 3 after step 20 of 156 (last.safetensors holds that point)' from an INTERRUPTED error's details. */
export function stoppedText(d: Readonly<Record<string, string | number>>): string {
  const where = Number(d.step) === 0 ? `after epoch ${d.epoch}` : `in epoch ${Number(d.epoch) + 1} after step ${d.step} of ${d.steps}`;
  return `stopped ${where}${d.saved ? ' (last.safetensors holds that point)' : ''}`;
}

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
    // Before the data loads, and without creating or writing anything: a folder that cannot be used fails at once.
    checkFolderUsable(runDir);
    checkNoRunIn(runDir);
    const data = trainingData(config);
    const model = buildModel(config, device);
    const rows = init.apply(model, config.init, { betaMode: config.betaMode, seed: config.seed });
    for (const line of init.formatTable(rows, config.init)) log(line);
    const result = await fit(model, data, { ...fitSettings(config), ...hooks, out: runDir, config: recordedConfig(config, { device, subsetSize: data.subsetSize }) });
    return { runDir, config, metrics: result.metrics, bestTestAcc: result.bestTestAcc };
  });
}

/** @internal resumes on the calling thread (the worker thread runs this). */
export async function resumeHere(runDirArg: string, hooks: TrainHooks = {}, overrides: ResumeOverrides = {}): Promise<TrainResult> {
  return inTrainWords(async () => {
    const runDir = resolve(runDirArg);
    const saved = configFromRecord(readRunConfig(runDir));
    const config = resolveConfig({ ...withOverrides(saved, checkResumeOverrides(overrides)), out: runDir });
    const device = resolveDevice(config.device, hooks.log ?? (() => {}));
    checkResumable(runDir); // before the data loads
    const data = trainingData(config);
    const result = await fit(buildModel(config, device), data, {
      ...fitSettings(config), ...hooks, out: runDir, resume: true, config: recordedConfig(config, { device, subsetSize: data.subsetSize }),
    });
    return { runDir, config, metrics: result.metrics, bestTestAcc: result.bestTestAcc };
  });
}

/**
 * Trains a CSNN from scratch into config.out, in a worker thread; resolves when all epochs are done.
 * Invalid configurations are rejected before the worker starts. hooks.signal stops the run after the
 * step in progress, saving that point in last.safetensors (the promise rejects with code INTERRUPTED).
 */
export async function train(partial: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  resolveConfig(partial);
  return runInWorker({ kind: 'train', config: partial }, hooks);
}

/** Continues a run folder from its last checkpoint (inside an epoch when it stopped there); the metrics are those of an uninterrupted run. */
export async function resume(runDir: string, hooks: TrainHooks = {}, overrides: ResumeOverrides = {}): Promise<TrainResult> {
  if (typeof runDir !== 'string' || runDir === '') fail(`resume: runDir must be a folder path, got ${describe(runDir)}`);
  // The overrides' values are checked with the saved configuration, in the worker; their keys here.
  return runInWorker({ kind: 'resume', runDir, overrides: checkResumeOverrides(overrides) }, hooks);
}
