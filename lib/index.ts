export { Tensor, Parameter, tensor, zeros, full } from './tensor.js';
export type { DType, Device, TensorOptions, TensorData } from './tensor.js';
export * as nn from './nn/index.js';
export * as surrogate from './surrogate.js';
export * as loss from './loss.js';
export * as models from './models.js';
export * as functional from './functional.js';
export * as init from './init.js';
export * as data from './data.js';
export * as optim from './optim.js';
export * as checkpoint from './checkpoint.js';
export * as safetensors from './safetensors.js';
export * as hessian from './hessian.js';
export { train, resume, evaluate, DEFAULT_CONFIG, resolveConfig } from './train.js';
export type { TrainConfig, EpochMetrics, TrainHooks, TrainResult, StepInfo } from './train.js';
export { Generator, manualSeed } from './random.js';
export { native } from './native.js';

import { native } from './native.js';
import type { CudaInfo } from './native.js';

/** Whether this build and machine can run CUDA, and if not, why. */
export function cudaInfo(): CudaInfo {
  return native.cudaInfo();
}

/** Threads used by ikun's CPU loops. */
export function getNumThreads(): number {
  return native.threadCount();
}

export function setNumThreads(threads: number): void {
  native.setThreadCount(threads);
}
