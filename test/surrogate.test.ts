import { describe, expect, it } from 'vitest';
import { nn, surrogate, tensor } from '../lib/index.js';
import { SURROGATE_NAMES } from '../lib/surrogate.js';

const points = [-2.3, -1.1, -0.7, -0.31, -0.05, 0.05, 0.2, 0.45, 0.8, 1.3, 2.9];

describe('surrogates', () => {
  it.each(SURROGATE_NAMES)('%s: g1 is the derivative of g and g2 the derivative of g1', (name) => {
    const s = surrogate.create(name, { alpha: 1.7 });
    const h = 1e-6;
    for (const x of points) {
      expect(s.g1(x)).toBeCloseTo((s.g(x + h) - s.g(x - h)) / (2 * h), 6);
      expect(s.g2(x)).toBeCloseTo((s.g1(x + h) - s.g1(x - h)) / (2 * h), 5);
    }
  });

  it('matches the science doc formulas at chosen points', () => {
    const a = surrogate.atan({ alpha: 2 });
    expect(a.g1(0)).toBeCloseTo(1, 12); // alpha/2
    expect(a.g1(0.5)).toBeCloseTo(1 / (1 + (Math.PI / 2) ** 2), 12);
    const sg = surrogate.sigmoid({ alpha: 4 });
    expect(sg.g1(0)).toBeCloseTo(1, 12); // alpha * 1/2 * 1/2
    expect(surrogate.piecewiseQuadratic().g1(0.5)).toBeCloseTo(0.5, 12);
    expect(surrogate.softSign({ alpha: 2 }).g1(0.5)).toBeCloseTo(2 / (2 * 4), 12);
    expect(surrogate.superSpike().g1(1)).toBeCloseTo(0.25, 12);
    expect(surrogate.erf({ alpha: 2 }).g1(0)).toBeCloseTo(2 / Math.sqrt(Math.PI), 12);
    expect(surrogate.piecewiseExp().g1(0)).toBeCloseTo(0.5, 12);
    expect(surrogate.rect().g1(0.49)).toBe(1);
    expect(surrogate.rect().g1(0.51)).toBe(0);
    expect(surrogate.atan().alpha).toBe(2);
    expect(surrogate.sigmoid().alpha).toBe(4);
  });

  it.each(SURROGATE_NAMES)('%s: the native smooth forward equals g(x - vThreshold)', (name) => {
    const s = surrogate.create(name, { alpha: 1.3, spiking: false });
    const node = new nn.IFNode({ surrogate: s, vThreshold: 0.4 });
    const x = tensor(Float64Array.from(points), [1, points.length], { dtype: 'float64' });
    const y = node.forward(x).toArray();
    points.forEach((p, i) => expect(y[i]).toBeCloseTo(s.g(p - 0.4), 13));
  });

  it('parses CLI specs and rejects bad names and hyperparameters', () => {
    expect(surrogate.parse('atan:2').alpha).toBe(2);
    expect(surrogate.parse('sigmoid').alpha).toBe(4);
    expect(() => surrogate.parse('atan:x')).toThrow(/alpha must be a finite number/);
    expect(() => surrogate.create('tanh')).toThrow(/unknown surrogate "tanh"; known: atan, sigmoid/);
    expect(() => surrogate.atan({ alpha: Number.NaN })).toThrow(/alpha must be a finite number, got NaN/);
    expect(() => surrogate.atan({ alpha: -1 })).toThrow(/alpha must be a positive number/);
    expect(() => surrogate.atan({ spiking: 'no' as never })).toThrow(/spiking must be a boolean/);
    expect(() => surrogate.atan({ beta: 1 } as never)).toThrow(/unknown option 'beta'/);
  });
});
