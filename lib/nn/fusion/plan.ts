// How a Sequential runs its layers: the fused kernels where the layers form the patterns they serve,
// each layer on its own elsewhere. One implementation for every model built of ikun's modules.
//
// Patterns, found in the layers with nested Sequentials flattened:
//  - RepeatOverTime(T), then stateless layers (Conv2d, BatchNorm2d, MaxPool2d, Linear), then a neuron:
//    the repeat is never materialised. The stateless prefix runs once on the N static images (BatchNorm
//    counting T copies), and the neuron reads its input at every step.
//  - A neuron followed by MaxPool2d: one kernel writes the pooled spikes only (membranes recomputed in
//    backward), also for the first neuron above. A BatchNorm2d right before the neuron joins it: the
//    BatchNorm computes its statistics and the kernel normalises its input as it reads it (the
//    BatchNorm's output is never stored).
// Both give the numbers of the layers one by one (tested to float64 rounding).
import { Conv2d, BatchNorm2d, Linear, MaxPool2d } from '../layers.js';
import type { Module } from '../module.js';
import { BaseNode } from '../neuron.js';
import { RepeatOverTime } from '../time.js';
import { LayerStep, NeuronPoolStep, StaticLayerStep, StaticNeuronStep, type Entry, type Step } from './steps.js';

/** Layers that act on each sample alike, so they may run on the static images before the first neuron. */
function perSample(m: Module): boolean {
  return m instanceof Conv2d || m instanceof BatchNorm2d || m instanceof MaxPool2d || m instanceof Linear;
}

function isNode(e: Entry | undefined): e is Entry & { module: BaseNode } {
  return e?.module instanceof BaseNode;
}

function isPool(e: Entry | undefined): e is Entry & { module: MaxPool2d } {
  return e?.module instanceof MaxPool2d;
}

function isBatchNorm(e: Entry | undefined): e is Entry & { module: BatchNorm2d } {
  return e?.module instanceof BatchNorm2d;
}

export function planSteps(entries: readonly Entry[], fuse: boolean): Step[] {
  if (!fuse) return entries.map((e) => new LayerStep(e));
  const steps: Step[] = [];
  let next = 0;
  const first = entries[0];
  if (first?.module instanceof RepeatOverTime) {
    let end = 1;
    while (end < entries.length && perSample(entries[end]!.module)) end++;
    const node = entries[end];
    if (isNode(node)) {
      const T = first.module.steps;
      const pool = entries[end + 1];
      // a BatchNorm right before the neuron joins the fused kernel (its statistics counting the T copies)
      const bn = isPool(pool) && end > 1 && isBatchNorm(entries[end - 1]) ? entries[end - 1] as Entry & { module: BatchNorm2d } : null;
      for (let i = 1; i < (bn ? end - 1 : end); i++) steps.push(new StaticLayerStep(entries[i]!, T));
      if (isPool(pool)) {
        steps.push(new NeuronPoolStep(node, pool, T, bn));
        next = end + 2;
      } else {
        steps.push(new StaticNeuronStep(node, T));
        next = end + 1;
      }
    }
  }
  while (next < entries.length) {
    const e = entries[next]!, after = entries[next + 1], third = entries[next + 2];
    if (isBatchNorm(e) && isNode(after) && isPool(third)) {
      steps.push(new NeuronPoolStep(after, third, null, e));
      next += 3;
    } else if (isNode(e) && isPool(after)) {
      steps.push(new NeuronPoolStep(e, after, null));
      next += 2;
    } else {
      steps.push(new LayerStep(e));
      next += 1;
    }
  }
  return steps;
}
