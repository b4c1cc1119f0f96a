import { describe, it, expect, beforeAll } from 'vitest';
import { Generator, models, nn, surrogate } from '../lib/index.js';
import * as init from '../lib/init.js';
import type { CSNN } from '../lib/models.js';

const LAYERS = ['conv_fc.0', 'conv_fc.4', 'conv_fc.9', 'conv_fc.11'];

function relClose(actual: number, expected: number, rel: number): void {
  expect(Math.abs(actual - expected) / Math.abs(expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(rel);
}

function moments(values: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  let sum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / values.length;
  let sq = 0;
  for (let i = 0; i < values.length; i++) sq += (values[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(sq / (values.length - 1)), min, max };
}

function weightOf(model: nn.Module, name: string): ArrayLike<number> & Iterable<number> {
  const p = model.namedParameters().find(([n]) => n === `${name}.weight`);
  if (!p) throw new Error(`no parameter ${name}.weight`);
  return p[1].toArray();
}

describe('beta', () => {
  it('matches the documented value of every mode', () => {
    relClose(init.betaFor('code'), 1.273703, 1e-6);
    relClose(init.betaFor(), 1.273703, 1e-6);
    relClose(init.betaFor('mean', surrogate.atan({ alpha: 2 })), 2.49006, 1e-6);
    relClose(init.betaFor('mean', surrogate.sigmoid({ alpha: 4 })), 2.076402, 1e-6);
    relClose(init.betaFor('second-moment', surrogate.atan({ alpha: 2 })), 4.053265, 1e-6);
  });

  it('uses the float32 torch.linspace grid', () => {
    const g = init.linspaceFloat32(-1, 1, 1000);
    expect(g.length).toBe(1000);
    expect(g[0]).toBe(-1);
    expect(g[999]).toBe(1);
    for (const x of g) expect(Math.fround(x)).toBe(x);
    // the mean of 1/(1+x^2) the doc quotes
    let s = 0;
    for (const x of g) s += 1 / (1 + x * x);
    relClose(s / 1000, 0.785113, 1e-6);
  });

  it('needs a surrogate outside code mode and rejects unknown modes', () => {
    expect(() => init.betaFor('mean')).toThrow(/ikun: .*surrogate/);
    expect(() => init.betaFor('bogus' as init.BetaMode)).toThrow(/ikun: .*mode.*'code', 'mean', 'second-moment'/);
  });
});

describe('fans', () => {
  it('counts the kernel in both fans of a conv', () => {
    expect(init.fans(new nn.Conv2d(3, 8, [3, 5]))).toEqual({ fanIn: 45, fanOut: 120 });
    expect(init.fans(new nn.Linear(7, 4))).toEqual({ fanIn: 7, fanOut: 4 });
    expect(() => init.fans(new nn.BatchNorm2d(2) as unknown as nn.Linear)).toThrow(/ikun: fans/);
  });
});

// Each apply on the 13M-parameter model draws every weight (~0.8 s), so only the two std tables use it.
describe('apply on the paper CSNN (c = 128)', () => {
  let net: CSNN;
  beforeAll(() => {
    net = models.csnn({ channels: 128 });
  });

  /** The doc prints stds rounded to 6 decimals: compare at that precision (plus 1e-5 relative). */
  function checkTable(rows: init.InitRow[], expected: number[]): void {
    rows.forEach((r, i) => {
      expect(r.std.toFixed(6), r.name).toBe(expected[i]!.toFixed(6));
      expect(Math.abs(r.std - expected[i]!)).toBeLessThanOrEqual(5e-7 + 1e-5 * expected[i]!);
    });
  }

  it('gives the documented ikun_v1 std table and samples Normal(0, std)', () => {
    const rows = init.apply(net, 'ikun_v1', { seed: 3 });
    expect(rows.map((r) => r.name)).toEqual(LAYERS);
    expect(rows.map((r) => [r.kind, r.fanIn, r.fanOut])).toEqual([
      ['conv', 9, 1152], ['conv', 1152, 1152], ['linear', 6272, 2048], ['linear', 2048, 10],
    ]);
    checkTable(rows, [0.376195, 0.033251, 0.014251, 0.024938]);
    for (const r of rows) {
      expect(r.distribution).toBe('normal');
      relClose(r.beta!, 1.273703, 1e-6);
    }
    // empirical moments of the two large layers: mean within 4 standard errors, std within 1%
    for (const name of ['conv_fc.4', 'conv_fc.9']) {
      const w = weightOf(net, name);
      const std = rows.find((r) => r.name === name)!.std;
      const m = moments(w);
      expect(Math.abs(m.mean)).toBeLessThan((4 * std) / Math.sqrt(w.length));
      expect(Math.abs(m.std / std - 1)).toBeLessThan(0.01);
    }
  });

  it('gives the documented ikun_v2 std table, conv layers included', () => {
    const rows = init.apply(net, 'ikun_v2');
    checkTable(rows, [0.033122, 0.023512, 0.012373, 0.024878]);
    const w = moments(weightOf(net, 'conv_fc.4'));
    expect(Math.abs(w.std / 0.023512 - 1)).toBeLessThan(0.01);
  });
});

describe('apply on a small CSNN', () => {
  it('takes beta from the following neuron in mean / second-moment mode', () => {
    const net = models.csnn({ channels: 4 });
    const mean = init.apply(net, 'ikun_v1', { betaMode: 'mean' });
    expect(mean.map((r) => r.name)).toEqual(LAYERS);
    for (const r of mean) relClose(r.beta!, 2.49006, 1e-6);
    relClose(mean[0]!.std, Math.sqrt(2.49006 / 9), 1e-6);
    const second = init.apply(net, 'ikun_v2', { betaMode: 'second-moment' });
    for (const r of second) relClose(r.beta!, 4.053265, 1e-6);
    const sig = models.csnn({ channels: 4, neuron: 'lif', surrogate: surrogate.sigmoid({ alpha: 4 }) });
    for (const r of init.apply(sig, 'ikun_v1', { betaMode: 'mean' })) relClose(r.beta!, 2.076402, 1e-6);
    // code mode ignores the surrogate
    for (const r of init.apply(sig, 'ikun_v1')) relClose(r.beta!, 1.273703, 1e-6);
  });

  it('resets BatchNorm to weight 1, bias 0', () => {
    const net = models.csnn({ channels: 4 });
    for (const i of [1, 5]) {
      const bn = net.conv_fc.at(i) as nn.BatchNorm2d;
      bn.weight.fill(3);
      bn.bias.fill(-2);
    }
    init.apply(net, 'xavier');
    for (const name of ['conv_fc.1', 'conv_fc.5']) {
      const params = Object.fromEntries(net.namedParameters().filter(([n]) => n.startsWith(`${name}.`)));
      expect([...params[`${name}.weight`]!.toArray()]).toEqual([1, 1, 1, 1]);
      expect([...params[`${name}.bias`]!.toArray()]).toEqual([0, 0, 0, 0]);
    }
  });
});

describe('baselines', () => {
  it('xavier and kaiming are uniform within the bound with std bound/sqrt(3)', () => {
    for (const method of ['xavier', 'kaiming'] as const) {
      const layer = new nn.Linear(600, 500);
      const [row] = init.apply(layer, method, { seed: 1 });
      const bound = method === 'xavier' ? Math.sqrt(6 / 1100) : Math.sqrt(6 / 600);
      relClose(row!.std, bound, 1e-12);
      expect(row!.distribution).toBe('uniform');
      expect(row!.beta).toBeNull();
      const m = moments(layer.weight.toArray());
      expect(m.min).toBeGreaterThanOrEqual(-bound);
      expect(m.max).toBeLessThanOrEqual(bound);
      expect(Math.abs(m.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.01);
      expect(Math.abs(m.mean)).toBeLessThan((4 * bound) / Math.sqrt(3) / Math.sqrt(300000));
    }
  });

  it('normal and lecun use 0.02 and sqrt(1/fan_in)', () => {
    const conv = new nn.Conv2d(16, 32, 3);
    expect(init.apply(conv, 'normal')[0]!.std).toBe(0.02);
    relClose(init.apply(conv, 'lecun')[0]!.std, Math.sqrt(1 / 144), 1e-12);
    const m = moments(conv.weight.toArray());
    expect(Math.abs(m.std / Math.sqrt(1 / 144) - 1)).toBeLessThan(0.05); // 4608 samples
  });

  it('zeroes biases of conv and linear layers', () => {
    const seq = new nn.Sequential(new nn.Linear(4, 3), new nn.IFNode(), new nn.Conv2d(1, 2, 3));
    init.apply(seq, 'kaiming');
    for (const [n, p] of seq.namedParameters()) if (n.endsWith('bias')) expect([...p.toArray()]).toEqual([0, 0, 0].slice(0, p.size));
  });
});

describe('determinism', () => {
  const build = (): nn.Sequential => new nn.Sequential(new nn.Conv2d(2, 4, 3, { bias: false }), new nn.IFNode(), new nn.Linear(10, 5, { bias: false }));
  const weights = (m: nn.Module): number[] => m.parameters().flatMap((p) => [...p.toArray()]);

  it('same seed gives identical weights, another seed different ones', () => {
    const a = build(), b = build(), c = build();
    init.apply(a, 'ikun_v1', { seed: 7 });
    init.apply(b, 'ikun_v1', { seed: 7 });
    init.apply(c, 'ikun_v1', { seed: 8 });
    expect(weights(a)).toEqual(weights(b));
    expect(weights(a)).not.toEqual(weights(c));
  });

  it('draws the layers in order from one generator (per-layer helper agrees)', () => {
    const a = build();
    init.apply(a, 'ikun_v2', { seed: 5 });
    const b = build();
    const g = new Generator(5);
    init.ikunV2(b.at(0) as nn.Conv2d, { generator: g });
    init.ikunV2(b.at(2) as nn.Linear, { generator: g });
    expect(weights(a)).toEqual(weights(b));
  });
});

describe('logging and validation', () => {
  it('prints nothing by default and the table to a log function', () => {
    const lines: string[] = [];
    const layer = new nn.Linear(3, 2);
    init.apply(layer, 'ikun_v1', { log: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/ikun_v1/);
    expect(lines[1]).toMatch(/fan_in.*fan_out.*std\/bound.*beta/);
    expect(lines[2]).toMatch(/linear\s+3\s+2\s+normal\s+0\.651\d+\s+1\.273703/);
  });

  it('rejects bad methods, beta modes, seeds, models and layers without a neuron', () => {
    const layer = new nn.Linear(3, 2);
    expect(() => init.apply(layer, 'he' as init.InitMethod)).toThrow(/^ikun: init\.apply: method must be one of 'ikun_v1', 'ikun_v2', 'xavier', 'kaiming', 'normal', 'lecun'/);
    expect(() => init.apply(layer, 'ikun_v1', { betaMode: 'median' as init.BetaMode })).toThrow(/^ikun: init\.apply: betaMode must be one of 'code', 'mean', 'second-moment'/);
    for (const seed of [-1, 1.5, NaN, '3'])
      expect(() => init.apply(layer, 'ikun_v1', { seed: seed as number })).toThrow(/^ikun: init\.apply: seed must be an integer/);
    expect(() => init.apply({} as nn.Module, 'ikun_v1')).toThrow(/^ikun: init\.apply: model must be/);
    expect(() => init.apply(layer, 'ikun_v1', { bogus: 1 } as init.ApplyOptions)).toThrow(/unknown option 'bogus'/);
    const seq = new nn.Sequential(new nn.Linear(3, 3), new nn.IFNode(), new nn.Linear(3, 2));
    expect(() => init.apply(seq, 'ikun_v1', { betaMode: 'mean' })).toThrow(/^ikun: .*layer '2'/);
    // nothing was written when it failed
    const before = seq.parameters().map((p) => [...p.toArray()]);
    try { init.apply(seq, 'ikun_v1', { betaMode: 'mean' }); } catch { /* expected */ }
    expect(seq.parameters().map((p) => [...p.toArray()])).toEqual(before);
  });
});
