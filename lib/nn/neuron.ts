// Multi-step IF and LIF neurons over [T, N, ...]. Every forward starts from the reset membrane (the whole
// sequence is one call), as SpikingJelly's multi-step mode after reset(). Equations: ikun-paper.md.
import * as F from '../functional.js';
import { native, type NeuronParamsNative } from '../native.js';
import { checkBoolean, checkFiniteNumber, checkInteger, describe } from '../errors.js';
import { Surrogate, atan } from '../surrogate.js';
import { Tensor } from '../tensor.js';
import { Module, type FiringRateSource } from './module.js';
import { settings } from './format.js';
import { fail, formatShapeOf, moduleOptions } from './util.js';

export interface NeuronOptions {
  /** Firing threshold (default 1). */
  vThreshold?: number;
  /** Reset potential (default 0); null for soft reset (subtract the threshold). */
  vReset?: number | null;
  /** Surrogate gradient (default atan({alpha: 2})). */
  surrogate?: Surrogate;
  /** Treat the reset as a constant in backward (default false). */
  detachReset?: boolean;
}

export interface LIFNodeOptions extends NeuronOptions {
  /** Membrane time constant (default 2, at least 1). */
  tau?: number;
  /** h = v + (x - (v - vReset)) / tau when true (default), else h = v - (v - vReset) / tau + x. */
  decayInput?: boolean;
}

/** The multi-step spiking neurons (IFNode, LIFNode); fused kernels run any of them. */
export abstract class BaseNode extends Module {
  readonly vThreshold: number;
  readonly vReset: number | null;
  readonly surrogate: Surrogate;
  readonly detachReset: boolean;
  private saved: { h: Tensor; outShape: readonly number[]; staticInput: boolean } | null = null;
  private savedDual: { hDot: Tensor } | null = null;
  /** Spikes of the last forward, for firing-rate metrics. */
  lastSpikes: Tensor | null = null;
  /** Spike count of the last forward when a fused kernel ran this neuron (its spikes never exist whole). */
  // A fused kernel's spike count: float64 partial counts on the layer's device that add up to it, read only when asked for.
  private spikeTally: { counts: Tensor; neurons: number } | null = null;

  protected constructor(name: string, o: Record<string, unknown>) {
    super();
    this.vThreshold = o.vThreshold === undefined ? 1 : checkFiniteNumber(`${name}: vThreshold`, o.vThreshold);
    this.vReset = o.vReset === undefined ? 0 : o.vReset === null ? null : checkFiniteNumber(`${name}: vReset`, o.vReset);
    if (o.surrogate !== undefined && !(o.surrogate instanceof Surrogate))
      fail(`${name}: surrogate must be made by ikun's surrogate module (e.g. surrogate.atan({ alpha: 2 })), got ${describe(o.surrogate)}`);
    this.surrogate = (o.surrogate as Surrogate | undefined) ?? atan();
    this.detachReset = o.detachReset === undefined ? false : checkBoolean(`${name}: detachReset`, o.detachReset);
  }

  /** @internal */
  protected abstract kernelParams(steps: number, width: number, staticInput: boolean): NeuronParamsNative;

  /** @internal the kernel parameters, for fused paths that run this neuron inside another op */
  nativeParams(steps: number, width: number, staticInput: boolean): NeuronParamsNative {
    return this.kernelParams(steps, width, staticInput);
  }

  override get emitsSpikes(): boolean {
    return true;
  }

  override extraRepr(): string {
    return settings({ vThreshold: this.vThreshold, vReset: this.vReset, detachReset: this.detachReset, ...this.ownSettings(),
      surrogate: this.surrogate });
  }

  /** @internal settings of the neuron kind (LIF: tau, decayInput) */
  protected ownSettings(): Record<string, unknown> {
    return {};
  }

  /**
   * @internal a fused kernel ran this neuron: forget the state of any earlier unfused forward and keep
   * the spike count (partial counts that add up to it) over neurons x steps for the firing rate.
   */
  recordFusedRun(spikeCounts: Tensor, neuronSteps: number): void {
    this.clearState();
    this.spikeTally = { counts: spikeCounts, neurons: neuronSteps };
  }

  /** @internal (on a GPU this waits for the layer's kernels) */
  override firingRate(): number | null {
    const source = this.firingRateSource();
    if (!source) return null;
    return source.neuronSteps === 0 ? 0 : native.sum(source.spikes.storage) / source.neuronSteps;
  }

  /** @internal the spike count of a fused run, or the spikes of an unfused one; null when the layer has not run */
  override firingRateSource(): FiringRateSource | null {
    if (this.spikeTally) return { spikes: this.spikeTally.counts, neuronSteps: this.spikeTally.neurons };
    const spikes = this.lastSpikes && !this.lastSpikes.disposed ? this.lastSpikes : null;
    return spikes && { spikes, neuronSteps: spikes.size };
  }

  /** @internal */
  protected baseParams(steps: number, width: number, staticInput: boolean): Omit<NeuronParamsNative, 'kind' | 'tau' | 'decayInput'> {
    return {
      vThreshold: this.vThreshold, vReset: this.vReset, detachReset: this.detachReset,
      surrogate: this.surrogate.code, alpha: this.surrogate.alpha, spiking: this.surrogate.spiking, staticInput, steps, width,
    };
  }

  forward(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) fail(`${this.typeName}.forward: input must be a Tensor, got ${describe(input)}`);
    input.checkAlive(`${this.typeName}.forward`);
    if (input.rank < 2)
      fail(`${this.typeName}.forward: input must be multi-step [T, N, ...] (rank >= 2), got shape ${formatShapeOf(input.shape)}`);
    return this.run(input, input.shape[0]!, false);
  }

  /**
   * The same input x ([N, ...]) at each of `steps` steps, without materialising the repeat; returns
   * spikes [steps, N, ...]. backward then returns the input gradient summed over the steps ([N, ...]).
   */
  forwardStatic(input: Tensor, steps: number): Tensor {
    if (!(input instanceof Tensor)) fail(`${this.typeName}.forwardStatic: input must be a Tensor, got ${describe(input)}`);
    input.checkAlive(`${this.typeName}.forwardStatic`);
    return this.run(input, checkInteger(`${this.typeName}.forwardStatic: steps`, steps, 1), true);
  }

  private run(input: Tensor, steps: number, staticInput: boolean): Tensor {
    const width = staticInput ? input.size : input.size / Math.max(1, steps);
    const { spikes, h } = F.neuronForward(input, this.kernelParams(steps, width, staticInput));
    this.saved?.h.dispose(); // ours alone: give the memory back now rather than at the next GC
    this.savedDual?.hDot.dispose(); // forwardDual sets it again after this
    this.savedDual = null;
    this.saved = { h, outShape: spikes.shape, staticInput };
    this.lastSpikes = spikes;
    this.spikeTally?.counts.dispose();
    this.spikeTally = null;
    return spikes;
  }

  backwardImpl(gradOut: Tensor, needInputGrad: boolean): Tensor | null {
    const dy = this.checkGradOut(gradOut, this.saved?.outShape, this.saved?.h.dtype ?? 'float32');
    if (!needInputGrad) return null;
    const { h, staticInput } = this.saved!;
    const steps = h.shape[0]!;
    return F.neuronBackward(h, dy, this.kernelParams(steps, h.size / Math.max(1, steps), staticInput));
  }

  override forwardDual(input: Tensor, inputDot: Tensor | null): [Tensor, Tensor] {
    const spikes = this.forward(input);
    return [spikes, this.tangentOf(input, inputDot)];
  }

  /** @internal forwardDual for a static input read at every step (see forwardStatic). */
  forwardStaticDual(input: Tensor, inputDot: Tensor | null, steps: number): [Tensor, Tensor] {
    const spikes = this.forwardStatic(input, steps);
    return [spikes, this.tangentOf(input, inputDot)];
  }

  private tangentOf(input: Tensor, inputDot: Tensor | null): Tensor {
    const { h, staticInput } = this.saved!;
    const steps = h.shape[0]!;
    const xDot = inputDot ?? Tensor.zeros(input.shape, input.dtype, input.device);
    const { hDot, sDot } = F.neuronForwardTangent(h, xDot, this.kernelParams(steps, h.size / steps, staticInput));
    this.savedDual?.hDot.dispose();
    this.savedDual = { hDot };
    return sDot;
  }

  override backwardDual(dy: Tensor, dyDot: Tensor, needInputGrad: boolean): [Tensor | null, Tensor | null] {
    this.checkGradOut(dy, this.saved?.outShape, this.saved?.h.dtype ?? 'float32');
    if (!needInputGrad) return [null, null];
    const { h, staticInput } = this.saved!;
    const steps = h.shape[0]!;
    return F.neuronBackwardTangent(h, this.savedDual!.hDot, dy, dyDot, this.kernelParams(steps, h.size / steps, staticInput));
  }

  protected override clearState(): void {
    this.savedDual?.hDot.dispose();
    this.savedDual = null;
    this.saved?.h.dispose();
    this.saved = null;
    this.lastSpikes = null;
    this.spikeTally?.counts.dispose();
    this.spikeTally = null;
  }
}

/** Integrate-and-fire: h[t] = v[t-1] + x[t]. */
export class IFNode extends BaseNode {
  constructor(options: NeuronOptions = {}) {
    super('IFNode', moduleOptions('IFNode', options, ['vThreshold', 'vReset', 'surrogate', 'detachReset']));
  }

  protected kernelParams(steps: number, width: number, staticInput: boolean): NeuronParamsNative {
    return { ...this.baseParams(steps, width, staticInput), kind: 0, tau: 1, decayInput: true };
  }
}

/** Leaky integrate-and-fire (SpikingJelly form). */
export class LIFNode extends BaseNode {
  readonly tau: number;
  readonly decayInput: boolean;

  constructor(options: LIFNodeOptions = {}) {
    const o = moduleOptions('LIFNode', options, ['vThreshold', 'vReset', 'surrogate', 'detachReset', 'tau', 'decayInput']);
    super('LIFNode', o);
    this.tau = o.tau === undefined ? 2 : checkFiniteNumber('LIFNode: tau', o.tau);
    if (this.tau < 1) fail(`LIFNode: tau must be >= 1 (a decay factor 1/tau in (0, 1]), got ${this.tau}`);
    this.decayInput = o.decayInput === undefined ? true : checkBoolean('LIFNode: decayInput', o.decayInput);
  }

  protected kernelParams(steps: number, width: number, staticInput: boolean): NeuronParamsNative {
    return { ...this.baseParams(steps, width, staticInput), kind: 1, tau: this.tau, decayInput: this.decayInput };
  }

  protected override ownSettings(): Record<string, unknown> {
    return { tau: this.tau, decayInput: this.decayInput };
  }
}
