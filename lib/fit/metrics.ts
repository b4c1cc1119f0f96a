// Per-epoch metrics of the training loop, gathered on the model's device and read once at the epoch's end:
// on a GPU no step waits for the device to report its loss, accuracy, gradient norm or firing rates
// (the kernels add them into float64 tensors there). A step's own loss is read only when a hook asks for
// it (stepLoss()).
//
// Each step's numbers are first added into a step tensor of the same layout as the epoch's totals and then
// committed (added into the totals) once the step is known to be good, so that a batch skipped for a
// non-finite loss or gradient leaves the totals as they were. 0 + x is x, so staging adds nothing to the
// roundings: the totals are the same numbers as when the kernels added into them directly.
//
// Non-finite values propagate through sums, so a total that is not finite says that some step was not
// either. With `trackFiniteness`, the accumulator also counts on the device, per total, the steps after
// which it was still finite (native addToTotals, in the same launch as the commit), which gives the
// first bad step without reading anything per step.
import { native } from '../native.js';
import type { Module } from '../nn/module.js';
import type { AccumulatingLoss, LossResult } from '../loss.js';
import { accumulateGradNorm, type ParameterList } from '../optim.js';
import { Tensor, type Device } from '../tensor.js';

/** What one epoch (or one test pass) amounted to. */
export interface EpochTotals {
  samples: number;
  steps: number;
  /** Mean loss per sample. */
  loss: number;
  /** Correct predictions / samples. */
  accuracy: number;
  /** Mean global gradient L2 norm per step (NaN when no gradient was added: a test pass). */
  gradNorm: number;
  /** Mean firing rate per spiking layer over the steps that reported it. */
  firingRates: Record<string, number>;
  /** Batches skipped for a non-finite loss or gradient (onNan 'skip'). */
  skipped: number;
  /** Which device total became non-finite first (null when they stayed finite). */
  firstNonFinite: NonFiniteTotal | null;
  /** The raw state, to continue the epoch later (a checkpoint in the middle of an epoch). */
  progress: EpochProgress;
}

/** A total that became non-finite: which, how, and at which step of the epoch. */
export interface NonFiniteTotal {
  total: 'loss' | 'gradient norm';
  kind: 'NaN' | 'infinite';
  /** The 1-based step of the epoch whose numbers made it non-finite (null when the steps were not tracked). */
  step: number | null;
}

/**
 * The accumulator's state as plain numbers, to store in a checkpoint and continue the epoch from: the
 * device totals, the host counters and the seconds trained so far.
 */
export interface EpochProgress {
  samples: number;
  steps: number;
  gradNorms: number;
  hostLoss: number;
  skipped: number;
  rateCounts: number[];
  values: number[];
  /** Per total, the steps after which it was still finite (null when not tracked). */
  finiteSteps: number[] | null;
  trainSeconds: number;
}

/** The number of samples whose largest output is their label (first maximum on ties), as a 0-dim int32 tensor. */
export function correctCount(output: Tensor, labels: Tensor): Tensor {
  const predicted = output.argmax(1);
  const hits = predicted.eq(labels);
  const count = hits.sum();
  predicted.dispose();
  hits.dispose();
  return count;
}

// Slots of the device tensors; the firing rates of the spiking layers follow.
const LOSS = 0, CORRECT = 1, GRAD_NORM = 2, RATES = 3;

/** A step's loss and gradient norm as the host sees them (after one read of the device). */
export interface StepHealth {
  /** The batch's summed loss (NaN or infinite when the loss was). */
  loss: number;
  /** The global gradient L2 norm (0 when no gradient was added). */
  gradNorm: number;
}

export interface AccumulatorOptions {
  /** Count on the device how long each total stayed finite (the first bad step without per-step reads). */
  trackFiniteness?: boolean;
  /** Continue from a saved state (its layout must be this accumulator's). */
  progress?: EpochProgress | null;
}

export class EpochAccumulator {
  private samples = 0;
  private steps = 0;
  private gradNorms = 0;
  private hostLoss = 0; // the part of the loss sum a custom loss function returned as numbers
  private skipped = 0;
  private lastHostLoss: number | null = null;
  private readonly rateCounts: Float64Array;
  private readonly values: Tensor;
  private readonly stepValues: Tensor;
  private stepBatchSize = 0; // of the staged step's device loss, for stepLoss()
  private readonly finiteSteps: Tensor | null;
  // What the step being staged will add to the host counters when it is committed.
  private pendingHostLoss = 0;
  private pendingGradNorm = false;
  private readonly pendingRates: boolean[];
  private disposed = false;
  /** Seconds of training before this accumulator was made (a resumed epoch). */
  readonly trainSecondsBefore: number;

  /** layers: the spiking layers whose firing rates are averaged (spikingLayers() order); device: the model's. */
  constructor(private readonly layers: readonly string[], device: Device, options: AccumulatorOptions = {}) {
    const size = RATES + layers.length;
    this.rateCounts = new Float64Array(layers.length);
    this.pendingRates = layers.map(() => false);
    this.values = Tensor.zeros([size], 'float64', device);
    this.stepValues = Tensor.zeros([size], 'float64', device);
    this.finiteSteps = options.trackFiniteness ? Tensor.zeros([size], 'float64', device) : null;
    const p = options.progress ?? null;
    this.trainSecondsBefore = p?.trainSeconds ?? 0;
    if (p) {
      if (p.values.length !== size || p.rateCounts.length !== layers.length)
        throw new Error(`ikun: the saved epoch progress has ${p.values.length} totals for ${p.rateCounts.length} spiking layers; this model needs ${size} for ${layers.length}`);
      this.samples = p.samples;
      this.steps = p.steps;
      this.gradNorms = p.gradNorms;
      this.hostLoss = p.hostLoss;
      this.skipped = p.skipped;
      this.rateCounts.set(p.rateCounts);
      this.values.copyFrom(Float64Array.from(p.values));
      if (this.finiteSteps) this.finiteSteps.copyFrom(Float64Array.from(p.finiteSteps ?? p.values.map(() => p.steps)));
    }
  }

  /** Starts a step: clears what the previous one staged. */
  beginStep(): void {
    this.stepValues.fill(0);
    this.pendingHostLoss = 0;
    this.pendingGradNorm = false;
    this.pendingRates.fill(false);
    this.lastHostLoss = null;
  }

  /**
   * The loss of a batch of `batchSize` (its mean; the epoch mean weighs every sample alike) and its
   * gradient: a built-in loss stays on the device, a custom function's number is added on the host.
   */
  addLoss(output: Tensor, labels: Tensor, hostLabels: Int32Array, loss: (o: Tensor, l: Int32Array) => LossResult,
    deviceLoss: AccumulatingLoss | null): Tensor {
    const batchSize = labels.size;
    if (!deviceLoss) {
      const r = loss(output, hostLabels);
      this.pendingHostLoss = r.loss * batchSize;
      this.lastHostLoss = r.loss;
      return r.grad;
    }
    // straight into the staged sum (0 + loss * batchSize, the bits a copy through a tensor of its own gave)
    this.stepBatchSize = batchSize;
    return deviceLoss(output, labels, { accumulator: this.stepValues, slot: LOSS, scale: batchSize });
  }

  /**
   * The mean loss of the last batch (waits for the device: only for hooks that ask): the staged sum over
   * the batch size, the kernel's mean itself for a power-of-two batch, within a rounding otherwise.
   */
  stepLoss(): number {
    return this.lastHostLoss ?? this.stepValues.toArray()[LOSS]! / this.stepBatchSize;
  }

  /** Correct predictions of the batch (the first maximum of each row against its label). */
  addCorrect(output: Tensor, labels: Tensor): void {
    native.countCorrect(output.storage, labels.storage, [...output.shape], this.stepValues.storage, CORRECT, 1);
  }

  addGradNorm(params: ParameterList): void {
    accumulateGradNorm(params, { accumulator: this.stepValues, slot: GRAD_NORM, scale: 1 });
    this.pendingGradNorm = true;
  }

  addFiringRates(model: Module): void {
    if (this.layers.length === 0) return;
    model.accumulateFiringRates(this.stepValues, RATES).forEach((reported, i) => {
      if (reported && i < this.layers.length) this.pendingRates[i] = true;
    });
  }

  /**
   * The staged step's summed loss and gradient norm: one read of the device (on a GPU it waits for the
   * step's kernels), so the loop asks only when it must decide per step.
   */
  stepHealth(): StepHealth {
    const v = this.stepValues.toArray();
    return { loss: v[LOSS]! + this.pendingHostLoss, gradNorm: v[GRAD_NORM]! };
  }

  /** The staged step's loss computed on the host (a custom loss function's; 0 for a built-in loss): no device read. */
  stagedHostLoss(): number {
    return this.pendingHostLoss;
  }

  /** Adds the staged step into the totals: a step of `size` samples. */
  commitStep(size: number): void {
    native.addToTotals(this.stepValues.storage, this.values.storage, this.finiteSteps?.storage ?? null);
    this.hostLoss += this.pendingHostLoss;
    if (this.pendingGradNorm) this.gradNorms += 1;
    this.pendingRates.forEach((reported, i) => {
      if (reported) this.rateCounts[i]! += 1;
    });
    this.samples += size;
    this.steps += 1;
  }

  /** Drops the staged step (a batch skipped for a non-finite loss or gradient) and counts it. */
  skipStep(): void {
    this.skipped += 1;
  }

  /** The state so far as plain numbers (reads the device once), to continue the epoch from later. */
  snapshot(trainSeconds: number): EpochProgress {
    return {
      samples: this.samples, steps: this.steps, gradNorms: this.gradNorms, hostLoss: this.hostLoss, skipped: this.skipped,
      rateCounts: Array.from(this.rateCounts), values: Array.from(this.values.toArray()),
      finiteSteps: this.finiteSteps ? Array.from(this.finiteSteps.toArray()) : null, trainSeconds,
    };
  }

  /** Frees the device tensors without reading them (a run that stops). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [this.values, this.stepValues, this.finiteSteps]) t?.dispose();
  }

  /** The totals: the one read of the device per epoch. The accumulator cannot be used after this. */
  read(trainSeconds = 0): EpochTotals {
    const progress = this.snapshot(trainSeconds);
    this.dispose();
    const v = progress.values;
    const rates: Record<string, number> = {};
    this.layers.forEach((name, i) => {
      if (this.rateCounts[i]! > 0) rates[name] = v[RATES + i]! / this.rateCounts[i]!;
    });
    return {
      samples: this.samples,
      steps: this.steps,
      loss: (v[LOSS]! + this.hostLoss) / this.samples,
      accuracy: v[CORRECT]! / this.samples,
      gradNorm: this.gradNorms > 0 ? v[GRAD_NORM]! / this.gradNorms : Number.NaN,
      firingRates: rates,
      skipped: this.skipped,
      firstNonFinite: firstNonFinite(progress),
      progress,
    };
  }
}

/** Which device total of a state went non-finite first, and at which step when the accumulator counted it. */
export function firstNonFinite(p: EpochProgress): NonFiniteTotal | null {
  const found: NonFiniteTotal[] = [];
  for (const [slot, total] of [[LOSS, 'loss'], [GRAD_NORM, 'gradient norm']] as const) {
    const v = p.values[slot]!;
    if (Number.isFinite(v)) continue;
    found.push({ total, kind: Number.isNaN(v) ? 'NaN' : 'infinite', step: p.finiteSteps ? p.finiteSteps[slot]! + 1 : null });
  }
  found.sort((a, b) => (a.step ?? Infinity) - (b.step ?? Infinity));
  return found[0] ?? null;
}
