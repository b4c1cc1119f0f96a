// String(t) and console.log(t) print values as PyTorch does, then shape, dtype and device.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Parameter, tensor, zeros } from '../lib/index.js';

describe('printing tensors', () => {
  it('fixed with 4 decimals, integers as "1.", aligned rows, shape/dtype/device after the values', () => {
    expect(String(tensor([[0.5, 0.25], [1, 2]]))).toBe(
      'tensor([[0.5000, 0.2500],\n        [1.0000, 2.0000]], shape=[2, 2], dtype=float32, device=cpu)');
    expect(String(tensor([1, 2, 3]))).toBe('tensor([1., 2., 3.], shape=[3], dtype=float32, device=cpu)');
    expect(String(tensor([-1.5, 10]))).toBe('tensor([-1.5000, 10.0000], shape=[2], dtype=float32, device=cpu)');
    expect(String(tensor(new Int32Array([3, 10, -2])))).toBe('tensor([ 3, 10, -2], shape=[3], dtype=int32, device=cpu)');
    expect(String(tensor([0.5], []))).toBe('tensor(0.5000, shape=[], dtype=float32, device=cpu)');
    expect(String(zeros([0, 3]))).toBe('tensor([], shape=[0, 3], dtype=float32, device=cpu)');
  });

  it('scientific notation when magnitudes span more than 1000x or are tiny; nan and inf', () => {
    expect(String(tensor(new Float64Array([1e-5, 1, 2000])))).toBe(
      'tensor([1.0000e-05, 1.0000e+00, 2.0000e+03], shape=[3], dtype=float64,\n       device=cpu)');
    expect(String(tensor([Number.NaN, Infinity, 1.5]))).toBe('tensor([   nan,    inf, 1.5000], shape=[3], dtype=float32, device=cpu)');
    expect(String(tensor([0, 0]))).toBe('tensor([0., 0.], shape=[2], dtype=float32, device=cpu)');
  });

  it('long tensors show the first and last three entries per dimension with ...', () => {
    const t = tensor(Array.from({ length: 2000 }, (_, i) => i), [2, 1000], { dtype: 'int32' });
    expect(String(t)).toBe(
      'tensor([[   0,    1,    2,  ...,  997,  998,  999],\n' +
      '        [1000, 1001, 1002,  ..., 1997, 1998, 1999]], shape=[2, 1000],\n' +
      '       dtype=int32, device=cpu)');
    const cube = String(tensor(Array.from({ length: 1331 }, (_, i) => i % 7), [11, 11, 11], { dtype: 'int32' }));
    expect(cube.split('\n')).toContain('        ...,');
    expect(cube.split('\n').filter((l) => l.includes('...')).length).toBeGreaterThan(6);
  });

  it('wraps long rows at 80 characters', () => {
    const lines = String(tensor(Array.from({ length: 20 }, (_, i) => i + 0.5))).split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines[1]!.startsWith('        ')).toBe(true);
  });

  it('console.log uses the same text; parameters say so; disposed tensors print without values', () => {
    const t = tensor([1, 2]);
    expect(inspect(t)).toBe(String(t));
    expect(inspect({ t })).toContain('tensor([1., 2.]');
    const p = Parameter.fromTensor(tensor([0.5]));
    expect(String(p)).toBe('Parameter containing:\ntensor([0.5000], shape=[1], dtype=float32, device=cpu)');
    t.dispose();
    expect(String(t)).toBe('tensor(<disposed>, shape=[2], dtype=float32, device=cpu)');
  });
});
