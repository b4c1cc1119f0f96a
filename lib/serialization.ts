// save(stateDict, path) / load(path): state dicts as safetensors files, the format PyTorch users load
// with safetensors.torch.load_file. Float tensors keep their dtype; BatchNorm's num_batches_tracked
// counter is written as I64, PyTorch's dtype for it. Files are written atomically.
import { describe, fail } from './errors.js';
import { stateDictEntries, type StateDict } from './nn/state-dict.js';
import { readSafetensors, writeSafetensorsAtomic, type SafeTensor } from './safetensors.js';
import { Tensor } from './tensor.js';

/** PyTorch keeps BatchNorm's batch counter as int64 (ikun as an exact float64 scalar). */
export function isBatchCounter(name: string): boolean {
  return name.endsWith('num_batches_tracked');
}

/** The safetensors form of one tensor (a copy of its values). */
export function toSafeTensor(name: string, t: Tensor): SafeTensor {
  const values = t.toArray();
  const shape = [...t.shape];
  if (isBatchCounter(name)) return { dtype: 'I64', shape, data: BigInt64Array.from(values, (v) => BigInt(Math.round(v))) };
  if (values instanceof Float32Array) return { dtype: 'F32', shape, data: values };
  if (values instanceof Float64Array) return { dtype: 'F64', shape, data: values };
  return { dtype: 'I32', shape, data: values };
}

/** A tensor from a safetensors entry: F32, F64 and I32 as they are, I64 as int32 (values must fit). */
export function fromSafeTensor(name: string, st: SafeTensor, source: string): Tensor {
  if (st.data instanceof BigInt64Array) {
    const ints = new Int32Array(st.data.length);
    st.data.forEach((v, i) => {
      if (v < -(2n ** 31n) || v >= 2n ** 31n) fail(`${source}: '${name}' holds the int64 value ${v}, outside the int32 range ikun keeps integers in`);
      ints[i] = Number(v);
    });
    const t = Tensor.empty(st.shape, 'int32');
    return t.copyFrom(ints);
  }
  const dtype = st.data instanceof Float32Array ? 'float32' : st.data instanceof Float64Array ? 'float64' : 'int32';
  return Tensor.empty(st.shape, dtype).copyFrom(st.data);
}

export interface SaveOptions {
  /** String metadata stored in the file header (safetensors' __metadata__). */
  metadata?: Record<string, string>;
}

/** Writes a state dict (model.stateDict(), or any tensors by name) to a safetensors file. */
export function save(stateDict: StateDict | Map<string, Tensor>, path: string, options: SaveOptions = {}): void {
  if (typeof path !== 'string' || path === '') fail(`save: path must be a file path, got ${describe(path)}`);
  const entries = stateDictEntries(stateDict, 'save');
  for (const [name, t] of entries) if (t.device !== 'cpu') fail(`save: stateDict['${name}'] is on ${t.device}; move it with .to('cpu') first`);
  if (options === null || typeof options !== 'object') fail(`save: options must be an object like { metadata }, got ${describe(options)}`);
  for (const key of Object.keys(options)) if (key !== 'metadata') fail(`save: unknown option '${key}' (known: metadata)`);
  writeSafetensorsAtomic(path, entries.map(([name, t]) => [name, toSafeTensor(name, t)]), options.metadata);
}

/** Reads a safetensors file into a state dict (ready for model.loadStateDict). I64 entries come back as int32. */
export function load(path: string): StateDict {
  if (typeof path !== 'string' || path === '') fail(`load: path must be a file path, got ${describe(path)}`);
  const contents = readSafetensors(path);
  const out: StateDict = {};
  for (const [name, st] of contents.tensors) out[name] = fromSafeTensor(name, st, path);
  return out;
}
