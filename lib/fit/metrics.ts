// Per-epoch metrics of the training loop, gathered on the model's device and read once at the epoch's end:
// on a GPU no step waits for the device to report its loss, accuracy, gradient norm or firing rates
// (the kernels add them into one float64 tensor there). A step's own loss is read only when a hook asks
// for it (stepLoss()).
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

// Slots of the device tensor; the firing rates of the spiking layers follow.
const LOSS = 0, CORRECT = 1, GRAD_NORM = 2, RATES = 3;

export class EpochAccumulator {
  private samples = 0;
  private steps = 0;
  private gradNorms = 0;
  private hostLoss = 0; // the part of the loss sum a custom loss function returned as numbers
  private lastHostLoss: number | null = null;
  private readonly rateCounts: Float64Array;
  private readonly values: Tensor;
  private readonly stepLossValue: Tensor;

  /** layers: the spiking layers whose firing rates are averaged (spikingLayers() order); device: the model's. */
  constructor(private readonly layers: readonly string[], device: Device) {
    this.rateCounts = new Float64Array(layers.length);
    this.values = Tensor.zeros([RATES + layers.length], 'float64', device);
    this.stepLossValue = Tensor.zeros([1], 'float64', device);
  }

  /** One step over a batch of `size` samples. */
  addBatch(size: number): void {
    this.samples += size;
    this.steps += 1;
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
      this.hostLoss += r.loss * batchSize;
      this.lastHostLoss = r.loss;
      return r.grad;
    }
    this.stepLossValue.fill(0);
    const grad = deviceLoss(output, labels, { accumulator: this.stepLossValue, slot: 0, scale: 1 });
    native.sum(this.stepLossValue.storage, this.values.storage, LOSS, batchSize);
    return grad;
  }

  /** The mean loss of the last batch (waits for the device: only for hooks that ask). */
  stepLoss(): number {
    return this.lastHostLoss ?? this.stepLossValue.item();
  }

  /** Correct predictions of the batch (the first maximum of each row against its label). */
  addCorrect(output: Tensor, labels: Tensor): void {
    native.countCorrect(output.storage, labels.storage, [...output.shape], this.values.storage, CORRECT, 1);
  }

  addGradNorm(params: ParameterList): void {
    accumulateGradNorm(params, { accumulator: this.values, slot: GRAD_NORM, scale: 1 });
    this.gradNorms += 1;
  }

  addFiringRates(model: Module): void {
    if (this.layers.length === 0) return;
    model.accumulateFiringRates(this.values, RATES).forEach((reported, i) => {
      if (reported && i < this.layers.length) this.rateCounts[i]! += 1;
    });
  }

  /** The totals: the one read of the device per epoch. The accumulator cannot be used after this. */
  read(): EpochTotals {
    const v = this.values.toArray();
    this.values.dispose();
    this.stepLossValue.dispose();
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
    };
  }
}
