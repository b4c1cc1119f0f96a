// The paper's GPU configuration shared by bench:gpu and bench:gpu-host: CSNN-128, T = 4, batch 128, SGD on a
// 20,000-image training subset with the 10,000 test images; SpikingJelly's figures on an H200 and the goals.
import { data } from '../lib/index.js';
import type { Dataset } from '../lib/data.js';

export const REFERENCE = { epochSeconds: 1.19, samplesPerSecond: 16_700, testSeconds: 0.1, peakGB: 7.36 };
export const GOAL = { epochSeconds: 0.24, testSeconds: 0.03, peakGB: 3.7 };

/** The run's sizes: the paper's, or a tiny one (--smoke) that the emulated device computes in seconds. */
export function paperSizes(smoke: boolean): { channels: number; T: number; batch: number } {
  return { channels: smoke ? 4 : 128, T: 4, batch: smoke ? 64 : 128 };
}

/** `count` images drawn (cycling) from a data set: the paper's sizes when only the bundled sample is here. */
function tiled(d: Dataset, count: number): Dataset {
  const size = d.height * d.width * (d.channels ?? 1);
  const images = new Float32Array(count * size), labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    images.set(d.images.subarray((i % d.count) * size, (i % d.count + 1) * size), i * size);
    labels[i] = d.labels[i % d.count]!;
  }
  return { ...d, images, labels, count };
}

/** The paper's data, or (smoke) `smokeImages` training and test images from the bundled sample. */
export function paperData(smoke: boolean, smokeImages = { train: 256, test: 128 }): { train: Dataset; test: Dataset; source: string } {
  if (smoke) {
    const s = data.loadSample();
    return { train: tiled(s.train, smokeImages.train), test: tiled(s.test, smokeImages.test), source: 'bundled sample (smoke run)' };
  }
  try {
    const full = data.loadFashionMnist();
    return { train: data.subset(full.train, 20_000, 42), test: full.test, source: 'Fashion-MNIST (20,000-image subset, 10,000 test)' };
  } catch {
    const s = data.loadSample();
    return { train: tiled(s.train, 20_000), test: tiled(s.test, 10_000), source: 'bundled sample tiled to 20,000 / 10,000 images (no Fashion-MNIST found)' };
  }
}

/** The optimiser settings of the paper's runs. */
export const PAPER_SGD = { optimizer: 'sgd', lr: 0.1, momentum: 0.9 } as const;
