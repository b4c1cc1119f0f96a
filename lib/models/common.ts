// Options every ready-made spiking network takes (T, neuron, surrogate, dtype, device), checked once.
import { checkInteger, checkOneOf, describe, fail } from '../errors.js';
import { IFNode, LIFNode, type Module } from '../nn/index.js';
import { Surrogate, atan } from '../surrogate.js';
import { checkDType, checkDevice, type DType, type Device } from '../tensor.js';

export interface SpikingModelOptions {
  /** Time steps the static input is repeated over (default 4). */
  T?: number;
  /** 'if' (default) or 'lif' neurons. */
  neuron?: 'if' | 'lif';
  /** Surrogate gradient of every neuron (default surrogate.atan({ alpha: 2 })). */
  surrogate?: Surrogate;
  dtype?: DType;
  device?: Device;
}

export const SPIKING_MODEL_KEYS = ['T', 'neuron', 'surrogate', 'dtype', 'device'] as const;

export interface ResolvedSpiking {
  T: number;
  neuron: 'if' | 'lif';
  surrogate: Surrogate;
  dtype: DType;
  device: Device;
  /** A new neuron layer of the chosen kind. */
  node(): Module;
}

/** Checks the shared options of `model` ('models.csnn', ...); o has passed checkKnownKeys already. */
export function resolveSpiking(model: string, o: Record<string, unknown>): ResolvedSpiking {
  if (o.surrogate !== undefined && !(o.surrogate instanceof Surrogate))
    fail(`${model}: surrogate must be made by ikun's surrogate module (e.g. surrogate.atan({ alpha: 2 })), got ${describe(o.surrogate)}`);
  const neuron = o.neuron === undefined ? 'if' : checkOneOf(`${model}: neuron`, o.neuron, ['if', 'lif'] as const);
  const surrogate = (o.surrogate as Surrogate | undefined) ?? atan({ alpha: 2 });
  return {
    T: o.T === undefined ? 4 : checkInteger(`${model}: T`, o.T, 1),
    neuron,
    surrogate,
    dtype: o.dtype === undefined ? 'float32' : checkDType(`${model}: dtype`, o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice(`${model}: device`, o.device),
    node: () => (neuron === 'if' ? new IFNode({ surrogate }) : new LIFNode({ surrogate })),
  };
}
