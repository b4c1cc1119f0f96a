// Ready-made networks, each a plain description of ikun's layers (nn.Sequential runs them, fused where
// the layers allow).
export { CSNN, csnn } from './models/csnn.js';
export type { CSNNOptions } from './models/csnn.js';
export { SpikingVGG, spikingVgg, VGG11_WIDTHS } from './models/spiking-vgg.js';
export type { SpikingVggOptions, VggLayer } from './models/spiking-vgg.js';
export type { SpikingModelOptions } from './models/common.js';
