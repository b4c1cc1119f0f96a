import { describe, expect, it } from 'vitest';
import { functional as F, loss, models, surrogate, tensor, type Tensor } from '../lib/index.js';
import { gradCheck, randomTensor } from './helpers/gradcheck.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

describe('the paper CSNN', () => {
  it('has 13,014,656 parameters at 128 channels with the reference PyTorch names', () => {
    const m = models.csnn();
    expect(m.parameterCount()).toBe(13_014_656);
    expect(m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual([
      'conv_fc.0.weight:128x1x3x3', 'conv_fc.1.weight:128', 'conv_fc.1.bias:128', 'conv_fc.4.weight:128x128x3x3',
      'conv_fc.5.weight:128', 'conv_fc.5.bias:128', 'conv_fc.9.weight:2048x6272', 'conv_fc.11.weight:10x2048',
    ]);
    expect(m.namedBuffers().map(([n]) => n)).toEqual([
      'conv_fc.1.running_mean', 'conv_fc.1.running_var', 'conv_fc.1.num_batches_tracked',
      'conv_fc.5.running_mean', 'conv_fc.5.running_var', 'conv_fc.5.num_batches_tracked',
    ]);
  });

  it('runs the public API of the issue end to end (float64, smooth surrogate)', () => {
    const x = tensor(new Float64Array(4 * 784).map((_, i) => (i % 97) / 97), [4, 1, 28, 28], { dtype: 'float64' });
    const m = models.csnn({ channels: 3, T: 3, dtype: 'float64', surrogate: surrogate.atan({ alpha: 2, spiking: false }) });
    m.train();
    m.zeroGrad();
    const rate = m.forward(x);
    expect(rate.shape).toEqual([4, 10]);
    const { loss: value, grad } = loss.mseRate(rate, [1, 7, 3, 9]);
    expect(value).toBeGreaterThan(0);
    m.backward(grad);
    for (const [, p] of m.namedParameters()) {
      expect(p.grad!.toArray().some((g) => g !== 0)).toBe(true);
      p.copyFrom(new Float64Array(p.size));
    }
    expect(m.namedBuffers().find(([n]) => n === 'conv_fc.1.num_batches_tracked')![1].item()).toBe(1);
  });

  it('spiking forward gives firing rates in multiples of 1/T', () => {
    const m = models.csnn({ channels: 4, T: 4 });
    const rate = values(m.forward(randomTensor([3, 1, 28, 28], 1, 0.5, 0.5).to('float32')));
    for (const r of rate) expect(Number.isInteger(r * 4)).toBe(true);
  });

  it('gradients of the whole network match finite differences (float64, smooth mode, train and eval)', () => {
    for (const training of [true, false]) {
      const m = models.csnn({ channels: 2, T: 3, dtype: 'float64', surrogate: surrogate.sigmoid({ alpha: 4, spiking: false }) });
      const x = randomTensor([3, 1, 28, 28], 5, 0.5, 0.5);
      // Eval mode uses running statistics: let them settle near the batch statistics first, as after
      // training (with the initial mean 0 / var 1 the loss is flat and the check drowns in rounding).
      for (let i = 0; i < 40; i++) m.forward(x);
      m.train(training);
      // h = 1e-5: in eval mode the loss moves little, and a smaller step drowns in rounding
      const r = gradCheck(m, x, { h: 1e-5, maxCoords: 25, checkInput: false, objective: (y) => { const l = loss.mseRate(y, [2, 5, 7]); return { value: l.loss, grad: l.grad }; } });
      for (const norm of Object.values(r.norms)) expect(norm).toBeGreaterThan(0);
      expect(r.worst).toBeLessThan(1e-6);
    }
  });

  it.each([false, true])('the training path (first block once, neuron + pool fused) equals the layers one by one on T copies (spiking %s)', (spiking) => {
    const opts = { channels: 3, T: 4, dtype: 'float64' as const, surrogate: surrogate.atan({ spiking }) };
    const fast = models.csnn(opts), plain = models.csnn(opts);
    for (const [[, a], [, b]] of fast.namedParameters().map((e, i) => [e, plain.namedParameters()[i]!] as const)) b.copyFrom(a);
    const x = randomTensor([2, 1, 28, 28], 9, 0.5, 0.5);
    const rate = fast.forward(x);
    plain.conv_fc.fusion = false;
    const spikes = plain.conv_fc.forward(F.repeatOverTime(x, 4));
    const plainRate = F.sumOverTime(spikes, 1 / 4);
    values(plainRate).forEach((v, i) => expect(values(rate)[i]).toBeCloseTo(v, 12));
    const { grad } = loss.mseRate(rate, [1, 2]);
    fast.zeroGrad();
    plain.zeroGrad();
    fast.backward(grad);
    plain.conv_fc.backward(F.repeatOverTime(grad, 4, 1 / 4));
    const plainParams = plain.namedParameters();
    fast.namedParameters().forEach(([name, p], i) => {
      const a = values(p.grad!), b = values(plainParams[i]![1].grad!);
      const scale = Math.max(...b.map(Math.abs));
      a.forEach((v, j) => expect(Math.abs(v - b[j]!), name).toBeLessThan(1e-11 * scale));
    });
    const plainBuffers = plain.namedBuffers();
    fast.namedBuffers().forEach(([name, t], i) => {
      values(t).forEach((v, j) => expect(v, name).toBeCloseTo(values(plainBuffers[i]![1])[j]!, 12));
    });
  });

  it('float32 agrees with float64 (smooth mode)', () => {
    const opts = { channels: 4, T: 2, surrogate: surrogate.atan({ spiking: false }) };
    const m64 = models.csnn({ ...opts, dtype: 'float64' }), m32 = models.csnn({ ...opts, dtype: 'float32' });
    m64.namedParameters().forEach(([, p], i) => m32.namedParameters()[i]![1].copyFrom(p));
    const x = randomTensor([3, 1, 28, 28], 2, 0.5, 0.5);
    const r64 = values(m64.forward(x)), r32 = values(m32.forward(x.to('float32')));
    r32.forEach((v, i) => expect(Math.abs(v - r64[i]!)).toBeLessThan(2e-5));
  });

  it('validates options and input', () => {
    expect(() => models.csnn({ channels: 0 })).toThrow(/channels must be an integer >= 1, got 0/);
    expect(() => models.csnn({ T: 1.5 })).toThrow(/T must be an integer >= 1, got 1.5/);
    expect(() => models.csnn({ neuron: 'lstm' as never })).toThrow(/neuron must be one of 'if', 'lif', got "lstm"/);
    expect(() => models.csnn({ surrogate: 'atan' as never })).toThrow(/surrogate must be made by ikun's surrogate module/);
    expect(() => models.csnn({ dtype: 'float16' as never })).toThrow(/dtype must be 'float32' or 'float64'/);
    expect(() => models.csnn({ chanels: 3 } as never)).toThrow(/unknown option 'chanels'/);
    const m = models.csnn({ channels: 2, T: 2 });
    expect(() => m.forward(randomTensor([2, 1, 28, 28], 1))).toThrow(/conv_fc.0 \(Conv2d\): Conv2d.forward: input dtype is float64 but the module is float32/);
    expect(() => m.forward(randomTensor([2, 28, 28], 1).to('float32'))).toThrow(/conv_fc.0 \(Conv2d\): .*input must have rank 4 .* got shape \[2, 28, 28\]/);
    // a size the convolutions take but the first Linear does not: the error names that layer
    expect(() => m.forward(randomTensor([2, 1, 32, 32], 1).to('float32'))).toThrow(/conv_fc.9 \(Linear\): Linear.forward: input must be \[..., 98\] \(inFeatures\), got shape \[2, 2, 128\]/);
    expect(() => m.backward(randomTensor([2, 10], 1).to('float32'))).toThrow(/call forward first/);
    const lif = models.csnn({ channels: 2, T: 2, neuron: 'lif' });
    expect(lif.spikingLayers().map(([n]) => n)).toEqual(['conv_fc.2', 'conv_fc.6', 'conv_fc.10', 'conv_fc.12']);
  });
});
