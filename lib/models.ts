// The paper's CSNN (ikun-paper.md, "The experiment"), with the PyTorch state-dict names of the reference
// model (conv_fc.N.*) so checkpoints move between ikun and PyTorch.
import { checkInteger, checkKnownKeys, checkOptionsObject, checkOneOf, describe, fail } from './errors.js';
import * as F from './functional.js';
import { BatchNorm2d, Conv2d, Flatten, IFNode, LIFNode, Linear, MaxPool2d, Module, Sequential } from './nn/index.js';
import { native } from './native.js';

type SpikingNode = IFNode | LIFNode;
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
  private saved: { outShape: readonly number[]; firstBlock: Tensor[]; fused?: [F.NeuronPoolContext, F.NeuronPoolContext] } | null = null;
  private firingRates: { names: string[]; values: Tensor } | null = null;

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
   * copies) and the first neuron layer reads it at every step; each neuron layer followed by max-pool
   * runs fused, keeping only the pooled spikes. The same numbers as the layers one by one on T copies
   * (tested), with a fraction of the memory traffic.
   */
  forward(x: Tensor): Tensor {
    this.checkImages(x, 'forward');
    this.releaseSaved();
    const T = this.T;
    const [conv1, bn1, neuron1, pool1, conv2, bn2, neuron2, pool2, flatten, fc1, neuron3, fc2, neuron4] =
      this.conv_fc.children() as [Conv2d, BatchNorm2d, SpikingNode, MaxPool2d, Conv2d, BatchNorm2d, SpikingNode, MaxPool2d,
        Flatten, Linear, SpikingNode, Linear, SpikingNode];
    const keep: Tensor[] = [];
    const hold = <V extends Tensor>(t: V): V => (keep.push(t), t);
    // Firing rates gather on the model's device and are read only when asked for (lastFiringRates).
    this.firingRates?.values.dispose();
    const rates = Tensor.zeros([4], 'float64', x.device);
    // Block 1 on the N static images; its neuron reads them at every step, fused with the pool.
    const a1 = hold(conv1.forward(x));
    const b1 = hold(bn1.forwardReplicated(a1, T));
    const block1 = F.neuronPoolForward(b1, neuron1.nativeParams(T, b1.size, true), pool1.kernelSize, pool1.stride,
      { accumulator: rates, slot: 0, scale: 1 / (T * b1.size) });
    const a2 = hold(conv2.forward(hold(block1.pooled)));
    const b2 = hold(bn2.forward(a2));
    const block2 = F.neuronPoolForward(b2, neuron2.nativeParams(T, b2.size / T, false), pool2.kernelSize, pool2.stride,
      { accumulator: rates, slot: 1, scale: 1 / b2.size });
    const z1 = hold(fc1.forward(hold(flatten.forward(hold(block2.pooled)))));
    const s1 = hold(neuron3.forward(z1));
    const s2 = hold(neuron4.forward(hold(fc2.forward(s1))));
    native.sum(s1.storage, rates.storage, 2, 1 / s1.size);
    native.sum(s2.storage, rates.storage, 3, 1 / s2.size);
    const rate = F.sumOverTime(s2, 1 / T);
    this.saved = { outShape: rate.shape, firstBlock: keep, fused: [block1.ctx, block2.ctx] };
    this.firingRates = { names: [neuron1, neuron2, neuron3, neuron4].map((m) => this.nameOf(m)), values: rates };
    return rate;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dRate = this.checkGradOut(gradOut, this.saved?.outShape, this.dtype);
    if (!this.saved!.fused) return fail('CSNN.backward: the last forward was forwardDual; use backwardDual');
    const [block1, block2] = this.saved!.fused;
    const layers = this.conv_fc.children();
    let g = F.repeatOverTime(dRate, this.T, 1 / this.T);
    // each gradient is ours alone once the layer below has consumed it (views pass through Flatten)
    const through = (next: Tensor | null): Tensor => {
      if (!next || next.storage !== g.storage) g.dispose();
      return next!;
    };
    for (const i of [12, 11, 10, 9, 8]) g = through(layers[i]!.backwardImpl(g, true));
    g = through(F.neuronPoolBackward(block2, g));
    for (const i of [5, 4]) g = through(layers[i]!.backwardImpl(g, true));
    g = through(F.neuronPoolBackward(block1, g)); // summed over the steps: the gradient of the static input
    g = through(layers[1]!.backwardImpl(g, true));
    return through(layers[0]!.backwardImpl(g, needInputGrad));
  }

  /** Mean firing rate of each spiking layer in the last forward (for metrics; on a GPU this waits for it). */
  lastFiringRates(): Record<string, number> {
    if (!this.firingRates) return {};
    const values = this.firingRates.values.toArray();
    return Object.fromEntries(this.firingRates.names.map((name, i) => [name, values[i]!]));
  }

  /** @internal the device tensor of the last forward's firing rates (in the order of spikingLayers()) */
  lastFiringRateTensor(): Tensor | null {
    return this.firingRates?.values ?? null;
  }

  private nameOf(m: Module): string {
    return this.namedModules().find(([, mod]) => mod === m)![0];
  }

  /** @internal forward-mode pass for Hessian-vector products (the image has no tangent). */
  override forwardDual(x: Tensor, xDot: Tensor | null): [Tensor, Tensor] {
    if (xDot) fail('CSNN.forwardDual: input tangents are not supported (the Hessian is over parameters)');
    this.checkImages(x, 'forwardDual');
    this.releaseSaved();
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

  private releaseSaved(): void {
    for (const t of this.saved?.firstBlock ?? []) t.dispose();
    for (const ctx of this.saved?.fused ?? []) ctx.argmax.dispose();
  }

  /** The spiking layers in order (their mean firing rates in the last forward: lastFiringRates()). */
  spikingLayers(): Array<[string, IFNode | LIFNode]> {
    return this.namedModules().filter((e): e is [string, IFNode | LIFNode] => e[1] instanceof IFNode || e[1] instanceof LIFNode);
  }

  protected override clearState(): void {
    this.releaseSaved();
    this.saved = null;
  }
}

export function csnn(options: CSNNOptions = {}): CSNN {
  return new CSNN(options);
}
