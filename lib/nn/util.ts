export { fail } from '../errors.js';
export { formatShape as formatShapeOf } from '../tensor.js';
import { checkDType, checkDevice, type DType, type Device } from '../tensor.js';
import { checkKnownKeys, checkOptionsObject } from '../errors.js';

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

/** Parses an options object that may hold dtype and device plus the module's own keys. */
export function moduleOptions(name: string, options: unknown, ownKeys: readonly string[]): Record<string, unknown> & { dtype: DType; device: Device } {
  const o = checkOptionsObject(`${name} options`, options);
  checkKnownKeys(`${name} options`, o, [...ownKeys, 'dtype', 'device']);
  return {
    ...o,
    dtype: o.dtype === undefined ? 'float32' : checkDType(`${name}: dtype`, o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice(`${name}: device`, o.device),
  };
}
