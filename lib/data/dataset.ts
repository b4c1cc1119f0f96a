// Data sets in memory: images with labels, arrays users bring, seeded subsets.
import { checkInteger, describe, fail } from '../errors.js';
import { Generator } from '../random.js';

/**
 * Images with their class labels. Image i is images[i*size .. (i+1)*size) with size = channels * height *
 * width, channel-major ([C, H, W]) as PyTorch lays out images; pixels in [0, 1] for the loaders here.
 */
export interface Dataset {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  /** Colour channels (default 1: the grey MNIST images; 3 for RGB). */
  channels?: number;
  height: number;
  width: number;
}

/** Values per image of a data set: channels * height * width. */
export function imageSize(d: Dataset): number {
  return (d.channels ?? 1) * d.height * d.width;
}

export interface DatasetSplits {
  train: Dataset;
  test: Dataset;
}

export function checkDataset(name: string, dataset: unknown): Dataset {
  const d = dataset as Dataset;
  if (
    d === null ||
    typeof d !== 'object' ||
    !(d.images instanceof Float32Array) ||
    !(d.labels instanceof Int32Array) ||
    !Number.isInteger(d.count) ||
    !Number.isInteger(d.height) ||
    !Number.isInteger(d.width) ||
    (d.channels !== undefined && !(Number.isInteger(d.channels) && d.channels >= 1))
  )
    fail(`${name} must be a Dataset { images: Float32Array, labels: Int32Array, count, channels?, height, width }, got ${describe(dataset)}`);
  if (d.labels.length !== d.count || d.images.length !== d.count * imageSize(d))
    fail(
      `${name} is inconsistent: count ${d.count}, ${d.channels ?? 1}x${d.height}x${d.width} images need ${d.count * imageSize(d)} values ` +
        `and ${d.count} labels, got ${d.images.length} values and ${d.labels.length} labels`,
    );
  return d;
}

/**
 * A Dataset from arrays you bring: images holding count * channels * height * width values (each image
 * channel-major, [C, H, W]), one integer label per image.
 */
export function fromArrays(images: Float32Array | ArrayLike<number>, labels: Int32Array | ArrayLike<number>,
  shape: readonly [number, number, number]): Dataset {
  if (!Array.isArray(shape) || shape.length !== 3) fail(`fromArrays: shape must be [channels, height, width] of one image, got ${describe(shape)}`);
  const [channels, height, width] = shape.map((v, i) => checkInteger(`fromArrays: shape[${i}]`, v, 1)) as [number, number, number];
  const isArrayLike = (v: unknown): v is ArrayLike<number> => v !== null && typeof v === 'object' && typeof (v as ArrayLike<number>).length === 'number';
  if (!isArrayLike(images)) fail(`fromArrays: images must be a Float32Array or a number[], got ${describe(images)}`);
  if (!isArrayLike(labels)) fail(`fromArrays: labels must be an Int32Array or a number[], got ${describe(labels)}`);
  const count = labels.length;
  const ints = labels instanceof Int32Array ? labels : new Int32Array(count);
  if (!(labels instanceof Int32Array)) {
    for (let i = 0; i < count; i++) {
      const l = labels[i];
      if (typeof l !== 'number' || !Number.isInteger(l) || l < 0) fail(`fromArrays: labels[${i}] must be a class index (an integer >= 0), got ${describe(l)}`);
      ints[i] = l;
    }
  }
  const perImage = channels * height * width;
  if (images.length !== count * perImage)
    fail(`fromArrays: ${count} labels of ${channels}x${height}x${width} images need ${count * perImage} image values, got ${images.length}`);
  return { images: images instanceof Float32Array ? images : Float32Array.from(images), labels: ints, count, channels, height, width };
}

/**
 * `count` distinct indices in [0, total), uniformly chosen by a seeded (partial) Fisher-Yates shuffle,
 * in shuffled order.
 */
export function sampleIndices(total: number, count: number, seed: number): Int32Array {
  checkInteger('total', total, 0, 2 ** 31 - 1);
  checkInteger('count', count, 1);
  if (count > total) fail(`count must be at most the data set size ${total}, got ${count}`);
  const rng = new Generator(seed);
  const order = new Int32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + rng.integer(total - i);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order.slice(0, count);
}

export function gather(dataset: Dataset, indices: ArrayLike<number>, start: number, end: number) {
  const pixels = imageSize(dataset);
  const size = end - start;
  const images = new Float32Array(size * pixels);
  const labels = new Int32Array(size);
  for (let k = 0; k < size; k++) {
    const i = indices[start + k];
    images.set(dataset.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k] = dataset.labels[i];
  }
  return { images, labels, size };
}

/** A seeded random subset of `count` samples, chosen uniformly without replacement (Fisher-Yates). */
export function subset(dataset: Dataset, count: number, seed: number): Dataset {
  checkDataset('dataset', dataset);
  checkInteger('seed', seed, 0, 2 ** 53 - 1);
  const indices = sampleIndices(dataset.count, count, seed);
  const { images, labels } = gather(dataset, indices, 0, count);
  return { images, labels, count, ...(dataset.channels !== undefined ? { channels: dataset.channels } : {}), height: dataset.height, width: dataset.width };
}
