// The global L2 norm of a model's gradients (read at once, or added into a device accumulation).
import type { Accumulation } from '../functional.js';
import { native, type NativeStorage } from '../native.js';
import { namedParameterList } from './checks.js';
import type { ParameterList } from './optimizer.js';
/** Global L2 norm of the gradients of params (parameters without a gradient count as zero). */
export function gradNorm(params: ParameterList): number {
  return native.gradNorm(gradientStorages(params));
}

/** @internal adds the gradient norm into an accumulation instead (no wait for a GPU). */
export function accumulateGradNorm(params: ParameterList, into: Accumulation): void {
  native.gradNorm(gradientStorages(params), into.accumulator.storage, into.slot, into.scale);
}

function gradientStorages(params: ParameterList): NativeStorage[] {
  const list = namedParameterList('gradNorm', params);
  const storages: NativeStorage[] = [];
  for (const [name, p] of list) {
    if (!p.grad) continue;
    p.grad.checkAlive(`gradNorm: gradient of '${name}'`);
    storages.push(p.grad.storage);
  }
  return storages;
}
