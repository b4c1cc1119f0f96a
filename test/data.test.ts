import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DataLoader,
  loadFashionMnist,
  loadMnist,
  loadSample,
  parseIdx,
  readIdx,
  sampleIndices,
  subset,
  type Dataset,
  type DatasetSplits,
} from '../lib/data.js';

/** An unsigned-byte IDX file with the given dims; data defaults to 0, 1, 2, ... (mod 256). */
function idx(dims: number[], data?: Uint8Array, type = 0x08): Buffer {
  const n = dims.reduce((a, b) => a * b, 1);
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const body = Buffer.from(data ?? Uint8Array.from({ length: n }, (_, i) => i % 256));
  return Buffer.concat([header, body]);
}

/** Writes the four IDX files (gzip) for n training and m test images into dir. */
function writeSet(dir: string, n: number, m: number, labelsN = n): void {
  mkdirSync(dir, { recursive: true });
  const images = (k: number) => idx([k, 28, 28], Uint8Array.from({ length: k * 784 }, (_, i) => (i * 7) % 256));
  const labels = (k: number) => idx([k], Uint8Array.from({ length: k }, (_, i) => i % 10));
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(images(n)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(labels(labelsN)));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), images(m)); // raw works as well
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(labels(m)));
}

/** A data set whose image i has every pixel equal to i and label i % 10, so samples can be identified. */
function numbered(count: number, height = 2, width = 2): Dataset {
  const pixels = height * width;
  const images = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    images.fill(i, i * pixels, (i + 1) * pixels);
    labels[i] = i % 10;
  }
  return { images, labels, count, height, width };
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ikun-data-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('IDX', () => {
  it('parses a raw buffer', () => {
    const r = parseIdx(idx([2, 3, 4]), 'raw');
    expect(r.dims).toEqual([2, 3, 4]);
    expect(r.data.length).toBe(24);
    expect(Array.from(r.data.subarray(0, 5))).toEqual([0, 1, 2, 3, 4]);
  });

  it('parses a gzip buffer', () => {
    const raw = idx([5, 7]);
    const r = parseIdx(gzipSync(raw), 'gz');
    expect(r.dims).toEqual([5, 7]);
    expect(Array.from(r.data)).toEqual(Array.from(raw.subarray(12)));
  });

  it('reads files, raw and gzip', () => {
    writeFileSync(join(tmp, 'a.idx'), idx([3]));
    writeFileSync(join(tmp, 'a.idx.gz'), gzipSync(idx([3])));
    expect(readIdx(join(tmp, 'a.idx'))).toEqual({ dims: [3], data: Uint8Array.from([0, 1, 2]) });
    expect(Array.from(readIdx(join(tmp, 'a.idx.gz')).data)).toEqual([0, 1, 2]);
    expect(() => readIdx(join(tmp, 'nope.idx'))).toThrow(/^ikun: cannot read IDX file .*nope\.idx: ENOENT/);
  });

  it('rejects a bad magic number', () => {
    const bad = idx([4]);
    bad[0] = 0x12;
    expect(() => parseIdx(bad, 'bad.idx')).toThrow(/^ikun: bad\.idx: not an IDX file: magic number 0x12 0x00 0x08 0x01/);
    expect(() => parseIdx(Buffer.from('<html>'), 'page.html')).toThrow(/page\.html: not an IDX file/);
    expect(() => parseIdx(new Uint8Array(2), 'tiny')).toThrow(/tiny: not an IDX file: 2 bytes/);
  });

  it('rejects other data types, naming the code', () => {
    expect(() => parseIdx(idx([1], new Uint8Array(1), 0x0d), 'f.idx')).toThrow(
      /^ikun: f\.idx: unsupported IDX data type 0x0d \(float32\); only 0x08/,
    );
  });

  it('rejects truncated and too-long files with expected and actual byte counts', () => {
    const full = idx([10, 28, 28]);
    expect(() => parseIdx(full.subarray(0, full.length - 5), 'short.idx')).toThrow(
      /^ikun: short\.idx: truncated: dimensions \[10, 28, 28\] need 7840 data bytes, the file has 7835/,
    );
    expect(() => parseIdx(Buffer.concat([full, Buffer.alloc(3)]), 'long.idx')).toThrow(
      /long\.idx: too long: .* need 7840 data bytes, the file has 7843/,
    );
    expect(() => parseIdx(full.subarray(0, 10), 'hdr.idx')).toThrow(/hdr\.idx: truncated IDX header/);
    expect(() => parseIdx(gzipSync(full.subarray(0, 100)), 'short.gz')).toThrow(/short\.gz: truncated/);
  });

  it('rejects corrupt gzip, naming the file', () => {
    const gz = gzipSync(idx([100, 28, 28]));
    const cut = gz.subarray(0, gz.length >> 1);
    expect(() => parseIdx(cut, 'cut.gz')).toThrow(/^ikun: cut\.gz: corrupt gzip data/);
    const flipped = Buffer.from(gz);
    for (let i = 20; i < 40; i++) flipped[i] ^= 0xff;
    writeFileSync(join(tmp, 'flipped.gz'), flipped);
    expect(() => readIdx(join(tmp, 'flipped.gz'))).toThrow(/flipped\.gz: corrupt gzip data/);
  });
});

describe('loading', () => {
  it('loads a folder given with dir (gzip and raw files)', () => {
    const dir = join(tmp, 'small');
    writeSet(dir, 12, 5);
    const { train, test } = loadFashionMnist({ dir });
    expect(train.count).toBe(12);
    expect(train.images.length).toBe(12 * 784);
    expect(train.height).toBe(28);
    expect(train.width).toBe(28);
    expect(train.images[1]).toBeCloseTo(7 / 255, 7);
    expect(Array.from(train.labels.subarray(0, 11))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
    expect(test.count).toBe(5);
    expect(loadMnist({ dir }).train.count).toBe(12);
  });

  it('finds the folder through IKUN_DATA and through the search paths', () => {
    const dir = join(tmp, 'small-env');
    writeSet(dir, 3, 2);
    expect(loadFashionMnist({ env: { IKUN_DATA: dir }, searchPaths: [] }).train.count).toBe(3);
    expect(loadFashionMnist({ env: {}, searchPaths: [join(tmp, 'none'), dir] }).test.count).toBe(2);
  });

  it('rejects mismatched image and label counts', () => {
    const dir = join(tmp, 'mismatch');
    writeSet(dir, 6, 2, 5);
    expect(() => loadFashionMnist({ dir })).toThrow(
      /^ikun: .*train-images-idx3-ubyte\.gz holds 6 images but .*train-labels-idx1-ubyte\.gz holds 5 labels/,
    );
  });

  it('rejects labels out of range and images of the wrong shape', () => {
    const dir = join(tmp, 'badlabel');
    writeSet(dir, 4, 2);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([4], Uint8Array.from([1, 2, 10, 3]))));
    expect(() => loadFashionMnist({ dir })).toThrow(/label 2 is 10, expected 0\.\.9/);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx([4, 28, 27])));
    expect(() => loadFashionMnist({ dir })).toThrow(/images must have shape \[N, 28, 28\], got \[4, 28, 27\]/);
  });

  it('says how to get the data when nothing is found', () => {
    let message = '';
    try {
      loadFashionMnist({ env: {}, searchPaths: [join(tmp, 'absent'), tmp] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^ikun: Fashion-MNIST not found/);
    expect(message).toContain('dataset-fashion-mnist');
    expect(message).toContain('apt-get install');
    expect(message).toContain('`{ dir }`');
    expect(message).toContain('IKUN_DATA');
    expect(message).toContain('`loadSample()`');
    expect(message).not.toContain('--');
    expect(message).toContain(join(tmp, 'absent'));
    expect(message).toContain('does not exist');
    expect(message).toContain('lacks train-images-idx3-ubyte(.gz)');
  });

  it('reports an explicit dir or IKUN_DATA lacking the files instead of looking elsewhere', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const good = join(tmp, 'small-fallback');
    writeSet(good, 2, 2);
    expect(() => loadFashionMnist({ dir: empty, searchPaths: [good] })).toThrow(
      /^ikun: Fashion-MNIST not found: the folder .*empty lacks .*dataset-fashion-mnist.*\{ dir \}/,
    );
    expect(() => loadFashionMnist({ env: { IKUN_DATA: empty }, searchPaths: [good] })).toThrow(
      /^ikun: Fashion-MNIST not found: IKUN_DATA .*empty lacks .*dataset-fashion-mnist.*\{ dir \}/,
    );
    const saved = process.env.IKUN_DATA;
    process.env.IKUN_DATA = empty;
    try {
      expect(() => loadFashionMnist({ searchPaths: [good] })).toThrow(/IKUN_DATA .*empty lacks .*dataset-fashion-mnist/);
    } finally {
      if (saved === undefined) delete process.env.IKUN_DATA;
      else process.env.IKUN_DATA = saved;
    }
    expect(() => loadMnist({ dir: join(tmp, 'absent') })).toThrow(/^ikun: MNIST not found: .*does not exist.*pass `\{ dir \}` or set IKUN_DATA/);
  });

  it('validates options', () => {
    expect(() => loadFashionMnist({ dir: '' })).toThrow(/dir must be a non-empty string/);
    expect(() => loadFashionMnist({ folder: 'x' } as never)).toThrow(/unknown option 'folder'/);
  });
});

describe('bundled sample', () => {
  let sample: DatasetSplits;
  beforeAll(() => {
    sample = loadSample();
  });

  it('has 4000 training and 1000 test images of 28x28', () => {
    expect(sample.train.count).toBe(4000);
    expect(sample.test.count).toBe(1000);
    for (const split of [sample.train, sample.test]) {
      expect(split.height).toBe(28);
      expect(split.width).toBe(28);
      expect(split.images.length).toBe(split.count * 784);
      expect(split.labels.length).toBe(split.count);
    }
  });

  it('has pixels in [0, 1] and all ten labels', () => {
    for (const split of [sample.train, sample.test]) {
      let min = Infinity;
      let max = -Infinity;
      for (const v of split.images) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
      const seen = new Set(split.labels);
      expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
  });
});

describe('subset', () => {
  it('is reproducible for a seed and differs between seeds', () => {
    const a = sampleIndices(60000, 20000, 42);
    const b = sampleIndices(60000, 20000, 42);
    const c = sampleIndices(60000, 20000, 43);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('takes distinct samples, spread over the whole set', () => {
    const idxs = sampleIndices(60000, 20000, 7);
    expect(new Set(idxs).size).toBe(20000);
    expect(Math.min(...idxs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...idxs)).toBeLessThan(60000);
    const firstHalf = idxs.filter((i) => i < 30000).length;
    expect(Math.abs(firstHalf - 10000)).toBeLessThan(500);
  });

  it('copies the chosen samples with their labels', () => {
    const data = numbered(100);
    const s = subset(data, 30, 5);
    const again = subset(data, 30, 5);
    expect(s.count).toBe(30);
    expect(s.images.length).toBe(30 * 4);
    expect(s.images).toEqual(again.images);
    const ids = Array.from({ length: 30 }, (_, k) => s.images[k * 4]);
    expect(ids).toEqual(Array.from(sampleIndices(100, 30, 5)));
    expect(new Set(ids).size).toBe(30);
    for (let k = 0; k < 30; k++) {
      expect(s.images[k * 4 + 3]).toBe(ids[k]);
      expect(s.labels[k]).toBe(ids[k] % 10);
    }
    expect(subset(data, 100, 1).count).toBe(100);
  });

  it('validates count and seed', () => {
    const data = numbered(10);
    expect(() => subset(data, 11, 0)).toThrow(/^ikun: count must be at most the data set size 10, got 11/);
    expect(() => subset(data, 0, 0)).toThrow(/^ikun: count must be an integer >= 1, got 0/);
    expect(() => subset(data, 2.5, 0)).toThrow(/count must be an integer/);
    expect(() => subset(data, 3, -1)).toThrow(/seed must be an integer/);
    expect(() => subset({ images: new Float32Array(3) } as never, 1, 0)).toThrow(/dataset must be a Dataset/);
  });
});

describe('DataLoader', () => {
  it('counts batches with and without dropLast', () => {
    const train = numbered(20000, 1, 1);
    const test = numbered(10000, 1, 1);
    expect(new DataLoader(train, { batchSize: 128, dropLast: true }).batchCount()).toBe(156);
    expect(new DataLoader(train, { batchSize: 128 }).batchCount()).toBe(157);
    const loader = new DataLoader(test, { batchSize: 128, dropLast: false });
    expect(loader.batchCount()).toBe(79);
    const batches = [...loader.epoch(0)];
    expect(batches.length).toBe(79);
    expect(batches[0].size).toBe(128);
    expect(batches[78].size).toBe(16);
    expect(batches[78].images.length).toBe(16);
    expect(batches[78].labels.length).toBe(16);
    const dropped = [...new DataLoader(train, { batchSize: 128, dropLast: true, shuffle: true }).epoch(3)];
    expect(dropped.length).toBe(156);
    expect(dropped.every((b) => b.size === 128)).toBe(true);
  });

  it('keeps the order without shuffle', () => {
    const data = numbered(10);
    const batches = [...new DataLoader(data, { batchSize: 4 }).epoch(0)];
    expect(batches.map((b) => b.size)).toEqual([4, 4, 2]);
    expect(Array.from(batches[2].labels)).toEqual([8, 9]);
    expect(Array.from(batches[1].images.subarray(0, 8))).toEqual([4, 4, 4, 4, 5, 5, 5, 5]);
  });

  it('shuffles per epoch, reproducibly from (seed, epoch)', () => {
    const data = numbered(1000, 1, 1);
    const ids = (loader: DataLoader, e: number) => [...loader.epoch(e)].flatMap((b) => Array.from(b.images));
    const a = new DataLoader(data, { batchSize: 64, shuffle: true, seed: 11 });
    const b = new DataLoader(data, { batchSize: 64, shuffle: true, seed: 11 });
    const c = new DataLoader(data, { batchSize: 64, shuffle: true, seed: 12 });
    const e0 = ids(a, 0);
    const e1 = ids(a, 1);
    ids(b, 0);
    expect(ids(b, 5)).toEqual(ids(a, 5)); // a resumed run: epoch 5 without epochs 1..4 before it
    expect(ids(b, 1)).toEqual(e1);
    expect(e0).not.toEqual(e1);
    expect(ids(c, 0)).not.toEqual(e0);
    expect(e0).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('yields every sample exactly once per epoch, labels following images', () => {
    const data = numbered(1000, 2, 3);
    const loader = new DataLoader(data, { batchSize: 96, shuffle: true, seed: 3 });
    for (const e of [0, 1, 2]) {
      const seen: number[] = [];
      for (const batch of loader.epoch(e)) {
        for (let k = 0; k < batch.size; k++) {
          const id = batch.images[k * 6];
          expect(batch.images[k * 6 + 5]).toBe(id);
          expect(batch.labels[k]).toBe(id % 10);
          seen.push(id);
        }
      }
      expect(seen.length).toBe(1000);
      expect(new Set(seen).size).toBe(1000);
    }
    expect(Array.from(loader.order(2)).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('validates its options, naming each', () => {
    const data = numbered(10);
    expect(() => new DataLoader(data, { batchSize: 0 })).toThrow(/^ikun: DataLoader: batchSize must be an integer >= 1, got 0/);
    expect(() => new DataLoader(data, { batchSize: 1.5 })).toThrow(/batchSize must be an integer >= 1, got 1\.5/);
    expect(() => new DataLoader(data, {} as never)).toThrow(/batchSize must be an integer >= 1, got undefined/);
    expect(() => new DataLoader(data, undefined as never)).toThrow(/^ikun: DataLoader: options \{ batchSize \} are required/);
    expect(() => new DataLoader(data, { batchSize: 2, shuffle: 'yes' as never })).toThrow(
      /^ikun: DataLoader: shuffle must be a boolean, got "yes"/,
    );
    expect(() => new DataLoader(data, { batchSize: 2, dropLast: 1 as never })).toThrow(/dropLast must be a boolean, got 1/);
    expect(() => new DataLoader(data, { batchSize: 2, seed: -3 })).toThrow(/^ikun: DataLoader: seed must be an integer >= 0, got -3/);
    expect(() => new DataLoader(data, { batchSize: 2, batch: 3 } as never)).toThrow(/unknown option 'batch'/);
    expect(() => new DataLoader(data, { batchSize: 2 }).epoch(-1)).toThrow(/^ikun: epoch must be an integer/);
  });
});
