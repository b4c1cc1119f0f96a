// The mini-batches of the training loop as tensors on the model's device. For a CUDA model the data set is
// uploaded once and stays there: each epoch sends only its sample order (a few KB), and each batch is
// gathered on the device, so no step copies images from the host. On the CPU the loader gathers batches in
// host memory as before. Both follow the DataLoader's seeded order, so the batches are the same.
import type { Batch, DataLoader } from '../data.js';
import { imageSize, type Dataset } from '../data/dataset.js';
import { native } from '../native.js';
import { Tensor, type DType, type Device } from '../tensor.js';

export interface StepBatch {
  x: Tensor;
  /** int32 [size] on the model's device */
  labels: Tensor;
  /** the labels in host memory (for a loss function you bring, which takes an Int32Array) */
  hostLabels: Int32Array;
  size: number;
}

/** A data set's images and labels on a device, once. */
class ResidentDataset {
  readonly images: Tensor;
  readonly labels: Tensor;
  constructor(readonly dataset: Dataset, place: { dtype: DType; device: Device }) {
    const shape = [dataset.count, dataset.channels ?? 1, dataset.height, dataset.width];
    this.images = Tensor.empty(shape, place.dtype, place.device).copyFrom(dataset.images);
    this.labels = Tensor.empty([dataset.count], 'int32', place.device).copyFrom(dataset.labels);
  }
  dispose(): void {
    this.images.dispose();
    this.labels.dispose();
  }
}

function hostBatch(batch: Batch, dataset: Dataset, place: { dtype: DType; device: Device }): StepBatch {
  const x = Tensor.empty([batch.size, dataset.channels ?? 1, dataset.height, dataset.width], place.dtype, place.device);
  x.copyFrom(batch.images);
  const labels = Tensor.empty([batch.size], 'int32', place.device).copyFrom(batch.labels);
  return { x, labels, hostLabels: batch.labels, size: batch.size };
}

/** The batches of one epoch; the caller disposes each batch's tensors. */
export class EpochBatches {
  private resident: ResidentDataset | null = null;
  // the epoch's sample order on the device: one buffer for the run, refilled each epoch (in stream order
  // behind the gathers of the epoch before), so an epoch's start allocates nothing
  private deviceOrder: Tensor | null = null;

  constructor(private readonly loader: DataLoader, private readonly place: { dtype: DType; device: Device }) {}

  /** The batches of `epoch` from batch `first` on (a run resumed inside the epoch). */
  *epoch(epoch: number, first = 0): IterableIterator<StepBatch> {
    const dataset = this.loader.dataset;
    if (this.place.device === 'cpu') {
      for (const batch of this.loader.epoch(epoch, first)) yield hostBatch(batch, dataset, this.place);
      return;
    }
    this.resident ??= new ResidentDataset(dataset, this.place);
    const order = this.loader.order(epoch);
    if (this.deviceOrder?.size !== order.length) {
      this.deviceOrder?.dispose();
      this.deviceOrder = Tensor.empty([order.length], 'int32', this.place.device);
    }
    const deviceOrder = this.deviceOrder.copyFrom(order);
    const rowSize = imageSize(dataset);
    for (let b = first, count = this.loader.batchCount(); b < count; b++) {
      const start = b * this.loader.batchSize, size = Math.min(this.loader.batchSize, order.length - start);
      const x = Tensor.empty([size, dataset.channels ?? 1, dataset.height, dataset.width], this.place.dtype, this.place.device);
      const labels = Tensor.empty([size], 'int32', this.place.device);
      native.gatherRows(this.resident.images.storage, deviceOrder.storage, x.storage, [dataset.count, rowSize, start, size]);
      native.gatherRows(this.resident.labels.storage, deviceOrder.storage, labels.storage, [dataset.count, 1, start, size]);
      const hostLabels = Int32Array.from(order.subarray(start, start + size), (i) => dataset.labels[i]!);
      yield { x, labels, hostLabels, size };
    }
  }

  /** Frees the device copies of the data set and of the sample order. */
  dispose(): void {
    this.resident?.dispose();
    this.resident = null;
    this.deviceOrder?.dispose();
    this.deviceOrder = null;
  }
}
