// The steps a Sequential runs: one layer as it is, one layer of the static prefix (run once on the N
// images a leading RepeatOverTime would copy T times), the first neuron reading that static input at
// every step, and a neuron fused with the max-pool after it. Every step has the forward, backward and
// Hessian-vector (dual) passes of the layers it stands for, with the same numbers.
import * as F from '../../functional.js';
import { IkunError, describe, fail } from '../../errors.js';
import { Tensor, formatShape } from '../../tensor.js';
import { BatchNorm2d, MaxPool2d } from '../layers.js';
import { outputWatcher, type Module } from '../module.js';
import type { BaseNode } from '../neuron.js';

export type Dual = [Tensor, Tensor];
export type DualGrad = [Tensor | null, Tensor | null];

/** Each step names its layers in the errors they throw (see inLayer). */
export interface Step {
  /** The layers it runs, as 'name (Type)', for error messages. */
  readonly label: string;
  forward(x: Tensor): Tensor;
  backward(g: Tensor, needInputGrad: boolean): Tensor | null;
  forwardDual(x: Tensor, xDot: Tensor | null): Dual;
  backwardDual(g: Tensor, gDot: Tensor, needInputGrad: boolean): DualGrad;
  /** Frees what only this step holds from its last forward. */
  release(): void;
}

/** A name and module of the flattened layer list; the name is the module's path below the Sequential. */
export interface Entry {
  name: string;
  module: Module;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function labelOf(e: Entry): string {
  return `${e.name} (${e.module.constructor.name})`;
}

/**
 * Runs fn and names the layer in any error it throws: "ikun: conv_fc.9 (Linear): Linear.forward: ...".
 * The original error stays reachable as `cause`.
 */
export function inLayer<R>(label: string, fn: () => R): R {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const message = `ikun: ${label}: ${error.message.replace(/^ikun: /, '')}`;
    const wrapped = error instanceof IkunError ? new IkunError(error.code, message, { ...error.details }) : new Error(message);
    wrapped.cause = error;
    throw wrapped;
  }
}

/** One layer, run as it is. */
export class LayerStep implements Step {
  readonly label: string;
  constructor(private readonly entry: Entry) {
    this.label = labelOf(entry);
  }
  forward(x: Tensor): Tensor {
    const y = inLayer(this.label, () => this.runForward(x));
    outputWatcher.current?.(this.entry.module, y);
    return y;
  }
  backward(g: Tensor, needInputGrad: boolean): Tensor | null {
    return inLayer(this.label, () => this.entry.module.backwardImpl(g, needInputGrad));
  }
  forwardDual(x: Tensor, xDot: Tensor | null): Dual {
    return inLayer(this.label, () => this.runForwardDual(x, xDot));
  }
  backwardDual(g: Tensor, gDot: Tensor, needInputGrad: boolean): DualGrad {
    return inLayer(this.label, () => this.entry.module.backwardDual(g, gDot, needInputGrad));
  }
  release(): void {}
  protected runForward(x: Tensor): Tensor {
    return this.entry.module.forward(x);
  }
  protected runForwardDual(x: Tensor, xDot: Tensor | null): Dual {
    return this.entry.module.forwardDual(x, xDot);
  }
}

/**
 * A stateless layer before the first neuron, on the static input [N, ...] that stands for T identical
 * steps. Conv2d, Linear and MaxPool2d act on each image alike, so once is enough and their backward,
 * given the gradient summed over the steps, accumulates what the T copies would. BatchNorm2d counts
 * the copies in its statistics (forwardReplicated).
 */
export class StaticLayerStep extends LayerStep {
  constructor(private readonly layer: Entry, private readonly steps: number) {
    super(layer);
  }
  protected override runForward(x: Tensor): Tensor {
    const m = this.layer.module;
    return m instanceof BatchNorm2d ? m.forwardReplicated(x, this.steps) : m.forward(x);
  }
  protected override runForwardDual(x: Tensor, xDot: Tensor | null): Dual {
    const m = this.layer.module;
    return m instanceof BatchNorm2d ? m.forwardReplicatedDual(x, xDot, this.steps) : m.forwardDual(x, xDot);
  }
}

/** The first neuron reads the static input at every one of T steps; its backward sums over the steps. */
export class StaticNeuronStep extends LayerStep {
  constructor(private readonly node: Entry & { module: BaseNode }, private readonly steps: number) {
    super(node);
  }
  protected override runForward(x: Tensor): Tensor {
    return this.node.module.forwardStatic(x, this.steps);
  }
  protected override runForwardDual(x: Tensor, xDot: Tensor | null): Dual {
    return this.node.module.forwardStaticDual(x, xDot, this.steps);
  }
}

/**
 * A neuron and the MaxPool2d after it in one kernel: only the pooled spikes are written, and backward
 * recomputes the membrane from the neuron's input (F.neuronPoolForward/Backward). Input [T, N, C, H, W],
 * or the static [N, C, H, W] read at each of `staticSteps` steps. With a BatchNorm2d before the neuron
 * (`bnEntry`), the BatchNorm only computes its statistics and the kernel normalises its input as it reads
 * it: the BatchNorm's output is never stored. Other inputs run the layers one after the other, which gives
 * the same numbers. Hessian-vector passes need the membrane: they run the layers one by one too.
 */
export class NeuronPoolStep implements Step {
  readonly label: string;
  private fused: { ctx: F.NeuronPoolContext; outShape: readonly number[] } | null = null;
  private bnOutput: Tensor | null = null; // the BatchNorm's output when the layers ran one after the other
  private poolInput: Tensor | null = null; // the neuron's spikes when the layers ran one after the other

  constructor(private readonly nodeEntry: Entry & { module: BaseNode }, private readonly poolEntry: Entry & { module: MaxPool2d },
    private readonly staticSteps: number | null, private readonly bnEntry: (Entry & { module: BatchNorm2d }) | null = null) {
    this.label = `${bnEntry ? `${labelOf(bnEntry)} + ` : ''}${labelOf(nodeEntry)} + ${labelOf(poolEntry)}`;
  }

  private get node(): BaseNode {
    return this.nodeEntry.module;
  }

  private get pool(): MaxPool2d {
    return this.poolEntry.module;
  }

  /** Whether x has the layout the fused kernel reads, with windows that fit (and channels the BatchNorm has). */
  private fusable(x: Tensor): boolean {
    if (!(x instanceof Tensor) || x.disposed || x.dtype === 'int32') return false;
    if (x.rank !== (this.staticSteps === null ? 5 : 4) || x.size === 0) return false;
    const [h, w] = x.shape.slice(-2) as [number, number];
    if (this.bnEntry && x.shape[x.rank - 3] !== this.bnEntry.module.numFeatures) return false;
    return h >= this.pool.kernelSize && w >= this.pool.kernelSize;
  }

  forward(x: Tensor): Tensor {
    this.release();
    if (!this.fusable(x)) return this.separately(x);
    const steps = this.staticSteps ?? x.shape[0]!;
    const width = this.staticSteps === null ? x.size / steps : x.size;
    const bn = this.bnEntry?.module ?? null;
    const stats = bn && inLayer(labelOf(this.bnEntry!), () => bn.forwardStatistics(x, this.staticSteps ?? 1));
    // the spike count stays on the device as partial counts (a GPU is not waited for); the firing rate adds them when asked
    const { pooled, spikeCounts, ctx } = inLayer(this.label, () =>
      F.neuronPoolForward(x, this.node.nativeParams(steps, width, this.staticSteps !== null), this.pool.kernelSize, this.pool.stride,
        bn && stats ? { gamma: bn.weight, beta: bn.bias, stats } : undefined));
    this.pool.resetState();
    this.node.recordFusedRun(spikeCounts, steps * width);
    this.fused = { ctx, outShape: pooled.shape };
    return pooled;
  }

  private separately(x: Tensor): Tensor {
    let input = x;
    if (this.bnEntry) {
      const bn = this.bnEntry.module;
      input = inLayer(labelOf(this.bnEntry), () => (this.staticSteps === null ? bn.forward(x) : bn.forwardReplicated(x, this.staticSteps)));
      this.bnOutput = input;
    }
    const spikes = inLayer(labelOf(this.nodeEntry), () =>
      (this.staticSteps === null ? this.node.forward(input) : this.node.forwardStatic(input, this.staticSteps)));
    this.poolInput = spikes;
    return inLayer(labelOf(this.poolEntry), () => this.pool.forward(spikes));
  }

  backward(g: Tensor, needInputGrad: boolean): Tensor | null {
    const fused = this.fused;
    const bn = this.bnEntry?.module ?? null;
    if (fused) {
      const dNeuronInput = inLayer(this.label, () => {
        if (!(g instanceof Tensor) || g.disposed || g.dtype !== fused.ctx.x.dtype || !sameShape(g.shape, fused.outShape))
          fail(`backward: the gradient must be a live ${fused.ctx.x.dtype} tensor of the output shape ${formatShape(fused.outShape)}, got ${describe(g)}${g instanceof Tensor ? ` ${formatShape(g.shape)}` : ''}`);
        return needInputGrad || bn ? F.neuronPoolBackward(fused.ctx, g) : null;
      });
      if (!bn || !dNeuronInput) return dNeuronInput;
      const dx = inLayer(labelOf(this.bnEntry!), () => bn.backwardImpl(dNeuronInput, needInputGrad));
      dNeuronInput.dispose();
      return dx;
    }
    const dSpikes = inLayer(labelOf(this.poolEntry), () => this.pool.backwardImpl(g, true))!;
    const dNeuronInput = inLayer(labelOf(this.nodeEntry), () => this.node.backwardImpl(dSpikes, needInputGrad || bn !== null));
    dSpikes.dispose();
    if (!bn || !dNeuronInput) return dNeuronInput;
    const dx = inLayer(labelOf(this.bnEntry!), () => bn.backwardImpl(dNeuronInput, needInputGrad));
    dNeuronInput.dispose();
    return dx;
  }

  forwardDual(x: Tensor, xDot: Tensor | null): Dual {
    this.release();
    let [input, inputDot] = [x, xDot];
    if (this.bnEntry) {
      const bn = this.bnEntry.module;
      [input, inputDot] = inLayer(labelOf(this.bnEntry), () =>
        (this.staticSteps === null ? bn.forwardDual(x, xDot) : bn.forwardReplicatedDual(x, xDot, this.staticSteps)));
      this.bnOutput = input;
    }
    const [spikes, spikesDot] = inLayer(labelOf(this.nodeEntry), () =>
      (this.staticSteps === null ? this.node.forwardDual(input, inputDot) : this.node.forwardStaticDual(input, inputDot, this.staticSteps!)));
    if (this.bnEntry) inputDot?.dispose(); // the neuron keeps its own tangent state (hDot), not its input's tangent
    this.poolInput = spikes;
    const out = inLayer(labelOf(this.poolEntry), () => this.pool.forwardDual(spikes, spikesDot));
    spikesDot.dispose(); // max-pool's tangent is a gather: it keeps no reference to its input's tangent
    return out;
  }

  backwardDual(g: Tensor, gDot: Tensor, needInputGrad: boolean): DualGrad {
    const bn = this.bnEntry?.module ?? null;
    const [dSpikes, dSpikesDot] = inLayer(labelOf(this.poolEntry), () => this.pool.backwardDual(g, gDot, true)) as Dual;
    const out = inLayer(labelOf(this.nodeEntry), () => this.node.backwardDual(dSpikes, dSpikesDot, needInputGrad || bn !== null));
    dSpikes.dispose();
    dSpikesDot.dispose();
    if (!bn || !out[0] || !out[1]) return out;
    const dx = inLayer(labelOf(this.bnEntry!), () => bn.backwardDual(out[0]!, out[1]!, needInputGrad));
    out[0].dispose();
    out[1].dispose();
    return dx;
  }

  release(): void {
    this.fused = null;
    this.poolInput?.dispose();
    this.poolInput = null;
    this.bnOutput?.dispose();
    this.bnOutput = null;
  }
}
