export { Tensor, Parameter, tensor, zeros, full } from './tensor.js';
export type { DType, FloatDType, Device, TensorOptions, TensorData, TensorValues } from './tensor.js';
export type { ReduceOptions } from './tensor-math.js';
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
export { save, load } from './serialization.js';
export type { SaveOptions } from './serialization.js';
export type { StateDict } from './nn/state-dict.js';
export * as hessian from './hessian.js';
export * as cuda from './cuda.js';
export { train, resume, DEFAULT_CONFIG, resolveConfig } from './train.js';
export type { TrainConfig, TrainHooks, TrainResult } from './train.js';
export { fit, evaluate } from './fit.js';
export { evaluateCheckpoint } from './eval.js';
export type { EvalOptions, EvalResult } from './eval.js';
export * as experiment from './experiment/index.js';
export * as report from './report/index.js';
export type { FitData, FitOptions, FitHooks, FitResult, ImageArrays, EpochMetrics, StepInfo, LossFunction } from './fit.js';
export { IkunError } from './errors.js';
export { Generator, manualSeed } from './random.js';
export { native } from './native.js';

import { native } from './native.js';
import type { CpuKernelsInfo, CudaInfo } from './native.js';
import { describe } from './errors.js';
import { CUDA_PRECISIONS, type CudaPrecision } from './precision.js';
export type { CpuKernelsInfo, CudaInfo } from './native.js';

/** Whether this build and machine can run CUDA, and if not, why. */
export function cudaInfo(): CudaInfo {
  return native.cudaInfo();
}

export { CUDA_PRECISIONS, type CudaPrecision } from './precision.js';

/**
 * Sets the precision of CUDA convolutions and matrix products (float32 tensors) for the whole process:
 * 'tf32' (the default) runs them on tensor cores with TF32 inputs and fp32 accumulation, as PyTorch's cuDNN
 * default for convolutions (relative error about 1e-3 against fp32); 'fp32' runs the exact fp32 kernels;
 * 'bf16' is mixed precision on tensor cores: the products' inputs are rounded to bf16 (7 mantissa bits,
 * relative error a few 1e-3 against fp32, 8 times TF32's) and summed in fp32 at twice TF32's tensor-core
 * rate, while tensors, weights (the fp32 master copy), gradients and every other op stay fp32.
 * float64 tensors and the CPU always compute exactly.
 */
export function setCudaPrecision(precision: CudaPrecision): void {
  if (!CUDA_PRECISIONS.includes(precision))
    throw new Error(`ikun: setCudaPrecision: precision must be 'tf32', 'fp32' or 'bf16', got ${describe(precision)}`);
  native.cudaSetPrecision(precision);
}

export function getCudaPrecision(): CudaPrecision {
  return native.cudaPrecision();
}

/** Threads used by ikun's CPU loops. */
export function getNumThreads(): number {
  return native.threadCount();
}

export function setNumThreads(threads: number): void {
  native.setThreadCount(threads);
}

/**
 * The instruction set of the CPU neuron kernels: 'avx2' where the CPU has it, else 'baseline'
 * (x86-64-v2). Both give the same numbers bit for bit; IKUN_CPU_KERNELS=baseline picks the baseline
 * at start-up.
 */
export function getCpuKernels(): CpuKernelsInfo {
  return native.cpuKernels();
}

/** Switches the CPU neuron kernels (for comparisons and benchmarks); 'avx2' throws where unsupported. */
export function setCpuKernels(kernels: 'avx2' | 'baseline'): void {
  if (kernels !== 'avx2' && kernels !== 'baseline')
    throw new Error(`setCpuKernels: kernels must be 'avx2' or 'baseline', got ${describe(kernels)}`);
  native.setCpuKernels(kernels);
}
