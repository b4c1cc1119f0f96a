// Tensor: a shape, a dtype and a device over native memory. Views (reshape) share their storage.
// Float tensors carry activations and parameters; int32 tensors hold indices, labels and 0/1 masks.
import { inspect } from 'node:util';
import { native, type DTypeCode, type NativeStorage } from './native.js';
import { checkOptionsObject, checkKnownKeys, describe, fail } from './errors.js';
import * as TM from './tensor-math.js';
import { formatTensor } from './tensor-format.js';

export type FloatDType = 'float32' | 'float64';
export type DType = FloatDType | 'int32';
/** A device as given: 'cpu', 'cuda' (device 0) or 'cuda:N'. A tensor's own device is 'cpu' or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TensorData = ArrayLike<number>;
export type TensorValues = Float32Array | Float64Array | Int32Array;

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
}

const FLOAT_DTYPES: readonly DType[] = ['float32', 'float64'];
const DTYPES: readonly DType[] = ['float32', 'float64', 'int32'];

export function dtypeCode(dtype: DType): DTypeCode {
  return dtype === 'float32' ? 0 : dtype === 'float64' ? 1 : 2;
}

/** A floating-point dtype (what modules, parameters and activations use). */
export function checkDType(name: string, dtype: unknown): FloatDType {
  if (!FLOAT_DTYPES.includes(dtype as DType)) fail(`${name} must be 'float32' or 'float64', got ${describe(dtype)}`);
  return dtype as FloatDType;
}

/** Any dtype a tensor can have: the float ones, or int32 for indices, labels and masks. */
export function checkTensorDType(name: string, dtype: unknown): DType {
  if (!DTYPES.includes(dtype as DType)) fail(`${name} must be 'float32', 'float64' or 'int32', got ${describe(dtype)}`);
  return dtype as DType;
}

/** Whether value is one of the floating-point dtypes (what modules and parameters use). */
export function isDType(value: unknown): value is FloatDType {
  return FLOAT_DTYPES.includes(value as DType);
}

/** Why CUDA devices cannot be used here (no GPU, no driver, a build without CUDA), with what lies behind it. */
export function cudaUnavailableReason(): string {
  const info = native.cudaInfo();
  const reason = info.reason || 'no CUDA GPU found';
  return info.detail ? `${reason} (${info.detail})` : reason;
}

/**
 * Validates a device and returns its normal form ('cpu' or 'cuda:N'). A CUDA device that this build or
 * machine cannot provide is refused with the reason and what to use instead.
 */
export function checkDevice(name: string, device: unknown): Device {
  if (device === 'cpu') return 'cpu';
  const match = typeof device === 'string' ? /^cuda(?::(\d+))?$/.exec(device) : null;
  if (!match) return fail(`${name} must be 'cpu', 'cuda' or 'cuda:N', got ${describe(device)}`);
  const index = match[1] === undefined ? 0 : Number(match[1]);
  const count = native.cudaDeviceCount();
  if (count === 0) fail(`${name} '${device}' cannot be used: ${cudaUnavailableReason()}. Use device 'cpu' instead.`);
  if (index >= count) fail(`${name} '${device}' does not exist: ${count} CUDA device${count === 1 ? ' is' : 's are'} visible (cuda:0${count > 1 ? `..cuda:${count - 1}` : ''})`);
  return `cuda:${index}`;
}

/** -1 for the CPU, N for 'cuda:N' (the device index of native storages). */
export function deviceIndex(device: Device): number {
  if (device === 'cpu') return -1;
  return device === 'cuda' ? 0 : Number(device.slice(5));
}

export function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) fail(`${name} must be an array of non-negative integers, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      fail(`${name} must be an array of non-negative integers, got ${describe(shape)}`);
  }
  return [...(shape as number[])];
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function typedArrayFor(dtype: DType, data: TensorData): TensorValues {
  const Target = dtype === 'float32' ? Float32Array : dtype === 'float64' ? Float64Array : Int32Array;
  if (data instanceof Target) return data;
  // The typed-array constructor converts natively; .from() iterates element by element in JS.
  return ArrayBuffer.isView(data) ? new Target(data as unknown as ArrayLike<number>) : Target.from(data);
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** 'cpu' or 'cuda:N' */
  readonly device: Device;
  /** @internal native memory, shared by views */
  readonly storage: NativeStorage;

  /** @internal use tensor(), zeros() or Tensor.empty() */
  constructor(storage: NativeStorage, shape: readonly number[], dtype: DType, device: Device) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
  }

  /** @internal uninitialised memory, for op outputs that are fully written (device: already checked) */
  static empty(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return new Tensor(new native.Storage(dtypeCode(dtype), shapeSize(shape), false, deviceIndex(device)), shape, dtype, normalDevice(device));
  }

  /** @internal */
  static zeros(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return new Tensor(new native.Storage(dtypeCode(dtype), shapeSize(shape), true, deviceIndex(device)), shape, dtype, normalDevice(device));
  }

  /** Number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.storage.disposed;
  }

  /** A copy of the elements in row-major order (Float32Array, Float64Array or Int32Array by dtype); from a CUDA tensor this waits for the queued work. */
  toArray(): TensorValues {
    this.checkAlive('toArray');
    return this.storage.read();
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) fail(`item() needs a tensor with one element, this one has shape ${formatShape(this.shape)}`);
    return this.toArray()[0]!;
  }

  /** Overwrites the elements from another tensor or an array of the same element count (dtype converts). */
  copyFrom(source: Tensor | TensorData): this {
    this.checkAlive('copyFrom');
    if (source instanceof Tensor) {
      source.checkAlive('copyFrom source');
      if (source.size !== this.size)
        fail(`copyFrom: source has ${source.size} elements (shape ${formatShape(source.shape)}), this tensor has ${this.size} (shape ${formatShape(this.shape)})`);
      if (source.dtype === this.dtype || (source.dtype !== 'int32' && this.dtype !== 'int32')) this.storage.copyFrom(source.storage);
      else native.cast(source.storage, this.storage);
      return this;
    }
    if (source === null || typeof source !== 'object' || typeof (source as ArrayLike<number>).length !== 'number')
      fail(`copyFrom: source must be a Tensor, a typed array or a number[], got ${describe(source)}`);
    if (source.length !== this.size)
      fail(`copyFrom: source has ${source.length} elements, this tensor has ${this.size} (shape ${formatShape(this.shape)})`);
    this.storage.write(typedArrayFor(this.dtype, source));
    return this;
  }

  /** Sets every element to value. */
  fill(value: number): this {
    this.checkAlive('fill');
    if (typeof value !== 'number') fail(`fill: value must be a number, got ${describe(value)}`);
    this.storage.fill(value);
    return this;
  }

  /** A view with another shape and the same elements (shares memory). One dimension may be -1. */
  reshape(shape: readonly number[]): Tensor {
    this.checkAlive('reshape');
    const inferred = [...shape];
    const unknown = inferred.indexOf(-1);
    if (unknown >= 0) {
      const known = shapeSize(inferred.filter((_, i) => i !== unknown));
      inferred[unknown] = known === 0 ? 0 : this.size / known;
    }
    checkShape('reshape: shape', inferred);
    if (shapeSize(inferred) !== this.size)
      fail(`reshape: cannot view ${formatShape(this.shape)} (${this.size} elements) as ${formatShape(shape)}`);
    return new Tensor(this.storage, inferred, this.dtype, this.device);
  }

  /** A new tensor with its own copy of the elements. */
  clone(): Tensor {
    this.checkAlive('clone');
    const out = Tensor.empty(this.shape, this.dtype, this.device);
    out.storage.copyFrom(this.storage);
    return out;
  }

  /**
   * This tensor converted to another dtype and/or device: `to('float64')`, `to('cpu')`,
   * `to({ dtype, device })`. Returns the tensor itself when nothing changes, as in PyTorch. Float to
   * int32 truncates toward zero.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    this.checkAlive('to');
    return TM.convert(this, target);
  }

  /** Index of the largest element (the first on ties; NaN counts as largest): along dim, or of the flattened tensor. int32. */
  argmax(dim?: number, options?: TM.ReduceOptions): Tensor {
    return TM.argmax(this, dim, options);
  }

  /** Sum of all elements (a 0-dim tensor), or along dim. Float sums are accumulated in double. */
  sum(dim?: number, options?: TM.ReduceOptions): Tensor {
    return TM.sum(this, dim, options);
  }

  /** Mean of all elements, or along dim (float tensors). */
  mean(dim?: number, options?: TM.ReduceOptions): Tensor {
    return TM.mean(this, dim, options);
  }

  /** Elementwise this + other (a tensor broadcast as in PyTorch, or a number); dtypes promote int32 < float32 < float64. */
  add(other: Tensor | number): Tensor {
    return TM.arithmetic('add', this, other);
  }

  /** Elementwise this - other (broadcast, as add). */
  sub(other: Tensor | number): Tensor {
    return TM.arithmetic('sub', this, other);
  }

  /** Elementwise this * other (broadcast, as add). */
  mul(other: Tensor | number): Tensor {
    return TM.arithmetic('mul', this, other);
  }

  /** Elementwise this / other (broadcast, as add); int32 operands are divided as float32, as in PyTorch. */
  div(other: Tensor | number): Tensor {
    return TM.arithmetic('div', this, other);
  }

  /** Elementwise this == other (broadcast) as an int32 tensor of 0 and 1 (ikun has no bool dtype). */
  eq(other: Tensor | number): Tensor {
    return TM.equal(this, other);
  }

  /** A copy in host memory (the tensor itself when it is there already). */
  cpu(): Tensor {
    return this.to('cpu');
  }

  /** A copy on CUDA device `index` (default 0). */
  cuda(index = 0): Tensor {
    return this.to(`cuda:${checkIndex(index)}`);
  }

  /**
   * @internal moves the elements to another dtype/device in place (Module.to keeps its Parameter objects,
   * so that optimisers built on them stay valid). The old memory is freed: views of it become unusable.
   */
  moveTo(dtype: DType, device: Device): void {
    this.checkAlive('to');
    if (dtype === this.dtype && device === this.device) return;
    const moved = this.to({ dtype, device });
    this.storage.dispose();
    const self = this as { storage: NativeStorage; dtype: DType; device: Device };
    self.storage = moved.storage;
    self.dtype = dtype;
    self.device = moved.device;
  }

  /** Frees the native memory now (views of this tensor become unusable too). */
  dispose(): void {
    this.storage.dispose();
  }

  /** @internal */
  checkAlive(what: string): void {
    if (this.storage.disposed) fail(`${what}: tensor of shape ${formatShape(this.shape)} has been disposed and can no longer be used`);
  }

  /** The values as PyTorch prints them (long tensors shortened with ...), then shape, dtype and device. */
  toString(): string {
    if (this.disposed) return `tensor(<disposed>, shape=${formatShape(this.shape)}, dtype=${this.dtype}, device=${this.device})`;
    return formatTensor(this);
  }

  /** console.log(t) prints toString(). */
  [inspect.custom](): string {
    return this.toString();
  }
}

/** A trainable tensor; backward passes accumulate into `grad`. */
export class Parameter extends Tensor {
  grad: Tensor | null = null;
  /** @internal direction v of a Hessian-vector product (null: zero) */
  tangent: Tensor | null = null;
  /** @internal where a Hessian-vector product accumulates (H v for this parameter) */
  gradTangent: Tensor | null = null;

  /** @internal */
  static fromTensor(t: Tensor): Parameter {
    return new Parameter(t.storage, t.shape, t.dtype, t.device);
  }

  /** @internal the gradient buffer, created (zeroed) on first use */
  gradBuffer(): Tensor {
    if (!this.grad) this.grad = Tensor.zeros(this.shape, this.dtype, this.device);
    return this.grad;
  }

  override toString(): string {
    return `Parameter containing:\n${super.toString()}`;
  }
}

function normalDevice(device: Device): Device {
  return device === 'cuda' ? 'cuda:0' : device;
}

function checkIndex(index: unknown): number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) fail(`cuda(index): index must be an integer >= 0, got ${describe(index)}`);
  return index;
}

/** The float dtype and device asked for by a module's to(...), filled from `current` where left out; every value checked. */
export function placementOf(name: string, target: unknown, current: { dtype: FloatDType; device: Device }): { dtype: FloatDType; device: Device } {
  if (typeof target === 'string') {
    if (isDType(target)) return { dtype: target, device: current.device };
    if (target === 'cpu' || target.startsWith('cuda')) return { dtype: current.dtype, device: checkDevice(`${name}: device`, target) };
    return fail(`${name}: expected a dtype ('float32', 'float64'), a device ('cpu', 'cuda', 'cuda:N') or { dtype, device }, got ${describe(target)}`);
  }
  if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
    const o = target as Record<string, unknown>;
    checkKnownKeys(name, o, ['dtype', 'device']);
    return {
      dtype: o.dtype === undefined ? current.dtype : checkDType(`${name}: dtype`, o.dtype),
      device: o.device === undefined ? current.device : checkDevice(`${name}: device`, o.device),
    };
  }
  return fail(`${name}: expected a dtype ('float32', 'float64'), a device ('cpu', 'cuda', 'cuda:N') or { dtype, device }, got ${describe(target)}`);
}

function parseOptions(name: string, options: unknown, fallbackDType: DType): { dtype: DType; device: Device } {
  const o = checkOptionsObject(name, options);
  checkKnownKeys(name, o, ['dtype', 'device']);
  return {
    dtype: o.dtype === undefined ? fallbackDType : checkTensorDType(`${name}.dtype`, o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice(`${name}.device`, o.device),
  };
}

/** The shape and row-major values of a nested number array such as [[1, 2], [3, 4]]. */
function flattenNested(data: readonly unknown[]): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  for (let level: unknown = data; Array.isArray(level); level = level[0]) shape.push(level.length);
  const values: number[] = [];
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof node !== 'number') fail(`tensor: data${path} is not a number (${describe(node)})`);
      values.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth])
      fail(`tensor: data${path} must be an array of ${shape[depth]} entries like its siblings (nested arrays must be rectangular), got ${describe(node)}`);
    node.forEach((child, i) => walk(child, depth + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return { values, shape };
}

function defaultDType(data: TensorData): DType {
  return data instanceof Float64Array ? 'float64' : data instanceof Int32Array ? 'int32' : 'float32';
}

/**
 * A tensor holding a copy of data: a typed array or number[] with its shape, or a nested array whose
 * shape is read from it (`tensor([[1, 2], [3, 4]])`). dtype defaults to the typed array's (Float64Array:
 * float64, Int32Array: int32), else float32.
 */
export function tensor(data: TensorData | readonly unknown[], shape?: readonly number[], options?: TensorOptions): Tensor {
  if (data === null || typeof data !== 'object' || typeof (data as ArrayLike<number>).length !== 'number')
    fail(`tensor: data must be a typed array or a number[] (or a nested number array), got ${describe(data)}`);
  let values = data as TensorData;
  let dims: number[];
  if (shape === undefined) {
    if (Array.isArray(data)) ({ values, shape: dims } = flattenNested(data));
    else dims = [data.length as number];
  } else dims = checkShape('tensor: shape', shape);
  const { dtype, device } = parseOptions('tensor: options', options, defaultDType(values));
  if (values.length !== shapeSize(dims))
    fail(`tensor: data has ${values.length} elements but shape ${formatShape(dims)} needs ${shapeSize(dims)}`);
  if (!ArrayBuffer.isView(values)) {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number') fail(`tensor: data[${i}] is not a number (${describe(values[i])})`);
      if (dtype === 'int32' && !(Number.isInteger(values[i]) && Math.abs(values[i]!) <= 2 ** 31 - 1))
        fail(`tensor: data[${i}] is ${values[i]}, not an int32 value (dtype int32)`);
    }
  }
  const t = Tensor.empty(dims, dtype, device);
  t.storage.write(typedArrayFor(dtype, values));
  return t;
}

/** A tensor of zeros. dtype defaults to float32. */
export function zeros(shape: readonly number[], options?: TensorOptions): Tensor {
  const dims = checkShape('zeros: shape', shape);
  const { dtype, device } = parseOptions('zeros: options', options, 'float32');
  return Tensor.zeros(dims, dtype, device);
}

/** A tensor filled with value. */
export function full(shape: readonly number[], value: number, options?: TensorOptions): Tensor {
  return zeros(shape, options).fill(value);
}
