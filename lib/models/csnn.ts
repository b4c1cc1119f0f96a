// The paper's CSNN (ikun-paper.md, "The experiment"), with the PyTorch state-dict names of the reference
// model (conv_fc.N.*) so checkpoints move between ikun and PyTorch. A description of layers only: the
// static image is repeated over T, conv_fc runs, the output is the mean over T; nn.Sequential runs it
// with the fused kernels (first block once on the static images, each neuron fused with its max-pool).
import { checkInteger, checkKnownKeys, checkOptionsObject, checkOneOf, describe, fail } from '../errors.js';
import { BatchNorm2d, Conv2d, Flatten, IFNode, LIFNode, Linear, MaxPool2d, MeanOverTime, RepeatOverTime, Sequential, type Module } from '../nn/index.js';
import { Surrogate, atan } from '../surrogate.js';
import { checkDType, checkDevice, type DType, type Device } from '../tensor.js';

export interface CSNNOptions {
  /** Channels c of both convolutions (paper: 128). */
  channels?: number;
  /** Time steps (paper: 4). */
  T?: number;
  neuron?: 'if' | 'lif';
  surrogate?: Surrogate;
  dtype?: DType;
  device?: Device;
}

interface Resolved {
  channels: number;
  T: number;
  neuron: 'if' | 'lif';
  surrogate: Surrogate;
  dtype: DType;
  device: Device;
}

function resolve(options: CSNNOptions): Resolved {
  const o = checkOptionsObject('models.csnn options', options);
  checkKnownKeys('models.csnn options', o, ['channels', 'T', 'neuron', 'surrogate', 'dtype', 'device']);
  if (o.surrogate !== undefined && !(o.surrogate instanceof Surrogate))
    fail(`models.csnn: surrogate must be made by ikun's surrogate module (e.g. surrogate.atan({ alpha: 2 })), got ${describe(o.surrogate)}`);
  return {
    channels: o.channels === undefined ? 128 : checkInteger('models.csnn: channels', o.channels, 1),
    T: o.T === undefined ? 4 : checkInteger('models.csnn: T', o.T, 1),
    neuron: o.neuron === undefined ? 'if' : checkOneOf('models.csnn: neuron', o.neuron, ['if', 'lif'] as const),
    surrogate: (o.surrogate as Surrogate | undefined) ?? atan({ alpha: 2 }),
    dtype: o.dtype === undefined ? 'float32' : checkDType('models.csnn: dtype', o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice('models.csnn: device', o.device),
  };
}

/** The 13 layers of the reference model's conv_fc. */
function convFc(r: Resolved): Sequential {
  const c = r.channels;
  const f = { dtype: r.dtype, device: r.device };
  const spiking = (): Module => (r.neuron === 'if' ? new IFNode({ surrogate: r.surrogate }) : new LIFNode({ surrogate: r.surrogate }));
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
