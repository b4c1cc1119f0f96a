// Ready-made networks, each a plain description of ikun's layers (nn.Sequential runs them, fused where
// the layers allow).
export { CSNN, csnn } from './models/csnn.js';
export type { CSNNOptions } from './models/csnn.js';
