// model.stateDict() / loadStateDict() with PyTorch's names and checks; save(stateDict, path) / load(path).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { load, models, nn, save, surrogate, tensor, type Tensor } from '../lib/index.js';
import { readSafetensors } from '../lib/safetensors.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-state-'));

/** The 13 layers of models.csnn's conv_fc as a user builds them. */
function handBuilt(c: number): nn.Module[] {
  const node = (): nn.Module => new nn.IFNode({ surrogate: surrogate.atan({ alpha: 2 }) });
  return [new nn.Conv2d(1, c, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(c), node(), new nn.MaxPool2d(2),
    new nn.Conv2d(c, c, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(c), node(), new nn.MaxPool2d(2),
    new nn.Flatten({ startDim: 2 }), new nn.Linear(c * 49, c * 16, { bias: false }), node(), new nn.Linear(c * 16, 10, { bias: false }), node()];
}

describe('stateDict', () => {
  it('holds parameters and buffers by PyTorch name, module by module, sharing the model memory', () => {
    const m = models.csnn({ channels: 2 });
    const sd = m.stateDict();
    expect(Object.keys(sd)).toEqual([
      'conv_fc.0.weight', 'conv_fc.1.weight', 'conv_fc.1.bias', 'conv_fc.1.running_mean', 'conv_fc.1.running_var',
      'conv_fc.1.num_batches_tracked', 'conv_fc.4.weight', 'conv_fc.5.weight', 'conv_fc.5.bias', 'conv_fc.5.running_mean',
      'conv_fc.5.running_var', 'conv_fc.5.num_batches_tracked', 'conv_fc.9.weight', 'conv_fc.11.weight']);
    sd['conv_fc.1.bias']!.fill(0.5);
    expect(values(m.conv_fc.namedParameters().find(([n]) => n === '1.bias')![1])).toEqual([0.5, 0.5]);
    const whole = new nn.Sequential(new nn.RepeatOverTime(4), ...handBuilt(2), new nn.MeanOverTime());
    expect(Object.keys(whole.stateDict()).slice(0, 4)).toEqual(['1.weight', '2.weight', '2.bias', '2.running_mean']);
  });

  it("loads between models.csnn and the hand-built layers of its conv_fc (the issue's example), both ways and round trip", () => {
    const c = 3;
    const net = new nn.Sequential(...handBuilt(c));
    const reference = models.csnn({ channels: c });
    const result = net.loadStateDict(reference.stateDict());
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [], matched: 'prefix' });
    expect(values(net.stateDict()['9.weight']!)).toEqual(values(reference.stateDict()['conv_fc.9.weight']!));
    const other = models.csnn({ channels: c });
    expect(other.loadStateDict(net.stateDict()).matched).toBe('prefix');
    expect(values(other.stateDict()['conv_fc.0.weight']!)).toEqual(values(reference.stateDict()['conv_fc.0.weight']!));
    // the whole user-built CSNN of the issue: names as PyTorch gives that Sequential ('1.weight' for the
    // first conv); models.csnn's state dict loads into it by order (same layers, attributes and shapes)
    const whole = new nn.Sequential(new nn.RepeatOverTime(4), ...handBuilt(c), new nn.MeanOverTime());
    expect(whole.loadStateDict(reference.stateDict()).matched).toBe('order');
    expect(values(whole.stateDict()['10.weight']!)).toEqual(values(reference.stateDict()['conv_fc.9.weight']!));
    expect(models.csnn({ channels: c }).loadStateDict(whole.stateDict()).matched).toBe('order');
    const copy = new nn.Sequential(new nn.RepeatOverTime(4), ...handBuilt(c), new nn.MeanOverTime());
    expect(copy.loadStateDict(whole.stateDict()).matched).toBe('name');
    // nested: one leading name swapped ('1.' for 'conv_fc.')
    const nested = new nn.Sequential(new nn.RepeatOverTime(4), new nn.Sequential(...handBuilt(c)), new nn.MeanOverTime());
    expect(nested.loadStateDict(reference.stateDict()).matched).toBe('prefix');
    expect(values(nested.stateDict()['1.9.weight']!)).toEqual(values(reference.stateDict()['conv_fc.9.weight']!));
  });

  it('strict loading lists every missing, unexpected and shape-mismatched key and loads nothing', () => {
    const m = models.csnn({ channels: 2 });
    const before = values(m.stateDict()['conv_fc.0.weight']!);
    const sd = models.csnn({ channels: 4 }).stateDict();
    delete sd['conv_fc.11.weight'];
    sd['conv_fc.99.weight'] = tensor([1]);
    let message = '';
    try {
      m.loadStateDict(sd);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^ikun: CSNN.loadStateDict: the state dict does not fit the model, nothing was loaded/);
    expect(message).toContain("missing keys: 'conv_fc.11.weight'");
    expect(message).toContain("unexpected keys: 'conv_fc.99.weight'");
    expect(message).toContain("shape mismatch for 'conv_fc.0.weight': the state dict has [4, 1, 3, 3], the model [2, 1, 3, 3]");
    expect(message).toContain("shape mismatch for 'conv_fc.9.weight'");
    // a key renamed in place is not matched by order when its attribute name changes
    const renamed = Object.fromEntries(Object.entries(models.csnn({ channels: 2 }).stateDict()).map(([k, t]) => [k.replace('0.weight', '0.weights'), t]));
    expect(() => m.loadStateDict(renamed)).toThrow(/missing keys: 'conv_fc.0.weight'; unexpected keys: 'conv_fc.0.weights'/);
    expect(values(m.stateDict()['conv_fc.0.weight']!)).toEqual(before);
    // strict: false skips missing and unexpected keys, and still refuses shapes that differ
    const part = { 'conv_fc.0.weight': tensor(new Float32Array(18).fill(0.25), [2, 1, 3, 3]), extra: tensor([1]) };
    const r = m.loadStateDict(part, { strict: false });
    expect(r.unexpectedKeys).toEqual(['extra']);
    expect(r.missingKeys).toHaveLength(13);
    expect(values(m.stateDict()['conv_fc.0.weight']!)).toEqual(new Array(18).fill(0.25));
    expect(() => m.loadStateDict({ 'conv_fc.0.weight': tensor([1]) }, { strict: false })).toThrow(/shape mismatch for 'conv_fc.0.weight'/);
    expect(() => m.loadStateDict({ 'conv_fc.0.weight': 3 } as never)).toThrow(/stateDict\['conv_fc.0.weight'\] must be a Tensor, got 3/);
    expect(() => m.loadStateDict([] as never)).toThrow(/stateDict must be an object \(or Map\) of Tensors by name/);
    expect(() => m.loadStateDict({}, { strict: 'no' } as never)).toThrow(/strict must be a boolean/);
    expect(() => m.loadStateDict({})).toThrow(/missing keys: .*\(pass \{ strict: false \} to load the keys that match\)/);
  });

  it('converts dtypes while loading (a float64 state dict into a float32 model)', () => {
    const m64 = models.csnn({ channels: 2, dtype: 'float64' }), m32 = models.csnn({ channels: 2 });
    m32.loadStateDict(m64.stateDict());
    expect(values(m32.stateDict()['conv_fc.0.weight']!)).toEqual(values(m64.stateDict()['conv_fc.0.weight']!).map(Math.fround));
  });
});

describe('save and load', () => {
  it('round-trip a state dict through a safetensors file PyTorch can read (I64 batch counters) and load it into the CSNN', () => {
    const m = models.csnn({ channels: 2 });
    m.forward(tensor(new Float32Array(2 * 784).map((_, i) => (i % 9) / 9), [2, 1, 28, 28]));
    const file = join(tmp(), 'model.safetensors');
    save(m.stateDict(), file, { metadata: { note: 'demo' } });
    const raw = readSafetensors(file);
    expect(raw.tensors.get('conv_fc.1.num_batches_tracked')!.dtype).toBe('I64');
    expect(raw.tensors.get('conv_fc.0.weight')!.dtype).toBe('F32');
    expect(raw.metadata.note).toBe('demo');
    const sd = load(file);
    expect(Object.keys(sd)).toEqual(Object.keys(m.stateDict()));
    expect(sd['conv_fc.1.num_batches_tracked']!.dtype).toBe('int32');
    expect(sd['conv_fc.1.num_batches_tracked']!.item()).toBe(1);
    const fresh = models.csnn({ channels: 2 });
    fresh.loadStateDict(sd);
    for (const [name, t] of Object.entries(m.stateDict())) expect(values(fresh.stateDict()[name]!), name).toEqual(values(t));
    const net = new nn.Sequential(...handBuilt(2));
    expect(net.loadStateDict(load(file)).matched).toBe('prefix');
  });

  it('validates arguments', () => {
    expect(() => save({ a: 'x' } as never, join(tmp(), 'f.safetensors'))).toThrow(/save: stateDict\['a'\] must be a Tensor/);
    expect(() => save({}, '')).toThrow(/save: path must be a file path/);
    expect(() => save({}, join(tmp(), 'f'), { meta: {} } as never)).toThrow(/unknown option 'meta'/);
    expect(() => load(join(tmp(), 'missing.safetensors'))).toThrow(/cannot read safetensors file/);
  });
});
