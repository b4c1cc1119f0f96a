// Data loading: IDX files (raw or gzip), MNIST / Fashion-MNIST, the bundled Fashion-MNIST sample,
// seeded subsets and a seeded mini-batch loader. Node built-ins only.
import { gunzipSync } from 'node:zlib';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkOptionsObject,
  describe,
  fail,
  failWith,
  type ErrorDetails,
} from './errors.js';
import { Generator } from './random.js';

// ---------------------------------------------------------------------------------------------------------
// IDX

/** An IDX array of unsigned bytes: its dimensions and its data in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const IDX_TYPES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Parses an IDX file held in memory (gzip-compressed or raw; gzip is detected by its magic 0x1f 0x8b).
 * Only the unsigned-byte type (0x08) is supported. `name` is used in error messages.
 */
export function parseIdx(buffer: Uint8Array, name = 'IDX buffer'): IdxArray {
  if (!(buffer instanceof Uint8Array)) fail(`parseIdx: buffer must be a Uint8Array, got ${describe(buffer)}`);
  let bytes = buffer;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      fail(`${name}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`${name}: not an IDX file: ${bytes.length} bytes, shorter than the 4-byte header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), hex).join(' ');
    fail(`${name}: not an IDX file: magic number ${magic}, expected 0x00 0x00 <type> <ndim>`);
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const known = IDX_TYPES[type] ? ` (${IDX_TYPES[type]})` : '';
    fail(`${name}: unsupported IDX data type ${hex(type)}${known}; only 0x08 (unsigned byte) is supported`);
  }
  const ndim = bytes[3];
  if (ndim === 0) fail(`${name}: IDX header has 0 dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes)
    fail(`${name}: truncated IDX header: ${ndim} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let expected = 1;
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    expected *= size;
  }
  if (expected > 2 ** 31) fail(`${name}: IDX dimensions [${dims.join(', ')}] describe ${expected} bytes, too large`);
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated' : 'too long';
    fail(
      `${name}: ${what}: dimensions [${dims.join(', ')}] need ${expected} data bytes, the file has ${actual}` +
        ` (after the ${headerBytes}-byte header)`,
    );
  }
  // A plain Uint8Array view (not a Buffer), sharing the decoded bytes.
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, expected) };
}

/** Reads and parses an IDX file (gzip-compressed or raw). */
export function readIdx(path: string): IdxArray {
  if (typeof path !== 'string' || path === '') fail(`readIdx: path must be a non-empty string, got ${describe(path)}`);
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fail(`cannot read IDX file ${path}: ${e.code ?? e.message}`);
  }
  return parseIdx(buffer, path);
}

// ---------------------------------------------------------------------------------------------------------
// Data sets

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

export interface LoadOptions {
  /** Folder holding the four IDX files (ikun train: --data). When given, no other place is tried. */
  dir?: string;
  /** @internal Environment to read IKUN_DATA from; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** @internal Places tried after `dir` and IKUN_DATA; defaults to the Debian folder, then ./data. */
  searchPaths?: string[];
}

const IMAGE_SIZE = 28;
const NUM_CLASSES = 10;

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
type FileKey = keyof typeof FILES;

interface Flavour {
  title: string;
  debianDir: string;
  /** The Debian package that installs it into debianDir, if there is one. */
  debianPackage: string;
}

const FASHION: Flavour = { title: 'Fashion-MNIST', debianDir: '/usr/share/datasets/fashion-mnist', debianPackage: 'dataset-fashion-mnist' };
const MNIST: Flavour = { title: 'MNIST', debianDir: '/usr/share/datasets/mnist', debianPackage: '' };

/** How the caller names the two ways to point at data: a folder option, and the bundled sample. */
export interface DataSourceWording {
  dir: string;
  sample: string;
}

/**
 * The message of a DATA_NOT_FOUND error (details: dataset, searched, debianPackage) in the words of
 * one caller: the data module's own (dir, loadSample()), train()'s config, or the command line's flags.
 */
export function dataNotFoundMessage(d: Readonly<ErrorDetails>, how: DataSourceWording): string {
  const ways = d.debianPackage
    ? `install the Debian package with \`apt-get install ${d.debianPackage}\`, or pass ${how.dir} (or set IKUN_DATA) to a folder ` +
      `holding the four IDX files, or use ${how.sample} for the bundled 4000/1000-image sample`
    : `put the four ${d.dataset} IDX files (optionally .gz) in a folder and pass ${how.dir} or set IKUN_DATA to it`;
  return `${d.dataset} not found${String(d.searched).startsWith('Searched') ? '.' : ':'} ${d.searched}. To get the data: ${ways}.`;
}

const API_WORDING: DataSourceWording = { dir: '`{ dir }`', sample: '`loadSample()`' };

function notFound(flavour: Flavour, searched: string): never {
  const details = { dataset: flavour.title, searched, debianPackage: flavour.debianPackage };
  return failWith('DATA_NOT_FOUND', details, dataNotFoundMessage(details, API_WORDING));
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The four files in `dir` (preferring .gz), or the names of those missing. */
function filesIn(dir: string): { files?: Record<FileKey, string>; missing: string[] } {
  const files = {} as Record<FileKey, string>;
  const missing: string[] = [];
  for (const key of Object.keys(FILES) as FileKey[]) {
    const base = join(dir, FILES[key]);
    if (isFile(`${base}.gz`)) files[key] = `${base}.gz`;
    else if (isFile(base)) files[key] = base;
    else missing.push(`${FILES[key]}(.gz)`);
  }
  return missing.length === 0 ? { files, missing } : { missing };
}

function whyNot(dir: string, missing: string[]): string {
  if (!existsSync(dir)) return 'does not exist';
  if (!isDirectory(dir)) return 'is not a folder';
  return `lacks ${missing.join(', ')}`;
}

function locate(flavour: Flavour, options: LoadOptions): Record<FileKey, string> {
  const explicit: [string, string][] = [];
  if (options.dir !== undefined) explicit.push(['the folder', options.dir]);
  else {
    const envDir = (options.env ?? process.env).IKUN_DATA;
    if (envDir !== undefined && envDir !== '') explicit.push(['IKUN_DATA', envDir]);
  }
  // An explicit choice (dir, or IKUN_DATA when dir is absent) is the only place tried: a wrong path is
  // reported instead of silently loading data from somewhere else.
  if (explicit.length > 0) {
    const [what, dir] = explicit[0];
    const found = filesIn(resolve(dir));
    if (found.files) return found.files;
    notFound(flavour, `${what} ${dir} ${whyNot(resolve(dir), found.missing)}`);
  }
  const places = options.searchPaths ?? [flavour.debianDir, join(process.cwd(), 'data')];
  const tried: string[] = [];
  for (const dir of places) {
    const found = filesIn(resolve(dir));
    if (found.files) return found.files;
    tried.push(`${dir} (${whyNot(resolve(dir), found.missing)})`);
  }
  notFound(flavour, `Searched: IKUN_DATA (not set)${tried.length ? `, ${tried.join(', ')}` : ''}`);
}

function toDataset(imagesFile: string, labelsFile: string): Dataset {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  const d = images.dims;
  if (d.length !== 3 || d[1] !== IMAGE_SIZE || d[2] !== IMAGE_SIZE)
    fail(`${imagesFile}: images must have shape [N, ${IMAGE_SIZE}, ${IMAGE_SIZE}], got [${d.join(', ')}]`);
  if (labels.dims.length !== 1) fail(`${labelsFile}: labels must have shape [N], got [${labels.dims.join(', ')}]`);
  const count = d[0];
  if (labels.dims[0] !== count)
    fail(`${imagesFile} holds ${count} images but ${labelsFile} holds ${labels.dims[0]} labels; the counts must match`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i];
    if (label >= NUM_CLASSES) fail(`${labelsFile}: label ${i} is ${label}, expected 0..${NUM_CLASSES - 1}`);
    out[i] = label;
  }
  const pixels = new Float32Array(images.data.length);
  const src = images.data;
  for (let i = 0; i < src.length; i++) pixels[i] = src[i] / 255;
  return { images: pixels, labels: out, count, height: IMAGE_SIZE, width: IMAGE_SIZE };
}

function loadFrom(files: Record<FileKey, string>): DatasetSplits {
  return {
    train: toDataset(files.trainImages, files.trainLabels),
    test: toDataset(files.testImages, files.testLabels),
  };
}

function load(flavour: Flavour, name: string, options: unknown): DatasetSplits {
  const opts = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(name, opts, ['dir', 'env', 'searchPaths']);
  if (opts.dir !== undefined && (typeof opts.dir !== 'string' || opts.dir === ''))
    fail(`${name}: dir must be a non-empty string, got ${describe(opts.dir)}`);
  if (opts.searchPaths !== undefined && (!Array.isArray(opts.searchPaths) || opts.searchPaths.some((p) => typeof p !== 'string')))
    fail(`${name}: searchPaths must be an array of strings, got ${describe(opts.searchPaths)}`);
  return loadFrom(locate(flavour, opts as LoadOptions));
}

/**
 * Loads Fashion-MNIST (60000 training and 10000 test images). Looks in `dir` if given, else in
 * $IKUN_DATA if set, else in /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist), then ./data.
 */
export function loadFashionMnist(options?: LoadOptions): DatasetSplits {
  return load(FASHION, 'loadFashionMnist', options);
}

/** Loads MNIST; like loadFashionMnist, with /usr/share/datasets/mnist as the system folder. */
export function loadMnist(options?: LoadOptions): DatasetSplits {
  return load(MNIST, 'loadMnist', options);
}

/** The package root: the nearest folder above this module holding both package.json and sources.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isFile(join(dir, 'package.json')) && isFile(join(dir, 'sources.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) fail(`cannot find the ikun package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Folder of the bundled Fashion-MNIST sample. */
export function sampleDir(): string {
  return join(packageRoot(), 'data', 'sample');
}

/** Loads the bundled Fashion-MNIST sample: the first 4000 training and the first 1000 test images. */
export function loadSample(): DatasetSplits {
  const dir = sampleDir();
  const found = filesIn(dir);
  if (!found.files) fail(`the bundled sample is incomplete: ${dir} ${whyNot(dir, found.missing)}`);
  return loadFrom(found.files);
}

function checkDataset(name: string, dataset: unknown): Dataset {
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

function gather(dataset: Dataset, indices: ArrayLike<number>, start: number, end: number) {
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

// ---------------------------------------------------------------------------------------------------------
// Mini-batches

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

  /** The batches of an epoch, each gathered when the iterator reaches it. */
  epoch(epoch: number): IterableIterator<Batch> {
    const order = this.order(epoch);
    return this.batches(order, this.batchCount());
  }

  private *batches(order: Int32Array, count: number): IterableIterator<Batch> {
    for (let b = 0; b < count; b++) {
      const start = b * this.batchSize;
      const end = Math.min(start + this.batchSize, order.length);
      yield gather(this.dataset, order, start, end);
    }
  }
}
