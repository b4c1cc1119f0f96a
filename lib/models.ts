// The paper's CSNN (ikun-paper.md, "The experiment"), with the PyTorch state-dict names of the reference
// model (conv_fc.N.*) so checkpoints move between ikun and PyTorch.
import { checkInteger, checkKnownKeys, checkOptionsObject, checkOneOf, describe, fail } from './errors.js';
import * as F from './functional.js';
import { BatchNorm2d, Conv2d, Flatten, IFNode, LIFNode, Linear, MaxPool2d, Module, Sequential } from './nn/index.js';
import { Surrogate, atan } from './surrogate.js';
import { Tensor, checkDType, checkDevice, formatShape, type DType, type Device } from './tensor.js';

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

/**
 * Conv(1,c,3,p1)-BN-IF-Pool2, Conv(c,c,3,p1)-BN-IF-Pool2, Flatten, Linear(49c,16c)-IF, Linear(16c,10)-IF,
 * no biases. Input [N, 1, 28, 28] repeated over T; output the firing rate [N, 10].
 */
export class CSNN extends Module {
  readonly channels: number;
  readonly T: number;
  readonly dtype: DType;
  readonly device: Device;
  readonly conv_fc: Sequential;
  private saved: { outShape: readonly number[]; firstBlock: Tensor[] } | null = null;

  constructor(options: CSNNOptions = {}) {
    super();
    const o = checkOptionsObject('models.csnn options', options);
    checkKnownKeys('models.csnn options', o, ['channels', 'T', 'neuron', 'surrogate', 'dtype', 'device']);
    this.channels = o.channels === undefined ? 128 : checkInteger('models.csnn: channels', o.channels, 1);
    this.T = o.T === undefined ? 4 : checkInteger('models.csnn: T', o.T, 1);
    const neuron = o.neuron === undefined ? 'if' : checkOneOf('models.csnn: neuron', o.neuron, ['if', 'lif'] as const);
    if (o.surrogate !== undefined && !(o.surrogate instanceof Surrogate))
      fail(`models.csnn: surrogate must be made by ikun's surrogate module (e.g. surrogate.atan({ alpha: 2 })), got ${describe(o.surrogate)}`);
    const surrogate = (o.surrogate as Surrogate | undefined) ?? atan({ alpha: 2 });
    this.dtype = o.dtype === undefined ? 'float32' : checkDType('models.csnn: dtype', o.dtype);
    this.device = o.device === undefined ? 'cpu' : checkDevice('models.csnn: device', o.device);
    const c = this.channels;
    const f = { dtype: this.dtype, device: this.device };
    const spiking = (): Module => (neuron === 'if' ? new IFNode({ surrogate }) : new LIFNode({ surrogate }));
    this.conv_fc = this.registerModule('conv_fc', new Sequential(
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
    ));
  }

  /**
   * x: [N, 1, 28, 28] static images; returns the firing rate [N, 10]. Starts from reset membranes.
   * The input is the same at every step, so the first Conv-BN block runs once on N images (not T*N
   * copies) and the first neuron layer reads it at every step: the same numbers, a quarter of the work.
   */
  forward(x: Tensor): Tensor {
    this.checkImages(x, 'forward');
    this.releaseFirstBlock();
    const [conv1, bn1, neuron1] = [0, 1, 2].map((i) => this.conv_fc.at(i)) as [Conv2d, BatchNorm2d, IFNode | LIFNode];
    const convOut = conv1.forward(x);
    const bnOut = bn1.forwardReplicated(convOut, this.T);
    const spikes1 = neuron1.forwardStatic(bnOut, this.T);
    const spikes = this.conv_fc.forwardFrom(spikes1, 3);
    const rate = F.sumOverTime(spikes, 1 / this.T);
    this.saved = { outShape: rate.shape, firstBlock: [convOut, bnOut, spikes1] };
    return rate;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dRate = this.checkGradOut(gradOut, this.saved?.outShape, this.dtype);
    const dSpikes = F.repeatOverTime(dRate, this.T, 1 / this.T);
    const dSpikes1 = this.conv_fc.backwardTo(dSpikes, 3, true)!;
    dSpikes.dispose();
    const dBnOut = this.conv_fc.at(2).backwardImpl(dSpikes1, true)!; // summed over T
    dSpikes1.dispose();
    const dConvOut = this.conv_fc.at(1).backwardImpl(dBnOut, true)!;
    dBnOut.dispose();
    const dx = this.conv_fc.at(0).backwardImpl(dConvOut, needInputGrad);
    dConvOut.dispose();
    return dx;
  }

  /** @internal forward-mode pass for Hessian-vector products (the image has no tangent). */
  override forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    if (xDot) fail('CSNN.forwardDual: input tangents are not supported (the Hessian is over parameters)');
    this.checkImages(x, 'forwardDual');
    this.releaseFirstBlock();
    const [conv1, bn1, neuron1] = [0, 1, 2].map((i) => this.conv_fc.at(i)) as [Conv2d, BatchNorm2d, IFNode | LIFNode];
    const [convOut, convDot] = conv1.forwardDual(x, null);
    const [bnOut, bnDot] = bn1.forwardReplicatedDual(convOut, convDot, this.T);
    const [spikes1, spikes1Dot] = neuron1.forwardStaticDual(bnOut, bnDot, this.T);
    const [spikes, spikesDot] = this.conv_fc.forwardDualFrom(spikes1, spikes1Dot, 3);
    const out = F.sumOverTime(spikes, 1 / this.T), outDot = F.sumOverTime(spikesDot, 1 / this.T);
    this.saved = { outShape: out.shape, firstBlock: [convOut, convDot, bnOut, bnDot, spikes1, spikes1Dot] };
    return [out, outDot];
  }

  override backwardDual(dRate: Tensor, dRateDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    this.checkGradOut(dRate, this.saved?.outShape, this.dtype);
    let [g, gDot] = [F.repeatOverTime(dRate, this.T, 1 / this.T), F.repeatOverTime(dRateDot, this.T, 1 / this.T)];
    // each pair of gradients is ours alone once the next layer down has consumed it
    const step = (next: [Tensor | null, Tensor | null]): [Tensor, Tensor] => {
      g.dispose();
      gDot.dispose();
      return next as [Tensor, Tensor];
    };
    [g, gDot] = step(this.conv_fc.backwardDualTo(g, gDot, 3, true));
    for (const i of [2, 1]) [g, gDot] = step(this.conv_fc.at(i).backwardDual(g, gDot, true));
    return step(this.conv_fc.at(0).backwardDual(g, gDot, needInputGrad));
  }

  private checkImages(x: Tensor, what: string): void {
    if (!(x instanceof Tensor)) fail(`CSNN.${what}: input must be a Tensor [N, 1, 28, 28], got ${describe(x)}`);
    x.checkAlive(`CSNN.${what}`);
    if (x.rank !== 4 || x.shape[1] !== 1 || x.shape[2] !== 28 || x.shape[3] !== 28)
      fail(`CSNN.${what}: input must have shape [N, 1, 28, 28], got ${formatShape(x.shape)}`);
    if (x.dtype !== this.dtype) fail(`CSNN.${what}: input dtype is ${x.dtype} but the model is ${this.dtype}`);
    if (x.shape[0] === 0) fail(`CSNN.${what}: the batch is empty`);
  }

  private releaseFirstBlock(): void {
    for (const t of this.saved?.firstBlock ?? []) t.dispose();
  }

  /** The spiking layers in order, with the spikes of the last forward (for firing-rate metrics). */
  spikingLayers(): Array<[string, IFNode | LIFNode]> {
    return this.namedModules().filter((e): e is [string, IFNode | LIFNode] => e[1] instanceof IFNode || e[1] instanceof LIFNode);
  }

  protected override clearState(): void {
    this.releaseFirstBlock();
    this.saved = null;
  }
}

export function csnn(options: CSNNOptions = {}): CSNN {
  return new CSNN(options);
}
