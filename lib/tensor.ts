// Tensor: a shape, a dtype and a device over native memory. Views (reshape) share their storage.
import { native, type DTypeCode, type NativeStorage } from './native.js';
import { checkOptionsObject, checkKnownKeys, describe, fail } from './errors.js';

export type DType = 'float32' | 'float64';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TensorData = ArrayLike<number>;

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
}

const DTYPES: readonly DType[] = ['float32', 'float64'];

export function dtypeCode(dtype: DType): DTypeCode {
  return dtype === 'float32' ? 0 : 1;
}

export function checkDType(name: string, dtype: unknown): DType {
  if (!DTYPES.includes(dtype as DType)) fail(`${name} must be 'float32' or 'float64', got ${describe(dtype)}`);
  return dtype as DType;
}

/** Validates a device string; CUDA devices are refused with the reason this build or machine gives. */
export function checkDevice(name: string, device: unknown): Device {
  if (device === 'cpu') return 'cpu';
  if (typeof device === 'string' && /^cuda(:\d+)?$/.test(device)) {
    const info = native.cudaInfo();
    const why = info.available
      ? 'CUDA tensors are not available in this version of ikun yet (the CUDA backend is in progress)'
      : info.reason;
    fail(`${name} '${device}' cannot be used: ${why}. Use device 'cpu'.`);
  }
  return fail(`${name} must be 'cpu', 'cuda' or 'cuda:N', got ${describe(device)}`);
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

function typedArrayFor(dtype: DType, data: TensorData): Float32Array | Float64Array {
  const Target = dtype === 'float32' ? Float32Array : Float64Array;
  if (data instanceof Target) return data;
  // The typed-array constructor converts natively; .from() iterates element by element in JS.
  return ArrayBuffer.isView(data) ? new Target(data as unknown as ArrayLike<number>) : Target.from(data);
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
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

  /** @internal uninitialised memory, for op outputs that are fully written */
  static empty(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return new Tensor(new native.Storage(dtypeCode(dtype), shapeSize(shape), false), shape, dtype, device);
  }

  /** @internal */
  static zeros(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return new Tensor(new native.Storage(dtypeCode(dtype), shapeSize(shape), true), shape, dtype, device);
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

  /** A copy of the elements in row-major order. */
  toArray(): Float32Array | Float64Array {
    this.checkAlive('toArray');
    return this.storage.read() as Float32Array | Float64Array;
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
      this.storage.copyFrom(source.storage);
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

  /** This tensor converted to another dtype (a new tensor); the tensor itself when it already has that dtype, as in PyTorch. */
  to(dtype: DType): Tensor {
    checkDType('to: dtype', dtype);
    if (dtype === this.dtype) return this;
    const out = Tensor.empty(this.shape, dtype, this.device);
    out.storage.copyFrom(this.storage);
    return out;
  }

  /** Frees the native memory now (views of this tensor become unusable too). */
  dispose(): void {
    this.storage.dispose();
  }

  /** @internal */
  checkAlive(what: string): void {
    if (this.storage.disposed) fail(`${what}: tensor of shape ${formatShape(this.shape)} has been disposed and can no longer be used`);
  }

  toString(): string {
    return `Tensor(shape=${formatShape(this.shape)}, dtype=${this.dtype}, device=${this.device})`;
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
}

function parseOptions(name: string, options: unknown, fallbackDType: DType): { dtype: DType; device: Device } {
  const o = checkOptionsObject(name, options);
  checkKnownKeys(name, o, ['dtype', 'device']);
  return {
    dtype: o.dtype === undefined ? fallbackDType : checkDType(`${name}.dtype`, o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice(`${name}.device`, o.device),
  };
}

/** A tensor holding a copy of data. dtype defaults to the typed array's (Float64Array: float64), else float32. */
export function tensor(data: TensorData, shape: readonly number[], options?: TensorOptions): Tensor {
  if (data === null || typeof data !== 'object' || typeof (data as ArrayLike<number>).length !== 'number')
    fail(`tensor: data must be a typed array or a number[], got ${describe(data)}`);
  const dims = checkShape('tensor: shape', shape);
  const { dtype, device } = parseOptions('tensor: options', options, data instanceof Float64Array ? 'float64' : 'float32');
  if (data.length !== shapeSize(dims))
    fail(`tensor: data has ${data.length} elements but shape ${formatShape(dims)} needs ${shapeSize(dims)}`);
  if (!ArrayBuffer.isView(data)) {
    for (let i = 0; i < data.length; i++) {
      if (typeof data[i] !== 'number') fail(`tensor: data[${i}] is not a number (${describe(data[i])})`);
    }
  }
  const t = Tensor.empty(dims, dtype, device);
  t.storage.write(typedArrayFor(dtype, data));
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
