// The paper's CSNN (ikun-paper.md, "The experiment"), with the PyTorch state-dict names of the reference
// model (conv_fc.N.*) so checkpoints move between ikun and PyTorch. A description of layers only: the
// static image is repeated over T, conv_fc runs, the output is the mean over T; nn.Sequential runs it
// with the fused kernels (first block once on the static images, each neuron fused with its max-pool).
import { checkInteger, checkKnownKeys, checkOptionsObject } from '../errors.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, MeanOverTime, RepeatOverTime, Sequential, type Module } from '../nn/index.js';
import type { DType, Device } from '../tensor.js';
import { SPIKING_MODEL_KEYS, resolveSpiking, type ResolvedSpiking, type SpikingModelOptions } from './common.js';

export interface CSNNOptions extends SpikingModelOptions {
  /** Channels c of both convolutions (paper: 128). */
  channels?: number;
}

interface Resolved extends ResolvedSpiking {
  channels: number;
}

function resolve(options: CSNNOptions): Resolved {
  const o = checkOptionsObject('models.csnn options', options);
  checkKnownKeys('models.csnn options', o, ['channels', ...SPIKING_MODEL_KEYS]);
  return { ...resolveSpiking('models.csnn', o), channels: o.channels === undefined ? 128 : checkInteger('models.csnn: channels', o.channels, 1) };
}

/** The 13 layers of the reference model's conv_fc. */
function convFc(r: Resolved): Sequential {
  const c = r.channels;
  const f = { dtype: r.dtype, device: r.device };
  const spiking = r.node;
  return new Sequential(
    new Conv2d(1, c, 3, { padding: 1, bias: false, ...f }),
    new BatchNorm2d(c, f),
    spiking(),
    new MaxPool2d(2),
    new Conv2d(c, c, 3, { padding: 1, bias: false, ...f }),
    new BatchNorm2d(c, f),
    spiking(),
    new MaxPool2d(2),
    new Flatten({ startDim: 2 }),
    new Linear(c * 7 * 7, c * 4 * 4, { bias: false, ...f }),
    spiking(),
    new Linear(c * 4 * 4, 10, { bias: false, ...f }),
    spiking(),
  );
}

/**
 * Conv(1,c,3,p1)-BN-IF-Pool2, Conv(c,c,3,p1)-BN-IF-Pool2, Flatten, Linear(49c,16c)-IF, Linear(16c,10)-IF,
 * no biases. Input [N, 1, 28, 28] repeated over T; output the firing rate [N, 10].
 */
export class CSNN extends Sequential {
  readonly channels: number;
  readonly T: number;
  readonly dtype: DType;
  readonly device: Device;
  /** The reference model's layers: conv_fc.0 (first conv) ... conv_fc.12 (last neuron). */
  readonly conv_fc: Sequential;

  constructor(options: CSNNOptions = {}) {
    const r = resolve(options);
    const body = convFc(r);
    super(new Map<string, Module>([['repeat', new RepeatOverTime(r.T)], ['conv_fc', body], ['mean', new MeanOverTime()]]));
    this.channels = r.channels;
    this.T = r.T;
    this.dtype = r.dtype;
    this.device = r.device;
    this.conv_fc = body;
  }
}

export function csnn(options: CSNNOptions = {}): CSNN {
  return new CSNN(options);
}
