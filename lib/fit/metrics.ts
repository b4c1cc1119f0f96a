// Per-epoch metrics of the training loop, gathered in one place and read once at the epoch's end. The
// correct-prediction count stays a tensor (native ops on the model's device, no read-back per step);
// loss, gradient norm and firing rates arrive as numbers today. Moving the whole accumulator onto a
// device later touches this file only.
import { Tensor } from '../tensor.js';

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

export class EpochAccumulator {
  private samples = 0;
  private steps = 0;
  private lossSum = 0;
  private gradNormSum = 0;
  private gradNorms = 0;
  private correct: Tensor | null = null;
  private readonly rateSums: Float64Array;
  private readonly rateCounts: Float64Array;

  /** layers: the spiking layers whose firing rates are averaged (names as lastFiringRates() gives them). */
  constructor(private readonly layers: readonly string[]) {
    this.rateSums = new Float64Array(layers.length);
    this.rateCounts = new Float64Array(layers.length);
  }

  /** One step over a batch of `size` samples. */
  addBatch(size: number): void {
    this.samples += size;
    this.steps += 1;
  }

  /** The batch's mean loss times its size (so the epoch mean weighs every sample alike). */
  addLoss(lossTimesBatch: number): void {
    this.lossSum += lossTimesBatch;
  }

  /** A one-element tensor counting correct predictions (correctCount); the accumulator takes ownership. */
  addCorrect(count: Tensor): void {
    if (!this.correct) this.correct = count.to('int32');
    else {
      const total = this.correct.add(count);
      this.correct.dispose();
      this.correct = total;
    }
    if (count !== this.correct) count.dispose();
  }

  addGradNorm(norm: number): void {
    this.gradNormSum += norm;
    this.gradNorms += 1;
  }

  addFiringRates(rates: Readonly<Record<string, number>>): void {
    this.layers.forEach((name, i) => {
      const r = rates[name];
      if (r === undefined) return;
      this.rateSums[i]! += r;
      this.rateCounts[i]! += 1;
    });
  }

  /** The totals; the only place the device-side count is read back. */
  read(): EpochTotals {
    const correct = this.correct ? this.correct.item() : 0;
    this.correct?.dispose();
    this.correct = null;
    const rates: Record<string, number> = {};
    this.layers.forEach((name, i) => {
      if (this.rateCounts[i]! > 0) rates[name] = this.rateSums[i]! / this.rateCounts[i]!;
    });
    return {
      samples: this.samples,
      steps: this.steps,
      loss: this.lossSum / this.samples,
      accuracy: correct / this.samples,
      gradNorm: this.gradNorms > 0 ? this.gradNormSum / this.gradNorms : Number.NaN,
      firingRates: rates,
    };
  }
}
