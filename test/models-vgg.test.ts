// models.spikingVgg: a deeper convolutional SNN for 3-channel (CIFAR-10-like) images from the same modules.
import { describe, expect, it } from 'vitest';
import { hessian, loss, models, surrogate, tensor, type Tensor } from '../lib/index.js';
import { randomTensor } from './helpers/gradcheck.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

function maxRelative(a: number[], b: number[]): number {
  const scale = Math.max(1e-300, ...b.map(Math.abs));
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) / scale;
}

describe('models.spikingVgg', () => {
  it('builds VGG blocks with PyTorch-style names; the default is VGG-11 for 32x32 CIFAR-10 images', () => {
    const m = models.spikingVgg({ widths: [4, 'M', 8, 8, 'M'], inputShape: [3, 16, 16], hidden: [12], classes: 5 });
    expect(m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual([
      'features.0.weight:4x3x3x3', 'features.1.weight:4', 'features.1.bias:4', 'features.4.weight:8x4x3x3', 'features.5.weight:8',
      'features.5.bias:8', 'features.7.weight:8x8x3x3', 'features.8.weight:8', 'features.8.bias:8', 'classifier.1.weight:12x128',
      'classifier.1.bias:12', 'classifier.3.weight:5x12', 'classifier.3.bias:5']);
    expect(m.spikingLayers().map(([n]) => n)).toEqual(['features.2', 'features.6', 'features.9', 'classifier.2', 'classifier.4']);
    const vgg11 = models.spikingVgg();
    expect(vgg11.widths).toEqual(models.VGG11_WIDTHS);
    expect(vgg11.features.length).toBe(8 * 3 + 5);
    expect(vgg11.classifier.at(1).toString()).toBe('Linear(inFeatures=512, outFeatures=10, bias=true)');
    expect(models.spikingVgg({ widths: [4, 'M'], inputShape: [3, 8, 8], batchNorm: false }).namedParameters().map(([n]) => n))
      .toEqual(['features.0.weight', 'features.0.bias', 'classifier.1.weight', 'classifier.1.bias']);
  });

  it('runs 3-channel images (and any channel count and size the pools allow) to firing rates in multiples of 1/T', () => {
    const m = models.spikingVgg({ widths: [4, 'M', 8, 'M'], inputShape: [3, 12, 12], T: 4 });
    const rate = m.forward(randomTensor([2, 3, 12, 12], 1, 1, 0.5).to('float32'));
    expect(rate.shape).toEqual([2, 10]);
    for (const r of values(rate)) expect(Number.isInteger(r * 4)).toBe(true);
    expect(Object.keys(m.lastFiringRates())).toHaveLength(3);
    const odd = models.spikingVgg({ widths: [3, 'M', 'M', 5], inputShape: [1, 9, 7], classes: 2, T: 2 });
    expect(odd.forward(randomTensor([3, 1, 9, 7], 2).to('float32')).shape).toEqual([3, 2]);
    expect(odd.classifier.at(1).toString()).toContain('inFeatures=10'); // 9x7 -> 4x3 -> 2x1, 5 channels
  });

  it('names the layer in shape errors, at construction and in forward', () => {
    expect(() => models.spikingVgg({ widths: [4, 'M', 'M', 'M'], inputShape: [3, 4, 4] }))
      .toThrow(/widths\[3\] \('M', layer features.5\) would max-pool a 1x1 map; the \[3, 4, 4\] input allows fewer pools/);
    const m = models.spikingVgg({ widths: [4, 'M'], inputShape: [3, 8, 8] });
    expect(() => m.forward(randomTensor([1, 1, 8, 8], 1).to('float32'))).toThrow(/features.0 \(Conv2d\): Conv2d.forward: input has 1 channels .*expected inChannels = 3/);
    expect(() => m.forward(randomTensor([1, 3, 10, 10], 1).to('float32'))).toThrow(/classifier.1 \(Linear\): Linear.forward: input must be \[..., 64\]/);
    expect(() => models.spikingVgg({ widths: [] })).toThrow(/widths must be a non-empty array/);
    expect(() => models.spikingVgg({ widths: ['M'] })).toThrow(/at least one convolution/);
    expect(() => models.spikingVgg({ widths: [4, 'P' as never] })).toThrow(/widths\[1\] must be an integer >= 1, got "P"/);
    expect(() => models.spikingVgg({ inputShape: [3, 32] as never })).toThrow(/inputShape must be \[channels, height, width\]/);
    expect(() => models.spikingVgg({ width: [4] } as never)).toThrow(/unknown option 'width'/);
  });

  it.each([true, false])('the fused path equals the layers one by one (spiking %s): forward, backward, H v', (spiking) => {
    const opts = { widths: [3, 'M', 4, 4, 'M'] as const, inputShape: [3, 8, 8] as const, hidden: [6], T: 3, dtype: 'float64' as const,
      surrogate: surrogate.atan({ spiking }) };
    const fused = models.spikingVgg(opts), plain = models.spikingVgg(opts);
    plain.loadStateDict(fused.stateDict());
    plain.fusion = false;
    const x = randomTensor([3, 3, 8, 8], 7, 1, 0.6);
    const labels = [1, 8, 3];
    const run = (m: typeof fused) => {
      m.train();
      m.zeroGrad();
      const out = m.forward(x);
      const { loss: value, grad } = loss.mseRate(out, labels);
      const dx = m.backward(grad);
      return { out: values(out), value, dx: values(dx), grads: m.parameters().map((p) => values(p.grad!)) };
    };
    const a = run(fused), b = run(plain);
    expect(maxRelative(a.out, b.out)).toBeLessThanOrEqual(1e-12);
    expect(Math.abs(a.value - b.value)).toBeLessThanOrEqual(1e-12 * b.value);
    expect(maxRelative(a.dx, b.dx)).toBeLessThanOrEqual(1e-12);
    a.grads.forEach((g, i) => expect(maxRelative(g, b.grads[i]!)).toBeLessThanOrEqual(1e-12));
    for (const m of [fused, plain]) m.eval();
    const vs = fused.parameters().map((p, i) => tensor(Float64Array.from({ length: p.size }, (_, j) => Math.cos(j + 2 * i)), [...p.shape]));
    const hf = hessian.hvp(fused, x, labels, vs).map(values), hp = hessian.hvp(plain, x, labels, vs).map(values);
    hf.forEach((h, i) => expect(maxRelative(h, hp[i]!)).toBeLessThanOrEqual(1e-12));
  });
});
