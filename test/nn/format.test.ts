// String(model) prints the module tree with each layer's settings; model.summary(inputShape) a table.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { models, nn, surrogate, tensor } from '../../lib/index.js';

describe('printing models', () => {
  it('shows the tree with every setting, PyTorch style, also through console.log', () => {
    const m = models.csnn({ channels: 2, T: 3, neuron: 'lif', surrogate: surrogate.sigmoid({ alpha: 4, spiking: false }) });
    const text = String(m);
    expect(text.split('\n').slice(0, 5)).toEqual([
      'CSNN(',
      '  (repeat): RepeatOverTime(steps=3)',
      '  (conv_fc): Sequential(',
      '    (0): Conv2d(1, 2, kernelSize=3, stride=1, padding=1, bias=false)',
      '    (1): BatchNorm2d(2, eps=0.00001, momentum=0.1, affine=true)',
    ]);
    expect(text).toContain('    (2): LIFNode(vThreshold=1, vReset=0, detachReset=false, tau=2, decayInput=true, surrogate=sigmoid(alpha=4, smooth))');
    expect(text).toContain('    (3): MaxPool2d(kernelSize=2, stride=2)');
    expect(text).toContain('    (8): Flatten(startDim=2)');
    expect(text).toContain('    (9): Linear(inFeatures=98, outFeatures=32, bias=false)');
    expect(text.split('\n').slice(-3)).toEqual(['  )', '  (mean): MeanOverTime()', ')']);
    expect(inspect(m)).toBe(text);
    const leaf = new nn.Conv2d(3, 4, [3, 5], { stride: 2, dtype: 'float64' });
    expect(String(leaf)).toBe("Conv2d(3, 4, kernelSize=[3, 5], stride=2, padding=0, bias=true, dtype='float64')");
    expect(String(new nn.IFNode({ vReset: null, detachReset: true }))).toBe('IFNode(vThreshold=1, vReset=null, detachReset=true, surrogate=atan(alpha=2))');
    expect(String(new nn.Sequential())).toBe('Sequential()');
  });
});

describe('model.summary', () => {
  it('tables every layer with its output shape and parameter count, and changes nothing in the model', () => {
    const m = models.csnn({ channels: 4, T: 2 });
    m.train();
    const before = m.stateDict()['conv_fc.1.num_batches_tracked']!.item();
    const table = m.summary([3, 1, 28, 28]);
    const row = (name: string): string => table.split('\n').find((l) => l.trimStart().startsWith(name))!;
    expect(row('repeat (RepeatOverTime)')).toMatch(/\[2, 3, 1, 28, 28\]\s+0$/);
    expect(row('conv_fc (Sequential)')).toMatch(/\[2, 3, 10\]\s+13,380$/);
    expect(row('0 (Conv2d)')).toMatch(/\[2, 3, 4, 28, 28\]\s+36$/);
    expect(row('3 (MaxPool2d)')).toMatch(/\[2, 3, 4, 14, 14\]\s+0$/);
    expect(row('9 (Linear)')).toMatch(/\[2, 3, 64\]\s+12,544$/);
    expect(row('mean (MeanOverTime)')).toMatch(/\[3, 10\]\s+0$/);
    expect(table).toContain('Output shape: [3, 10]');
    expect(table).toContain(`Total params: ${(13_380).toLocaleString('en-US')} (all trainable)`);
    expect(m.parameterCount()).toBe(13_380);
    expect(m.training).toBe(true);
    expect(m.fusion).toBe(true);
    expect(m.stateDict()['conv_fc.1.num_batches_tracked']!.item()).toBe(before);
    // the model still trains normally afterwards
    expect(m.forward(tensor(new Float32Array(784), [1, 1, 28, 28])).shape).toEqual([1, 10]);
  });

  it('says which layer refuses the input shape', () => {
    const m = models.csnn({ channels: 2 });
    expect(() => m.summary([1, 1, 32, 32])).toThrow(/CSNN.summary: the model cannot run on an input of shape \[1, 1, 32, 32\]: conv_fc.9 \(Linear\)/);
    expect(() => m.summary([1, -1] as never)).toThrow(/inputShape must be an array of non-negative integers/);
  });
});
