// The tensor basics behind Tensor's methods (argmax, sum, mean, add/sub/mul/div, eq, to): argument
// checks, PyTorch's broadcasting and dtype promotion here, the arithmetic in native kernels
// (native/cpu/tensor_math.cpp) so the same calls can run on other devices' tensors.
import { checkBoolean, checkInteger, checkKnownKeys, checkOptionsObject, describe, fail } from './errors.js';
import { native, type BinaryOpCode } from './native.js';
import { Tensor, checkDevice, checkTensorDType, formatShape, type DType, type Device } from './tensor.js';

export interface ReduceOptions {
  /** Keep the reduced dimension with size 1 (default false), as PyTorch's keepdim. */
  keepdim?: boolean;
}

const MAX_BROADCAST_RANK = 8;
const RANK_OF: Record<DType, number> = { int32: 0, float32: 1, float64: 2 };

function checkTensor(what: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) fail(`${what} must be a Tensor, got ${describe(t)}`);
  t.checkAlive(what);
  return t;
}

/** dim in [-rank, rank), negative counting from the end as in PyTorch; returns the non-negative index. */
function normaliseDim(op: string, t: Tensor, dim: unknown): number {
  const rank = t.rank;
  if (rank === 0) fail(`${op}: dim ${describe(dim)} given for a 0-dim tensor (it has no dimensions); call ${op}() without dim`);
  const d = checkInteger(`${op}: dim`, dim, -rank, rank - 1);
  return d < 0 ? d + rank : d;
}

function keepdimOf(op: string, options: unknown): boolean {
  const o = checkOptionsObject(`${op} options`, options);
  checkKnownKeys(`${op} options`, o, ['keepdim']);
  return o.keepdim === undefined ? false : checkBoolean(`${op}: keepdim`, o.keepdim);
}

/** [outer, axis, inner] of x reduced along dim (dim undefined: all elements), and the result's shape. */
function reduction(op: string, x: Tensor, dim: number | undefined, options: ReduceOptions | undefined):
  { dims: number[]; shape: number[] } {
  const keepdim = keepdimOf(op, options);
  if (dim === undefined) return { dims: [1, x.size, 1], shape: keepdim ? x.shape.map(() => 1) : [] };
  const d = normaliseDim(op, x, dim);
  const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
  const shape = keepdim ? x.shape.map((n, i) => (i === d ? 1 : n)) : x.shape.filter((_, i) => i !== d);
  return { dims: [prod(x.shape.slice(0, d)), x.shape[d]!, prod(x.shape.slice(d + 1))], shape };
}

export function argmax(x: Tensor, dim?: number, options?: ReduceOptions): Tensor {
  checkTensor('argmax', x);
  const { dims, shape } = reduction('argmax', x, dim, options);
  if (dims[1] === 0) fail(`argmax: ${dim === undefined ? 'the tensor is empty' : `dim ${dim} is empty`} (shape ${formatShape(x.shape)}); there is no maximum`);
  const out = Tensor.empty(shape, 'int32', x.device);
  native.argmaxAxis(x.storage, out.storage, dims);
  return out;
}

export function sum(x: Tensor, dim?: number, options?: ReduceOptions): Tensor {
  checkTensor('sum', x);
  const { dims, shape } = reduction('sum', x, dim, options);
  const out = Tensor.empty(shape, x.dtype, x.device);
  native.sumAxis(x.storage, out.storage, dims, 1);
  return out;
}

export function mean(x: Tensor, dim?: number, options?: ReduceOptions): Tensor {
  checkTensor('mean', x);
  if (x.dtype === 'int32') fail(`mean: the tensor is int32; convert it first, e.g. t.to('float32').mean() (PyTorch refuses integer means too)`);
  const { dims, shape } = reduction('mean', x, dim, options);
  const out = Tensor.empty(shape, x.dtype, x.device);
  native.sumAxis(x.storage, out.storage, dims, 1 / dims[1]!);
  return out;
}

/** The dtype both operands are computed in: the wider of the two (int32 < float32 < float64). */
function promoted(a: DType, b: DType): DType {
  return RANK_OF[a] >= RANK_OF[b] ? a : b;
}

function asDType(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : convert(t, dtype);
}

function isInt32Value(v: number): boolean {
  return Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1;
}

/**
 * PyTorch's broadcasting of two shapes (aligned at the last dimension; sizes equal or 1), as the
 * kernel's [rank, shape, aStrides, bStrides] with neighbouring dimensions merged where both operands
 * run through them contiguously (or both broadcast), so common cases reach the kernel as rank 1 or 2.
 */
export function broadcastDims(op: string, a: readonly number[], b: readonly number[]): { shape: number[]; dims: number[] } {
  const rank = Math.max(a.length, b.length);
  const pad = (s: readonly number[]): number[] => [...Array<number>(rank - s.length).fill(1), ...s];
  const pa = pad(a), pb = pad(b);
  const shape = pa.map((n, i) => {
    const m = pb[i]!;
    if (n !== m && n !== 1 && m !== 1)
      fail(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast (dimension ${i - rank} is ${n} and ${m}; sizes must match or be 1)`);
    return n === 1 ? m : n;
  });
  const strides = (s: number[]): number[] => {
    const out = new Array<number>(rank);
    let step = 1;
    for (let i = rank - 1; i >= 0; i--) {
      out[i] = s[i] === 1 && shape[i] !== 1 ? 0 : step;
      step *= s[i]!;
    }
    return out;
  };
  const sa = strides(pa), sb = strides(pb);
  // Dimensions of size 1 contribute nothing; merge a dimension into the next when both operands continue through it.
  const merged: Array<{ n: number; a: number; b: number }> = [];
  for (let i = 0; i < rank; i++) {
    if (shape[i] === 1) continue;
    const cur = { n: shape[i]!, a: sa[i]!, b: sb[i]! };
    const prev = merged[merged.length - 1];
    if (prev && prev.a === cur.a * cur.n && prev.b === cur.b * cur.n) {
      prev.n *= cur.n;
      prev.a = cur.a;
      prev.b = cur.b;
    } else merged.push(cur);
  }
  if (merged.length === 0) merged.push({ n: 1, a: 0, b: 0 });
  if (merged.length > MAX_BROADCAST_RANK)
    fail(`${op}: broadcasting ${formatShape(a)} with ${formatShape(b)} needs ${merged.length} separate dimensions; at most ${MAX_BROADCAST_RANK} are supported`);
  return { shape, dims: [merged.length, ...merged.map((m) => m.n), ...merged.map((m) => m.a), ...merged.map((m) => m.b)] };
}

const OP_CODES: Record<'add' | 'sub' | 'mul' | 'div', BinaryOpCode> = { add: 0, sub: 1, mul: 2, div: 3 };

export function arithmetic(op: 'add' | 'sub' | 'mul' | 'div', a: Tensor, other: Tensor | number): Tensor {
  checkTensor(op, a);
  if (typeof other === 'number') {
    // int32 stays int32 with an int32 scalar; a fractional scalar (or any division) computes in float32.
    const dtype = a.dtype === 'int32' && (op === 'div' || !isInt32Value(other)) ? 'float32' : a.dtype;
    const x = asDType(a, dtype);
    const out = Tensor.empty(a.shape, dtype, a.device);
    native.binaryScalarOp(OP_CODES[op], x.storage, other, out.storage);
    if (x !== a) x.dispose();
    return out;
  }
  const b = checkTensor(`${op}: other`, other);
  if (b.device !== a.device) fail(`${op}: the tensors are on ${a.device} and ${b.device}; move one with .to(device)`);
  let dtype = promoted(a.dtype, b.dtype);
  if (op === 'div' && dtype === 'int32') dtype = 'float32';
  const { shape, dims } = broadcastDims(op, a.shape, b.shape);
  const x = asDType(a, dtype), y = asDType(b, dtype);
  const out = Tensor.empty(shape, dtype, a.device);
  native.binaryOp(OP_CODES[op], x.storage, y.storage, out.storage, dims);
  if (x !== a) x.dispose();
  if (y !== b) y.dispose();
  return out;
}

export function equal(a: Tensor, other: Tensor | number): Tensor {
  checkTensor('eq', a);
  if (typeof other === 'number') {
    const out = Tensor.empty(a.shape, 'int32', a.device);
    // No int32 value equals a fractional number (nor NaN): all zeros, without converting the tensor.
    if (a.dtype === 'int32' && !isInt32Value(other)) out.fill(0);
    else native.equalScalar(a.storage, other, out.storage);
    return out;
  }
  const b = checkTensor('eq: other', other);
  if (b.device !== a.device) fail(`eq: the tensors are on ${a.device} and ${b.device}; move one with .to(device)`);
  const dtype = promoted(a.dtype, b.dtype);
  const { shape, dims } = broadcastDims('eq', a.shape, b.shape);
  const x = asDType(a, dtype), y = asDType(b, dtype);
  const out = Tensor.empty(shape, 'int32', a.device);
  native.equal(x.storage, y.storage, out.storage, dims);
  if (x !== a) x.dispose();
  if (y !== b) y.dispose();
  return out;
}

const DTYPE_NAMES: readonly string[] = ['float32', 'float64', 'int32'];

/** Tensor.to: a dtype, a device, or both in an object. */
export function convert(t: Tensor, target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
  let dtype: DType = t.dtype;
  let device: Device = t.device;
  const expected = `a dtype ('float32', 'float64', 'int32'), a device ('cpu', 'cuda', 'cuda:N') or { dtype, device }`;
  if (typeof target === 'string' && DTYPE_NAMES.includes(target)) dtype = target as DType;
  else if (typeof target === 'string' && /^(cpu|cuda)/.test(target)) device = checkDevice('to: device', target);
  else if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
    checkKnownKeys('to options', target, ['dtype', 'device']);
    if (target.dtype !== undefined) dtype = checkTensorDType('to: dtype', target.dtype);
    if (target.device !== undefined) device = checkDevice('to: device', target.device);
  } else fail(`to: expected ${expected}, got ${describe(target)}`);
  if (dtype === t.dtype && device === t.device) return t;
  const out = Tensor.empty(t.shape, dtype, device);
  // float32 <-> float64 keeps the storage's own conversion (the one checkpoints and models have always used).
  if (t.dtype !== 'int32' && dtype !== 'int32') out.storage.copyFrom(t.storage);
  else native.cast(t.storage, out.storage);
  return out;
}
