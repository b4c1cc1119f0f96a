import { describe, expect, it } from 'vitest';
import { loss, tensor } from '../lib/index.js';
import { randomArray } from './helpers/gradcheck.js';

describe('losses on firing rates', () => {
  const rate = tensor(new Float64Array([0.25, 0.75, 0, 1, 0.5, 0.5]), [2, 3], { dtype: 'float64' });

  it('mseRate: mean over N * classes of (rate - onehot)^2 and its gradient', () => {
    const { loss: value, grad } = loss.mseRate(rate, [1, 2]);
    // sample 0: (0.25)^2 + (0.75-1)^2 + 0 = 0.125; sample 1: 1 + 0.25 + 0.25 = 1.5
    expect(value).toBeCloseTo((0.125 + 1.5) / 6, 14);
    const expected = [0.25, -0.25, 0, 1, 0.5, -0.5].map((d) => (2 * d) / 6);
    Array.from(grad.toArray()).forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 14));
  });

  it('ceRate: softmax cross-entropy averaged over N', () => {
    const { loss: value } = loss.ceRate(rate, new Int32Array([1, 0]));
    const lse = (v: number[]): number => Math.log(v.reduce((s, x) => s + Math.exp(x), 0));
    expect(value).toBeCloseTo((lse([0.25, 0.75, 0]) - 0.75 + lse([1, 0.5, 0.5]) - 1) / 2, 14);
  });

  it.each(['mseRate', 'ceRate'] as const)('%s gradient matches finite differences', (name) => {
    const values = randomArray(12, 3, 0.5, 0.5);
    const labels = [3, 0, 2];
    const { grad } = loss[name](tensor(values, [3, 4], { dtype: 'float64' }), labels);
    const h = 1e-6;
    const analytic = grad.toArray();
    for (let i = 0; i < 12; i++) {
      const plus = Float64Array.from(values), minus = Float64Array.from(values);
      plus[i]! += h;
      minus[i]! -= h;
      const numeric = (loss[name](tensor(plus, [3, 4]), labels).loss - loss[name](tensor(minus, [3, 4]), labels).loss) / (2 * h);
      expect(Math.abs(numeric - analytic[i]!)).toBeLessThan(1e-8);
    }
  });

  it('validates rate and labels', () => {
    expect(() => loss.mseRate(rate, [1])).toThrow(/got 1 labels for a batch of 2/);
    expect(() => loss.mseRate(rate, [1, 3])).toThrow(/labels\[1\] must be an integer class in \[0, 2\], got 3/);
    expect(() => loss.mseRate(rate, [1, 0.5])).toThrow(/labels\[1\] must be an integer class/);
    expect(() => loss.ceRate(tensor([1, 2, 3], [3]), [0])).toThrow(/rate must have shape \[N, classes\], got \[3\]/);
    expect(() => loss.mseRate(rate, 'ab' as never)).toThrow(/labels must be a number\[\] or an Int32Array/);
    expect(Array.from(loss.predict(rate))).toEqual([1, 0]);
  });
});
