// fit(model, { train, test }, options): the loop of `ikun train` for any model and data set.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IkunError, data, fit, loss, manualSeed, models, nn, optim, type EpochMetrics } from '../lib/index.js';
import { colourSquares } from './helpers/synthetic.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-fit-'));
const vgg = (): nn.Module => models.spikingVgg({ widths: [4, 'M', 8, 'M'], inputShape: [3, 8, 8], classes: 3, T: 4 });
const withoutTimes = (m: EpochMetrics): Partial<EpochMetrics> => {
  const { epoch_s: _a, test_s: _b, samples_per_s: _c, ...rest } = m;
  return rest;
};
const train = colourSquares(192, 1), test = colourSquares(96, 2);

describe('fit', () => {
  it('trains the VGG-like model on a small 3-channel set well above chance, with hooks and firing rates', async () => {
    const steps: string[] = [], lines: string[] = [], epochs: number[] = [];
    const r = await fit(vgg(), { train, test, name: 'colour squares' }, {
      epochs: 3, batchSize: 32, optimizer: 'sgd', lr: 0.1,
      log: (l) => lines.push(l), onStep: (s) => steps.push(`${s.phase}${s.step}/${s.steps}`), onEpoch: (m) => epochs.push(m.epoch),
    });
    expect(r.runDir).toBeNull();
    expect(r.metrics).toHaveLength(3);
    expect(r.metrics[2]!.test_acc).toBeGreaterThan(0.7); // chance is 1/3
    expect(r.metrics[2]!.train_loss).toBeLessThan(r.metrics[0]!.train_loss);
    expect(r.metrics[1]!.lr).toBeCloseTo(0.1 * (1 + Math.cos(Math.PI / 3)) / 2, 12); // cosine over 3 epochs
    expect(Object.keys(r.metrics[0]!.firing_rates)).toEqual(['features.2', 'features.6', 'classifier.2']);
    expect(r.metrics[0]!.grad_norm).toBeGreaterThan(0);
    expect(epochs).toEqual([1, 2, 3]);
    expect(steps.slice(0, 7)).toEqual(['train1/6', 'train2/6', 'train3/6', 'train4/6', 'train5/6', 'train6/6', 'test1/3']);
    expect(lines).toContain('data: colour squares, 192 training images (6 batches of 32), 96 test images');
  });

  it("gives each step's mean loss to onStep, read from the device only when asked (a batch of 24: no power of two)", async () => {
    const losses = { train: [] as number[], test: [] as number[] };
    let asked = 0;
    const r = await fit(vgg(), { train, test }, {
      epochs: 1, batchSize: 24, optimizer: 'sgd', lr: 0.1,
      onStep: (s) => { if (s.step % 2 === 0 || s.phase === 'test') { asked++; losses[s.phase].push(s.loss); } },
    });
    expect([losses.train.length, losses.test.length, asked]).toEqual([4, 4, 8]);
    // every test batch has 24 images: their mean is the epoch's test loss
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    expect(Math.abs(mean(losses.test) - r.metrics[0]!.test_loss)).toBeLessThan(1e-12 * r.metrics[0]!.test_loss);
    for (const l of [...losses.train, ...losses.test]) expect(l).toBeGreaterThan(0);
  });

  it('takes arrays you bring, optimiser and schedule objects and a loss function; writes a run folder that resume continues exactly', async () => {
    const arrays = { images: Array.from(train.images), labels: Array.from(train.labels), shape: [3, 8, 8] as const };
    const run = async (out: string, epochs: number, resume = false, onEpoch?: (m: EpochMetrics) => void) => {
      manualSeed(7); // the same initial weights in every run
      const model = vgg();
      const optimizer = new optim.Adam(model.namedParameters(), { lr: 0.01 });
      const schedule = new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
      return fit(model, { train: arrays, test }, { epochs, batchSize: 48, optimizer, schedule, loss: (o, l) => loss.ceRate(o, l), out, resume,
        ...(onEpoch ? { onEpoch } : {}) });
    };
    const full = await run(join(tmp(), 'full'), 3);
    const dir = join(tmp(), 'split');
    await run(dir, 3, false, (m) => { if (m.epoch === 2) throw new Error('stop'); }).catch((e: Error) => expect(e.message).toBe('stop'));
    for (const f of ['config.json', 'metrics.jsonl', 'metrics.csv', 'best.safetensors', 'last.safetensors']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ epochs: 3, batchSize: 48, optimizer: { kind: 'Adam' }, schedule: 'StepLR', loss: 'custom' });
    const resumed = await run(dir, 3, true);
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
    expect(resumed.metrics[2]!.lr).toBeCloseTo(0.0025, 12);
    // more epochs than the folder holds: the run is finished
    await expect(run(dir, 3, true)).rejects.toThrow(/fit: resume: '.*split' has finished all 3 epochs; pass a larger epochs/);
  });

  it("speaks of fit's arguments in its errors (codes for callers that phrase them otherwise), never of CLI flags", async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'last.safetensors'), '');
    const err = await fit(vgg(), { train, test }, { out: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IkunError);
    expect((err as IkunError).code).toBe('RUN_EXISTS');
    expect((err as IkunError).message).toMatch(/fit: out '.*' already holds a run \(last.safetensors\); pass resume: true to continue it, or choose another out/);
    const messages: string[] = [];
    for (const bad of [
      () => fit(vgg(), { train, test }, { epochs: 0 }),
      () => fit(vgg(), { train, test }, { optimizer: 'rmsprop' as never }),
      () => fit(vgg(), { train, test }, { optimizer: 'adam', momentum: 0.9 }),
      () => fit(vgg(), { train, test }, { schedule: 'none', etaMin: 0.1 }),
      () => fit(vgg(), { train, test }, { resume: true }),
      () => fit(vgg(), { train, test }, { batchSize: 500 }),
      () => fit(vgg(), { train, test }, { bacthSize: 5 } as never),
      () => fit(vgg(), { train: { images: [1] } as never, test }),
      () => fit({} as never, { train, test }),
      () => fit(vgg(), { train, test }, { optimizer: new optim.SGD(vgg().namedParameters(), { lr: 1 }) }),
      () => fit(vgg(), { train, test: colourSquares(3, 1, 4) }),
      () => fit(vgg(), { train, test }, { out: dir, resume: true }),
    ]) messages.push(await bad().then(() => 'no error', (e: Error) => e.message));
    expect(messages).toEqual([
      expect.stringMatching(/fit: epochs must be an integer >= 1, got 0/),
      expect.stringMatching(/fit: optimizer must be one of 'sgd', 'adam', 'adamw', got "rmsprop"/),
      expect.stringMatching(/fit: momentum and nesterov apply to optimizer 'sgd', not 'adam'/),
      expect.stringMatching(/fit: etaMin need schedule 'cosine' or 'step'/),
      expect.stringMatching(/fit: resume needs out/),
      expect.stringMatching(/fit: batchSize 500 is larger than the 192 training images: no full batch to train on \(pass dropLast: false/),
      expect.stringMatching(/fit options: unknown option 'bacthSize'/),
      expect.stringMatching(/DataLoader: dataset must be a Dataset|fit: data.train must be/),
      expect.stringMatching(/fit: model must be an ikun Module/),
      expect.stringMatching(/fit: optimizer holds parameters that are not the model's/),
      expect.stringMatching(/fit: train images are 3x8x8 but test images 3x4x4/),
      expect.stringMatching(/fit: resume: '.*' has no last.safetensors yet|is not a run folder/),
    ]);
    for (const m of messages) expect(m).not.toMatch(/--[a-z]/);
  });

  it('data.fromArrays validates what you bring', () => {
    expect(() => data.fromArrays(new Float32Array(10), [0, 1], [1, 2, 2])).toThrow(/2 labels of 1x2x2 images need 8 image values, got 10/);
    expect(() => data.fromArrays(new Float32Array(8), [0, 1.5], [1, 2, 2])).toThrow(/labels\[1\] must be a class index/);
    expect(() => data.fromArrays(new Float32Array(8), [0, 1], [2, 2] as never)).toThrow(/shape must be \[channels, height, width\]/);
    const d = data.fromArrays([0, 0.5, 1, 0.25], new Int32Array([3]), [1, 2, 2]);
    expect(d).toMatchObject({ count: 1, channels: 1, height: 2, width: 2 });
    expect(data.subset(colourSquares(6, 1), 2, 0).channels).toBe(3);
  });
});
