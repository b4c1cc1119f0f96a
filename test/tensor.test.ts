import { describe, expect, it } from 'vitest';
import { Tensor, tensor, zeros, full, cudaInfo } from '../lib/index.js';

describe('tensor', () => {
  it('holds data with shape, size, dtype and device', () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(Array.from(t.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.toArray()).toBeInstanceOf(Float32Array);
  });

  it('keeps float64 precision and infers float64 from a Float64Array', () => {
    const values = new Float64Array([0.1, 1 / 3, Math.PI]);
    const t = tensor(values, [3]);
    expect(t.dtype).toBe('float64');
    expect(t.toArray()).toEqual(values);
    const f = tensor(values, [3], { dtype: 'float32' });
    expect(f.toArray()[1]).toBe(Math.fround(1 / 3));
  });

  it('zeros, full, copyFrom (with dtype conversion), reshape views, clone, dispose', () => {
    const z = zeros([2, 2], { dtype: 'float64' });
    expect(Array.from(z.toArray())).toEqual([0, 0, 0, 0]);
    expect(Array.from(full([3], 2.5).toArray())).toEqual([2.5, 2.5, 2.5]);
    z.copyFrom(new Float64Array([1, 2, 3, 4]));
    const f = zeros([4]).copyFrom(z);
    expect(Array.from(f.toArray())).toEqual([1, 2, 3, 4]);
    const view = z.reshape([4]);
    view.copyFrom([9, 8, 7, 6]);
    expect(Array.from(z.toArray())).toEqual([9, 8, 7, 6]);
    expect(z.reshape([-1, 1]).shape).toEqual([4, 1]);
    const copy = z.clone();
    z.dispose();
    expect(z.disposed).toBe(true);
    expect(() => z.toArray()).toThrow(/disposed/);
    expect(() => view.toArray()).toThrow(/disposed/);
    expect(Array.from(copy.toArray())).toEqual([9, 8, 7, 6]);
  });

  it('scalars have shape [] and one element', () => {
    const s = tensor([4], []);
    expect(s.size).toBe(1);
    expect(s.item()).toBe(4);
  });

  it('rejects bad input with errors naming the argument', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/3 elements but shape \[2, 2\] needs 4/);
    expect(() => tensor([1, 2], [2], { dtype: 'int8' as never })).toThrow(/dtype must be 'float32', 'float64' or 'int32'/);
    expect(() => tensor([1, 2], [2], { device: 'tpu' as never })).toThrow(/device must be 'cpu', 'cuda' or 'cuda:N'/);
    expect(() => tensor([1, 2], [-2] as never)).toThrow(/shape must be an array of non-negative integers/);
    expect(() => tensor('abc' as never, [3])).toThrow(/data must be a typed array or a number\[\]/);
    expect(() => tensor([1, 'x'] as never, [2])).toThrow(/data\[1\] is not a number/);
    expect(() => zeros([2], { colour: 'red' } as never)).toThrow(/unknown option 'colour'/);
    expect(() => zeros([4]).copyFrom([1, 2])).toThrow(/source has 2 elements, this tensor has 4/);
    expect(() => zeros([4]).reshape([3])).toThrow(/cannot view \[4\]/);
    expect(() => zeros([4]).item()).toThrow(/one element/);
  });

  it('explains why CUDA is unavailable instead of falling back', () => {
    const info = cudaInfo();
    expect(typeof info.compiled).toBe('boolean');
    if (!info.available) {
      expect(() => zeros([2], { device: 'cuda' })).toThrow(/cannot be used: .+Use device 'cpu'/);
      expect(info.reason.length).toBeGreaterThan(10);
    }
  });

  it('Tensor.empty is internal but reports its size', () => {
    const t = Tensor.empty([3, 5], 'float64');
    expect(t.size).toBe(15);
    expect(t.rank).toBe(2);
  });
});
