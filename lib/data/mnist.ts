// MNIST and Fashion-MNIST from their four IDX files (the Debian packages' folders, a folder given, or
// IKUN_DATA), and the bundled Fashion-MNIST sample.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKnownKeys, checkOptionsObject, describe, fail, failWith, type ErrorDetails } from '../errors.js';
import type { Dataset, DatasetSplits } from './dataset.js';
import { readIdx } from './idx.js';

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
