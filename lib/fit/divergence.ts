// Divergence: a training step whose loss or gradient is not finite. The loop either stops the run
// (DIVERGED, naming the epoch, the step and the tensor, with the last good checkpoint left as it was) or
// skips the batch (onNan 'skip': no optimiser step, BatchNorm's running statistics put back as they were
// before the batch's forward). Finding the tensor reads the model's tensors once, when the run has
// already failed; nothing here runs on a good step except the buffer copies of skip mode.
import { failWith, type ErrorDetails } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor.js';

/** 'NaN', 'infinite' or null for a finite number. */
export function nonFiniteKind(value: number): 'NaN' | 'infinite' | null {
  return Number.isNaN(value) ? 'NaN' : Number.isFinite(value) ? null : 'infinite';
}

/** The first non-finite element's kind in a tensor, or null when every element is finite (reads the tensor). */
function tensorNonFinite(t: Tensor): 'NaN' | 'infinite' | null {
  const values = t.toArray();
  for (let i = 0; i < values.length; i++) {
    const kind = nonFiniteKind(values[i]!);
    if (kind) return kind;
  }
  return null;
}

/** Names of the tensors holding a non-finite value, each with the kind of its first one. */
function nonFiniteTensors(entries: ReadonlyArray<readonly [string, Tensor | null | undefined]>): Array<[string, 'NaN' | 'infinite']> {
  const found: Array<[string, 'NaN' | 'infinite']> = [];
  for (const [name, t] of entries) {
    if (!t || t.disposed) continue;
    const kind = tensorNonFinite(t);
    if (kind) found.push([name, kind]);
  }
  return found;
}

function listed(names: ReadonlyArray<[string, string]>, max = 4): string {
  const shown = names.slice(0, max).map(([n]) => `'${n}'`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * What went non-finite, in words, from the step's own numbers and the model as it is now: the loss, or
 * the first parameter gradient that holds a non-finite value; weights and buffers that do are added
 * (a NaN weight, e.g. one loaded from a checkpoint, makes every gradient NaN).
 */
export function describeNonFinite(model: Module, loss: number, gradNorm: number): string {
  const parts: string[] = [];
  const lossKind = nonFiniteKind(loss);
  if (lossKind) parts.push(`the loss is ${lossKind}`);
  else if (nonFiniteKind(gradNorm)) {
    const grads = nonFiniteTensors(model.namedParameters().map(([name, p]) => [name, p.grad] as const));
    const [first, kind] = grads[0] ?? [null, nonFiniteKind(gradNorm)];
    parts.push(first === null ? `the gradient norm is ${kind}`
      : `the gradient of '${first}' is ${kind}${grads.length > 1 ? ` (and of ${listed(grads.slice(1))})` : ''}`);
  }
  const weights = nonFiniteTensors([...model.namedParameters(), ...model.namedBuffers()]);
  if (weights.length > 0) parts.push(`${listed(weights)} ${weights.length === 1 ? 'holds' : 'hold'} non-finite values`);
  return parts.join('; ');
}

/** The facts of a DIVERGED error. step -1: not known (the test pass). */
export interface DivergedDetails extends ErrorDetails {
  epoch: number;
  step: number;
  steps: number;
  what: string;
  /** The last good checkpoint, in words ('' when the run writes none). */
  kept: string;
}

/** The message of a DIVERGED error, with the caller's name for the skip option ("onNan: 'skip'", '--on-nan skip'). */
export function divergedMessage(d: Readonly<ErrorDetails>, skipOption: string): string {
  const where = Number(d.step) >= 0 ? `in epoch ${d.epoch}, step ${d.step} of ${d.steps}` : `in the test pass of epoch ${d.epoch}`;
  const kept = d.kept ? ` ${d.kept}.` : '';
  return `training diverged ${where}: ${d.what}.${kept} Lower the learning rate, or pass ${skipOption} to skip such batches.`;
}

export function failDiverged(details: DivergedDetails): never {
  return failWith('DIVERGED', details, `fit: ${divergedMessage(details, "onNan: 'skip'")}`);
}

/**
 * The model's buffers (BatchNorm running mean, variance and batch counter) copied before a step, to put
 * back when the step is skipped: the forward of a bad batch has already moved them.
 */
export class BufferSnapshot {
  private readonly pairs: Array<[Tensor, Tensor]>;

  constructor(model: Module) {
    this.pairs = model.namedBuffers().map(([, b]) => [b, b.clone()]);
  }

  save(): void {
    for (const [live, copy] of this.pairs) copy.copyFrom(live);
  }

  restore(): void {
    for (const [live, copy] of this.pairs) live.copyFrom(copy);
  }

  dispose(): void {
    for (const [, copy] of this.pairs) copy.dispose();
  }
}
