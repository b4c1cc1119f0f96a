// The tensor basics of training and evaluation scripts against hand-worked cases.
import { describe, expect, it } from 'vitest';
import { tensor, zeros, type Tensor } from '../lib/index.js';
import { broadcastDims } from '../lib/tensor-math.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

describe('argmax', () => {
  const scores = tensor([[0.1, 0.9, 0.9], [0.7, 0.2, 0.1]]);

  it('along a dim (first maximum on ties), of the flattened tensor, negative dims and keepdim', () => {
    const byRow = scores.argmax(1);
    expect(byRow.dtype).toBe('int32');
    expect(byRow.shape).toEqual([2]);
    expect(values(byRow)).toEqual([1, 0]);
    expect(values(scores.argmax(0))).toEqual([1, 0, 0]);
    expect(values(scores.argmax(-1))).toEqual([1, 0]);
    expect(scores.argmax(1, { keepdim: true }).shape).toEqual([2, 1]);
    const flat = scores.argmax();
    expect(flat.shape).toEqual([]);
    expect(flat.item()).toBe(1);
  });

  it('a NaN counts as the maximum; works on float64 and int32; a middle dim of a rank-3 tensor', () => {
    expect(tensor([1, Number.NaN, 5, Number.NaN]).argmax().item()).toBe(1);
    expect(tensor(new Float64Array([3, -1, 7, 7]), [2, 2]).argmax(1).toArray()).toEqual(new Int32Array([0, 0]));
    expect(values(tensor(new Int32Array([4, 9, 9, 2]), [4]).argmax())).toEqual([1]);
    // [2, 3, 2]: along dim 1 for each (outer, inner)
    const t = tensor([[[1, 6], [5, 2], [3, 4]], [[0, 0], [0, 1], [-1, 0]]]);
    expect(values(t.argmax(1))).toEqual([1, 0, 0, 1]);
  });

  it('refuses empty axes and bad dims', () => {
    expect(() => zeros([0]).argmax()).toThrow(/argmax: the tensor is empty/);
    expect(() => zeros([2, 0]).argmax(1)).toThrow(/dim 1 is empty/);
    expect(() => scores.argmax(2)).toThrow(/argmax: dim must be an integer in \[-2, 1\], got 2/);
    expect(() => tensor([1], []).argmax(0)).toThrow(/0-dim tensor/);
    expect(() => scores.argmax(1, { keepDim: true } as never)).toThrow(/unknown option 'keepDim'/);
  });
});

describe('sum and mean', () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]]);

  it('of all elements (0-dim) and along each dim, with keepdim', () => {
    expect(t.sum().shape).toEqual([]);
    expect(t.sum().item()).toBe(21);
    expect(values(t.sum(0))).toEqual([5, 7, 9]);
    expect(values(t.sum(1))).toEqual([6, 15]);
    expect(t.sum(1, { keepdim: true }).shape).toEqual([2, 1]);
    expect(t.sum(undefined, { keepdim: true }).shape).toEqual([1, 1]);
    expect(t.mean().item()).toBe(3.5);
    expect(values(t.mean(0))).toEqual([2.5, 3.5, 4.5]);
    expect(values(t.mean(-1))).toEqual([2, 5]);
  });

  it('float32 sums are accumulated in double; int32 sums stay int32; empty sums are 0 and empty means NaN', () => {
    // 2^24 + 1 + 1 ... is lost by a float32 accumulator, not by a double one
    const big = tensor([2 ** 24, 1, 1, 1, 1]);
    expect(big.sum().item()).toBe(2 ** 24 + 4);
    const ints = tensor(new Int32Array([1, 2, 3, 4]), [2, 2]);
    expect(ints.sum(0).dtype).toBe('int32');
    expect(values(ints.sum(0))).toEqual([4, 6]);
    expect(zeros([0]).sum().item()).toBe(0);
    expect(Number.isNaN(zeros([0]).mean().item())).toBe(true);
    expect(() => ints.mean()).toThrow(/mean: the tensor is int32; convert it first, e.g. t.to\('float32'\).mean\(\)/);
  });

  it('wide inner dims (more than one block of 256) and large single sums split over chunks', () => {
    const n = 3, inner = 700;
    const data = Float64Array.from({ length: n * 2 * inner }, (_, i) => (i % 13) - 6);
    const x = tensor(data, [n, 2, inner]);
    const s = values(x.sum(1));
    for (let o = 0; o < n; o++)
      for (let i = 0; i < inner; i++) expect(s[o * inner + i]).toBe(data[(o * 2) * inner + i]! + data[(o * 2 + 1) * inner + i]!);
    const long = tensor(Float64Array.from({ length: 100_000 }, (_, i) => i), [100_000]);
    expect(long.sum().item()).toBe((100_000 * 99_999) / 2);
  });
});

describe('add, sub, mul, div', () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);

  it('with a number and with a tensor of the same shape', () => {
    expect(values(a.add(1))).toEqual([2, 3, 4, 5, 6, 7]);
    expect(values(a.sub(0.5))).toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
    expect(values(a.mul(2))).toEqual([2, 4, 6, 8, 10, 12]);
    expect(values(a.div(4))).toEqual([0.25, 0.5, 0.75, 1, 1.25, 1.5]);
    expect(values(a.sub(a))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(values(a.mul(a))).toEqual([1, 4, 9, 16, 25, 36]);
    expect(values(a.div(a))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('broadcast as in PyTorch: rows, columns, scalars, both sides', () => {
    expect(values(a.add(tensor([10, 20, 30])))).toEqual([11, 22, 33, 14, 25, 36]);
    expect(values(a.sub(tensor([[1], [2]])))).toEqual([0, 1, 2, 2, 3, 4]);
    expect(values(a.mul(tensor([2], [])))).toEqual([2, 4, 6, 8, 10, 12]);
    const outer = tensor([[1], [2]]).mul(tensor([1, 10, 100]));
    expect(outer.shape).toEqual([2, 3]);
    expect(values(outer)).toEqual([1, 10, 100, 2, 20, 200]);
    // [2, 1, 3] with [4, 1]: a [2, 4, 3] result
    const c = tensor([[[1, 2, 3]], [[4, 5, 6]]]).add(tensor([[0], [10], [20], [30]]));
    expect(c.shape).toEqual([2, 4, 3]);
    expect(values(c).slice(0, 6)).toEqual([1, 2, 3, 11, 12, 13]);
    expect(values(c).slice(-3)).toEqual([34, 35, 36]);
    expect(() => a.add(tensor([1, 2]))).toThrow(/add: shapes \[2, 3\] and \[2\] cannot be broadcast \(dimension -1 is 3 and 2/);
  });

  it('merges dimensions the operands run through together before the kernel', () => {
    expect(broadcastDims('add', [4, 5, 6], [4, 5, 6]).dims).toEqual([1, 120, 1, 1]);
    expect(broadcastDims('add', [4, 5, 6], [6]).dims).toEqual([2, 20, 6, 6, 1, 0, 1]);
    expect(broadcastDims('add', [4, 5, 6], [4, 1, 1]).dims).toEqual([2, 4, 30, 30, 1, 1, 0]);
    expect(broadcastDims('add', [], []).dims).toEqual([1, 1, 0, 0]);
  });

  it('promotes int32 < float32 < float64; int32 stays int32 with integers and divides as float32', () => {
    const i = tensor(new Int32Array([1, 2, 3]));
    expect(i.add(2).dtype).toBe('int32');
    expect(values(i.add(2))).toEqual([3, 4, 5]);
    expect(i.add(0.5).dtype).toBe('float32');
    expect(values(i.add(0.5))).toEqual([1.5, 2.5, 3.5]);
    expect(i.div(2).dtype).toBe('float32');
    expect(values(i.div(2))).toEqual([0.5, 1, 1.5]);
    expect(values(i.div(i))).toEqual([1, 1, 1]);
    expect(i.mul(tensor([0.5, 0.5, 0.5])).dtype).toBe('float32');
    const d = tensor(new Float64Array([0.1, 0.2, 0.3]));
    expect(tensor([1, 1, 1]).add(d).dtype).toBe('float64');
    expect(values(tensor([1, 1, 1]).add(d))).toEqual([1.1, 1.2, 1.3]);
    expect(values(tensor(new Int32Array([2 ** 31 - 1])).add(1))).toEqual([-(2 ** 31)]); // wraps like int32
  });

  it('refuses what is not a tensor or a number', () => {
    expect(() => a.add('1' as never)).toThrow(/add: other must be a Tensor, got "1"/);
    const gone = tensor([1]);
    gone.dispose();
    expect(() => a.mul(gone)).toThrow(/disposed/);
  });
});

describe('eq, clone, to', () => {
  it('eq gives int32 0/1, broadcast and against numbers; with argmax and sum it counts correct predictions', () => {
    const rate = tensor([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]);
    const labels = tensor(new Int32Array([1, 1, 0]));
    const hits = rate.argmax(1).eq(labels);
    expect(hits.dtype).toBe('int32');
    expect(values(hits)).toEqual([1, 0, 1]);
    expect(hits.sum().item()).toBe(2);
    expect(values(tensor([1, 2, 3]).eq(2))).toEqual([0, 1, 0]);
    expect(values(tensor(new Int32Array([1, 2])).eq(1.5))).toEqual([0, 0]);
    expect(values(tensor([[1, 2], [3, 4]]).eq(tensor([1, 4])))).toEqual([1, 0, 0, 1]);
    expect(values(tensor(new Int32Array([1, 2])).eq(tensor([1, 2.5])))).toEqual([1, 0]);
    expect(values(tensor([Number.NaN]).eq(Number.NaN))).toEqual([0]);
  });

  it('clone copies; to converts dtype (float to int32 truncates toward zero) and returns the tensor itself when nothing changes', () => {
    const t = tensor([1.7, -1.7, 2.5]);
    const c = t.clone();
    t.fill(0);
    expect(values(c)).toEqual([Math.fround(1.7), Math.fround(-1.7), 2.5]);
    expect(values(c.to('int32'))).toEqual([1, -1, 2]);
    expect(values(c.to({ dtype: 'int32' }))).toEqual([1, -1, 2]);
    expect(values(tensor([Number.NaN, 1e12, -1e12]).to('int32'))).toEqual([0, 2 ** 31 - 1, -(2 ** 31)]);
    expect(c.to('cpu')).toBe(c);
    expect(c.to('float32')).toBe(c);
    expect(c.to('float64').dtype).toBe('float64');
    const ints = tensor(new Int32Array([3, -4]));
    expect(ints.to('float64').toArray()).toEqual(new Float64Array([3, -4]));
    expect(zeros([2]).copyFrom(ints).toArray()).toEqual(new Float32Array([3, -4]));
    expect(() => c.to('float16' as never)).toThrow(/to: expected a dtype \('float32', 'float64', 'int32'\), a device .* got "float16"/);
    expect(() => c.to({ dtype: 'int8' } as never)).toThrow(/to: dtype must be 'float32', 'float64' or 'int32'/);
    expect(() => c.to(3 as never)).toThrow(/to: expected a dtype/);
  });

  it('int32 tensors from Int32Array or with dtype int32; non-integers are refused', () => {
    expect(tensor(new Int32Array([1, 2])).dtype).toBe('int32');
    expect(tensor([1, 2], [2], { dtype: 'int32' }).toArray()).toEqual(new Int32Array([1, 2]));
    expect(() => tensor([1.5], [1], { dtype: 'int32' })).toThrow(/data\[0\] is 1.5, not an int32 value/);
    expect(tensor([[1, 2], [3, 4]]).shape).toEqual([2, 2]);
    expect(() => tensor([[1, 2], [3]])).toThrow(/data\[1\] must be an array of 2 entries like its siblings/);
  });
});

describe('the raw bindings guard against misuse', () => {
  it('refuse strides past an operand, wrong counts, integer division and mismatched dtypes', async () => {
    const { native } = await import('../lib/native.js');
    const a = new native.Storage(0, 4, true), b = new native.Storage(0, 2, true), out = new native.Storage(0, 4, false);
    expect(() => native.binaryOp(0, a, b, out, [1, 4, 1, 1])).toThrow(/strides reach past an operand/);
    expect(() => native.binaryOp(0, a, b, out, [1, 3, 1, 0])).toThrow(/different element count/);
    expect(() => native.binaryOp(0, a, b, out, [2, 4, 1, 0])).toThrow(/rank/);
    const ints = new native.Storage(2, 4, true), intOut = new native.Storage(2, 4, false);
    expect(() => native.binaryOp(3, ints, ints, intOut, [1, 4, 1, 1])).toThrow(/int32 tensors are divided as floats/);
    expect(() => native.binaryScalarOp(0, ints, 0.5, intOut)).toThrow(/int32 scalar/);
    expect(() => native.binaryOp(0, a, ints, out, [1, 4, 1, 1])).toThrow(/dtype mismatch/);
    expect(() => native.argmaxAxis(a, out, [1, 4, 1])).toThrow(/out must be int32/);
    expect(() => native.sumAxis(a, out, [1, 8, 1], 1)).toThrow(/x: storage holds 4 elements, the op needs 8/);
    expect(() => native.sumAxis(ints, intOut, [1, 4, 1], 0.5)).toThrow(/int32 sum takes no scale/);
    expect(() => native.cast(a, b)).toThrow(/element counts differ/);
  });
});
