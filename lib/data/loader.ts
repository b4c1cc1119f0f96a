// Mini-batches: a seeded loader whose per-epoch order depends only on (seed, epoch).
import { checkBoolean, checkInteger, checkKnownKeys, checkOptionsObject, fail } from '../errors.js';
import { Generator } from '../random.js';
import { checkDataset, gather, type Dataset } from './dataset.js';

/** One mini-batch: `size` images (size * channels * height * width values) and their labels. */
export interface Batch {
  images: Float32Array;
  labels: Int32Array;
  size: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** Shuffle the samples each epoch (default false). */
  shuffle?: boolean;
  /** Drop the last batch when it is partial (default false). */
  dropLast?: boolean;
  /** Seed of the per-epoch shuffles (default 0). */
  seed?: number;
}

/** murmur3's 32-bit finaliser: a bijective mix, used to derive per-epoch seeds. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A 53-bit generator seed that depends only on (seed, epoch). */
function epochSeed(seed: number, epoch: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const a = mix32(lo ^ mix32((epoch + 0x9e3779b9) >>> 0));
  const b = mix32(hi ^ mix32((a + 0x7f4a7c15) >>> 0) ^ mix32(epoch >>> 0));
  return a * 2 ** 21 + (b >>> 11);
}

/**
 * Splits a data set into mini-batches. With `shuffle`, the order of epoch e is a Fisher-Yates shuffle seeded
 * from (seed, e) alone, so a resumed run sees the same order as an uninterrupted one.
 */
export class DataLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    this.dataset = checkDataset('DataLoader: dataset', dataset);
    if (options === undefined) fail('DataLoader: options { batchSize } are required');
    const opts = checkOptionsObject('DataLoader options', options);
    checkKnownKeys('DataLoader', opts, ['batchSize', 'shuffle', 'dropLast', 'seed']);
    this.batchSize = checkInteger('DataLoader: batchSize', opts.batchSize, 1);
    this.shuffle = checkBoolean('DataLoader: shuffle', opts.shuffle ?? false);
    this.dropLast = checkBoolean('DataLoader: dropLast', opts.dropLast ?? false);
    this.seed = checkInteger('DataLoader: seed', opts.seed ?? 0, 0, 2 ** 53 - 1);
  }

  /** Batches per epoch. */
  batchCount(): number {
    const n = this.dataset.count;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of an epoch (identity without shuffle). */
  order(epoch: number): Int32Array {
    checkInteger('epoch', epoch, 0, 2 ** 32 - 1);
    const n = this.dataset.count;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (this.shuffle) {
      const rng = new Generator(epochSeed(this.seed, epoch));
      for (let i = n - 1; i > 0; i--) {
        const j = rng.integer(i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    return order;
  }

  /**
   * The batches of an epoch, each gathered when the iterator reaches it; from batch `first` on (a run
   * resumed inside an epoch skips the batches it has trained on without gathering them).
   */
  epoch(epoch: number, first = 0): IterableIterator<Batch> {
    const order = this.order(epoch);
    const count = this.batchCount();
    checkInteger('DataLoader.epoch: first', first, 0, count);
    return this.batches(order, first, count);
  }

  private *batches(order: Int32Array, first: number, count: number): IterableIterator<Batch> {
    for (let b = first; b < count; b++) {
      const start = b * this.batchSize;
      const end = Math.min(start + this.batchSize, order.length);
      yield gather(this.dataset, order, start, end);
    }
  }
}
