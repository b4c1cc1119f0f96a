// A VGG-style convolutional SNN of the kind SpikingJelly users train on CIFAR-10: 3x3 convolutions
// (padding 1) each followed by BatchNorm and a neuron, 2x2 max-pools where widths says 'M', then a
// classifier of Linear + neuron layers; the static image is repeated over T and the output is the mean
// over T of the last neurons' spikes (a firing rate per class). Like models.csnn, a plain description of
// layers: nn.Sequential runs the first block once on the static images and fuses each neuron with the
// max-pool after it.
import { checkBoolean, checkInteger, checkKnownKeys, checkOptionsObject, describe, fail } from '../errors.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, MeanOverTime, RepeatOverTime, Sequential, type Module } from '../nn/index.js';
import { formatShape } from '../tensor.js';
import { SPIKING_MODEL_KEYS, resolveSpiking, type SpikingModelOptions } from './common.js';

/** A convolution width, or 'M' for a 2x2 max-pool. */
export type VggLayer = number | 'M';

/** VGG-11's feature layers (SpikingJelly's spiking_vgg11 configuration). */
export const VGG11_WIDTHS: readonly VggLayer[] = Object.freeze([64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']);

export interface SpikingVggOptions extends SpikingModelOptions {
  /** Feature layers in order: a number is a Conv3x3-BN-neuron block of that width, 'M' a 2x2 max-pool (default VGG11_WIDTHS). */
  widths?: readonly VggLayer[];
  /** [channels, height, width] of the images (default [3, 32, 32], CIFAR-10); any size the pools allow. */
  inputShape?: readonly [number, number, number];
  /** Output classes (default 10). */
  classes?: number;
  /** Widths of hidden Linear + neuron layers before the output layer (default none). */
  hidden?: readonly number[];
  /** BatchNorm after each convolution (default true; false gives the convolutions a bias instead). */
  batchNorm?: boolean;
}

function checkWidths(value: unknown): VggLayer[] {
  if (!Array.isArray(value) || value.length === 0)
    fail(`models.spikingVgg: widths must be a non-empty array of channel counts and 'M' (max-pool), e.g. [64, 'M', 128, 'M'], got ${describe(value)}`);
  return value.map((w, i) => (w === 'M' ? 'M' : checkInteger(`models.spikingVgg: widths[${i}]`, w, 1)));
}

function checkInputShape(value: unknown): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3)
    fail(`models.spikingVgg: inputShape must be [channels, height, width], got ${describe(value)}`);
  return value.map((d, i) => checkInteger(`models.spikingVgg: inputShape[${i}]`, d, 1)) as [number, number, number];
}

export class SpikingVGG extends Sequential {
  readonly T: number;
  readonly widths: readonly VggLayer[];
  readonly inputShape: readonly [number, number, number];
  readonly classes: number;
  /** The convolutional blocks: features.0 (first conv), features.1 (its BatchNorm), ... */
  readonly features: Sequential;
  /** Flatten, the hidden Linear + neuron layers, the output Linear + neuron. */
  readonly classifier: Sequential;

  constructor(options: SpikingVggOptions = {}) {
    const o = checkOptionsObject('models.spikingVgg options', options);
    checkKnownKeys('models.spikingVgg options', o, ['widths', 'inputShape', 'classes', 'hidden', 'batchNorm', ...SPIKING_MODEL_KEYS]);
    const r = resolveSpiking('models.spikingVgg', o);
    const widths = o.widths === undefined ? [...VGG11_WIDTHS] : checkWidths(o.widths);
    const inputShape = o.inputShape === undefined ? [3, 32, 32] as [number, number, number] : checkInputShape(o.inputShape);
    const classes = o.classes === undefined ? 10 : checkInteger('models.spikingVgg: classes', o.classes, 1);
    if (o.hidden !== undefined && !Array.isArray(o.hidden)) fail(`models.spikingVgg: hidden must be an array of layer widths, got ${describe(o.hidden)}`);
    const hidden = ((o.hidden ?? []) as unknown[]).map((h, i) => checkInteger(`models.spikingVgg: hidden[${i}]`, h, 1));
    const batchNorm = o.batchNorm === undefined ? true : checkBoolean('models.spikingVgg: batchNorm', o.batchNorm);
    const f = { dtype: r.dtype, device: r.device };

    // Build the features, following the image size so a pool that would leave nothing is named at once.
    let [channels, height, width] = inputShape;
    const features: Module[] = [];
    widths.forEach((w, i) => {
      if (w === 'M') {
        if (height < 2 || width < 2)
          fail(`models.spikingVgg: widths[${i}] ('M', layer features.${features.length}) would max-pool a ${height}x${width} map; ` +
            `the ${formatShape(inputShape)} input allows fewer pools: remove an 'M' or give a larger inputShape`);
        features.push(new MaxPool2d(2));
        [height, width] = [Math.floor(height / 2), Math.floor(width / 2)];
        return;
      }
      features.push(new Conv2d(channels, w, 3, { padding: 1, bias: !batchNorm, ...f }));
      if (batchNorm) features.push(new BatchNorm2d(w, f));
      features.push(r.node());
      channels = w;
    });
    if (!widths.some((w) => w !== 'M')) fail(`models.spikingVgg: widths needs at least one convolution (a number), got ${describe(widths)}`);
    const classifier: Module[] = [new Flatten({ startDim: 2 })];
    let inFeatures = channels * height * width;
    for (const h of hidden) {
      classifier.push(new Linear(inFeatures, h, f), r.node());
      inFeatures = h;
    }
    classifier.push(new Linear(inFeatures, classes, f), r.node());

    const featureLayers = new Sequential(...features), classifierLayers = new Sequential(...classifier);
    super(new Map<string, Module>([['repeat', new RepeatOverTime(r.T)], ['features', featureLayers], ['classifier', classifierLayers],
      ['mean', new MeanOverTime()]]));
    this.T = r.T;
    this.widths = Object.freeze(widths);
    this.inputShape = Object.freeze(inputShape);
    this.classes = classes;
    this.features = featureLayers;
    this.classifier = classifierLayers;
  }
}

/** A VGG-style spiking network for images of inputShape (default CIFAR-10's [3, 32, 32]); output the firing rate [N, classes]. */
export function spikingVgg(options: SpikingVggOptions = {}): SpikingVGG {
  return new SpikingVGG(options);
}
