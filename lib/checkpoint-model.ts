// A trained CSNN back from a checkpoint file, for the commands that analyse one (eval, the experiment's
// Hessian step): the model's shape from the config.json next to it (an `ikun train` run folder), else
// from the checkpoint's 'config' metadata, else (a file written by PyTorch with the same keys) the width
// read off the first convolution's weight and the paper's defaults for the rest.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as checkpoint from './checkpoint.js';
import { fail } from './errors.js';
import { CSNN } from './models.js';
import * as surrogate from './surrogate.js';
import { DEFAULT_CONFIG, type TrainConfig } from './train.js';
import type { Device } from './tensor.js';

export type ModelConfig = Pick<TrainConfig, 'channels' | 'T' | 'neuron' | 'surrogate' | 'dataset' | 'data' | 'sample' | 'loss'> & Record<string, unknown>;

export interface LoadedCheckpoint {
  model: CSNN;
  config: ModelConfig;
  /** Where the config came from: the config.json path, '<file> metadata', or '<file> weights'. */
  configSource: string;
  metadata: Record<string, string>;
}

const FIRST_CONV = 'conv_fc.0.weight';

function stripPrefix(message: string): string {
  return message.replace(/^ikun: /, '');
}

function savedConfig(path: string, contents: checkpoint.CheckpointContents, overrides: Partial<ModelConfig>): { config: ModelConfig; source: string } {
  const file = join(dirname(path), 'config.json');
  let saved: unknown = {};
  let source: string;
  if (existsSync(file)) {
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      return fail(`cannot read the run's config ${file}: ${(error as Error).message}`);
    }
    source = file;
  } else if (contents.metadata.config !== undefined) {
    try {
      saved = JSON.parse(contents.metadata.config);
    } catch {
      return fail(`${path}: no config.json next to it and its 'config' metadata is not valid JSON`);
    }
    source = `${path} metadata`;
  } else {
    const conv = contents.tensors.get(FIRST_CONV);
    if (!conv || conv.shape.length !== 4)
      return fail(`${path}: no config.json next to it, no 'config' metadata and no '${FIRST_CONV}' weight, so the model's shape is unknown`);
    saved = { channels: conv.shape[0] };
    source = `${path} weights (channels from ${FIRST_CONV}; T, neuron and surrogate the paper's defaults unless given)`;
  }
  if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) fail(`${source}: the config must be a JSON object`);
  return { config: { ...DEFAULT_CONFIG, ...(saved as Record<string, unknown>), ...overrides } as ModelConfig, source };
}

/** Reads a checkpoint and builds its model in eval mode; every problem names the file and what is wrong. */
export function loadCheckpointModel(path: string, options: { device?: Device; overrides?: Partial<ModelConfig> } = {}): LoadedCheckpoint {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    fail(`checkpoint ${path} not found`);
  }
  if (!isFile) fail(`checkpoint ${path} is not a file (give the .safetensors file, e.g. RUN/best.safetensors)`);
  let contents: checkpoint.CheckpointContents;
  try {
    contents = checkpoint.readCheckpoint(path);
  } catch (error) {
    return fail(`cannot read the checkpoint ${path}: ${stripPrefix((error as Error).message)}`);
  }
  const { config, source } = savedConfig(path, contents, options.overrides ?? {});
  let model: CSNN;
  try {
    model = new CSNN({ channels: config.channels, T: config.T, neuron: config.neuron, surrogate: surrogate.parse(config.surrogate), dtype: 'float32',
      device: options.device ?? 'cpu' });
  } catch (error) {
    return fail(`${source}: cannot build the CSNN from the run's config: ${stripPrefix((error as Error).message)}`);
  }
  checkpoint.loadModelState(model, contents, path);
  model.eval();
  const metadata = Object.fromEntries(Object.entries(contents.metadata).filter(([k]) => k !== 'config' && k !== 'optimizer' && k !== 'scheduler'));
  return { model, config, configSource: source, metadata };
}
