import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as checkpoint from '../lib/checkpoint.js';
import { models, resume, train, type EpochMetrics } from '../lib/index.js';
import { readSafetensors } from '../lib/safetensors.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-train-'));
const withoutTimes = (m: EpochMetrics): Partial<EpochMetrics> => {
  const { epoch_s: _a, test_s: _b, samples_per_s: _c, ...rest } = m;
  return rest;
};

describe('training on the bundled sample', () => {
  it('learns: test accuracy well above chance after two short epochs, and writes the run folder', async () => {
    const out = join(tmp(), 'run');
    const lines: string[] = [];
    const r = await train({ sample: true, epochs: 2, channels: 8, device: 'cpu', out }, { log: (l) => lines.push(l) });
    expect(r.metrics).toHaveLength(2);
    expect(r.metrics[1]!.test_acc).toBeGreaterThan(0.45); // chance is 0.10
    expect(r.metrics[1]!.train_loss).toBeLessThan(r.metrics[0]!.train_loss);
    expect(r.metrics[0]!.lr).toBe(0.1);
    expect(r.metrics[1]!.lr).toBeCloseTo(0.05, 12); // cosine over 2 epochs
    for (const f of ['config.json', 'metrics.jsonl', 'metrics.csv', 'best.safetensors', 'last.safetensors'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const jsonl = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(jsonl.map((m) => m.epoch)).toEqual([1, 2]);
    for (const key of ['train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'grad_norm', 'epoch_s']) expect(typeof jsonl[0][key]).toBe('number');
    expect(Object.keys(jsonl[0].firing_rates)).toEqual(['conv_fc.2', 'conv_fc.6', 'conv_fc.10', 'conv_fc.12']);
    expect(readFileSync(join(out, 'metrics.csv'), 'utf8').split('\n')[0]).toMatch(/^epoch,train_loss,train_acc,test_loss,test_acc,lr,grad_norm/);
    expect(lines.some((l) => l.includes('conv_fc.9') && l.includes('1.273703'))).toBe(true);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ init: 'ikun_v1', opt: 'sgd', seed: 42, channels: 8, sample: true });
    // best.safetensors holds the PyTorch names and loads into a fresh model
    const best = readSafetensors(join(out, 'best.safetensors'));
    expect(best.tensors.get('conv_fc.1.num_batches_tracked')!.dtype).toBe('I64');
    const m = models.csnn({ channels: 8 });
    checkpoint.loadModelState(m, best);
    expect(() => checkpoint.loadModelState(models.csnn({ channels: 4 }), best)).toThrow(/'conv_fc.0.weight' has shape \[8, 1, 3, 3\] in the file, the model needs \[4, 1, 3, 3\]/);
  });

  it('resume after a stop gives the same metrics as an uninterrupted run', async () => {
    const base = { sample: true, channels: 4, subset: 640, batch: 64, device: 'cpu' as const, opt: 'adam' as const, epochs: 3 };
    const full = await train({ ...base, out: join(tmp(), 'full') });
    const dir = join(tmp(), 'split');
    await train({ ...base, epochs: 3, out: dir }, { onEpoch: (m) => { if (m.epoch === 2) throw new Error('killed'); } }).catch((e) => {
      if ((e as Error).message !== 'killed') throw e;
    });
    // the kill came after epoch 2's checkpoint; add a metrics line for an epoch 3 whose checkpoint never
    // got written, as if the process died between the two: resume must redo that epoch
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    writeFileSync(join(dir, 'metrics.jsonl'), [...lines, JSON.stringify({ ...JSON.parse(lines[1]!), epoch: 3 })].join('\n') + '\n');
    const resumed = await resume(dir);
    expect(resumed.metrics.map(withoutTimes)).toEqual(full.metrics.map(withoutTimes));
  });

  it('resume --epochs extends a finished run along the new schedule; a folder without a finished epoch restarts', async () => {
    const base = { sample: true, channels: 2, subset: 256, batch: 64, device: 'cpu' as const, epochs: 1 };
    const dir = join(tmp(), 'run');
    await train({ ...base, out: dir });
    await expect(resume(dir)).rejects.toThrow(/^ikun: resume: '.*' has finished all 1 epochs; pass \{ epochs \} with a larger total/);
    const more = await resume(dir, {}, { epochs: 2 });
    expect(more.metrics.map((m) => m.epoch)).toEqual([1, 2]);
    expect(more.metrics[1]!.lr).toBeCloseTo(0.05, 12); // cosine over the new total of 2 epochs
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).epochs).toBe(2);
    const fresh = join(tmp(), 'stopped');
    await train({ ...base, out: fresh }, { onStep: () => { throw new Error('stop'); } }).catch(() => {});
    expect(existsSync(join(fresh, 'config.json'))).toBe(true);
    expect((await train({ ...base, out: fresh })).metrics).toHaveLength(1);
  });

  it('refuses a corrupt checkpoint with a clear error', () => {
    const file = join(tmp(), 'bad.safetensors');
    writeFileSync(file, Buffer.from([1, 2, 3]));
    expect(() => checkpoint.readCheckpoint(file)).toThrow(/safetensors file .*bad.safetensors/);
    writeFileSync(file, Buffer.concat([Buffer.from([255, 255, 255, 255, 0, 0, 0, 0]), Buffer.from('{}')]));
    expect(() => checkpoint.readCheckpoint(file)).toThrow(/header/);
  });

  it('refuses an existing run folder, an unwritable folder, bad config and an inconsistent resume', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'last.safetensors'), '');
    await expect(train({ sample: true, epochs: 1, channels: 2, out: dir })).rejects.toThrow(/already holds a run \(last.safetensors\); continue it with resume\('.*'\) or choose another out$/);
    // the API speaks of its own arguments, not of CLI flags
    const noData = await train({ data: join(dir, 'absent'), out: join(tmp(), 'r') }).catch((e: Error) => e.message);
    expect(noData).toMatch(/Fashion-MNIST not found: the folder .*absent does not exist.*pass `data` \(or set IKUN_DATA\).*use `sample: true`/);
    expect(noData).not.toMatch(/--[a-z]/);
    const file = join(tmp(), 'file');
    writeFileSync(file, 'x');
    await expect(train({ sample: true, epochs: 1, out: join(file, 'run') })).rejects.toThrow(/cannot write to the output folder/);
    await expect(train({ epochs: 0 })).rejects.toThrow(/epochs must be an integer >= 1, got 0/);
    await expect(train({ init: 'he' as never })).rejects.toThrow(/init must be one of 'ikun_v1'/);
    await expect(train({ colour: 1 } as never)).rejects.toThrow(/unknown option 'colour'/);
    await expect(train({ sample: true, subset: 5000, out: join(tmp(), 'r') })).rejects.toThrow(/subset 5000 is larger than the 4000 training images/);
    await expect(train({ device: 'cuda', sample: true, out: join(tmp(), 'r') })).rejects.toThrow(/device 'cuda' cannot be used/);
    await expect(resume(tmp())).rejects.toThrow(/not a run folder/);
    const empty = await (async () => { const d = tmp(); writeFileSync(join(d, 'config.json'), JSON.stringify({ sample: true })); return d; })();
    await expect(resume(empty)).rejects.toThrow(/no last.safetensors/);
  });
});
