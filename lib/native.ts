// The one loader of the native addon and the typed interface of everything it exports.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type DTypeCode = 0 | 1 | 2; // float32, float64, int32

export interface NativeStorage {
  read(): Float32Array | Float64Array | Int32Array;
  write(data: Float32Array | Float64Array | Int32Array): void;
  fill(value: number): void;
  copyFrom(source: NativeStorage): void;
  dispose(): void;
  readonly disposed: boolean;
  readonly byteLength: number;
}

export interface NeuronParamsNative {
  kind: 0 | 1;
  vThreshold: number;
  vReset: number | null;
  tau: number;
  decayInput: boolean;
  detachReset: boolean;
  surrogate: number;
  alpha: number;
  spiking: boolean;
  staticInput: boolean;
  steps: number;
  width: number;
}

export interface SgdParamsNative {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  firstStep: boolean;
}

export interface AdamParamsNative {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupledWeightDecay: boolean;
  step: number;
}

/** Which build of the CPU kernels that exist in several (the neuron kernels) runs. */
export interface CpuKernelsInfo {
  /** The build in use. */
  active: 'avx2' | 'baseline';
  /** Whether the AVX2 build exists in this binary and this CPU can run it. */
  avx2: boolean;
}

export interface CudaInfo {
  compiled: boolean;
  available: boolean;
  deviceCount: number;
  runtimeVersion: number;
  driverVersion: number;
  reason: string;
}

/** Elementwise arithmetic of the tensor basics: add, sub, mul, div. */
export type BinaryOpCode = 0 | 1 | 2 | 3;

type S = NativeStorage;
type Dims = number[];

export interface NativeAddon {
  Storage: new (dtype: DTypeCode, count: number, zero: boolean) => NativeStorage;
  conv2dForward(x: S, w: S, bias: S | null, y: S, dims: Dims): void;
  conv2dBackwardInput(dy: S, w: S, dx: S, dims: Dims): void;
  conv2dBackwardWeight(x: S, dy: S, dw: S, dbias: S | null, dims: Dims): void;
  linearForward(x: S, w: S, bias: S | null, y: S, dims: Dims): void;
  linearBackwardInput(dy: S, w: S, dx: S, dims: Dims): void;
  linearBackwardWeight(x: S, dy: S, dw: S, dbias: S | null, dims: Dims): void;
  batchNormForward(x: S, gamma: S, beta: S, runningMean: S, runningVar: S, y: S, savedMean: S, savedInvStd: S,
    dims: Dims, training: boolean, momentum: number, eps: number, replicas: number): void;
  batchNormBackward(dy: S, x: S, gamma: S, savedMean: S, savedInvStd: S, dx: S | null, dgamma: S, dbeta: S,
    dims: Dims, training: boolean): void;
  maxPool2dForward(x: S, y: S, argmax: S, dims: Dims): void;
  maxPool2dBackward(dy: S, argmax: S, dx: S, dims: Dims): void;
  neuronForward(x: S, spikes: S, h: S, params: NeuronParamsNative): void;
  neuronBackward(dSpikes: S, h: S, dx: S, params: NeuronParamsNative): void;
  neuronPoolForward(x: S, pooled: S, argmax: S, params: NeuronParamsNative, dims: Dims): number;
  neuronPoolBackward(x: S, argmax: S, dPooled: S, dx: S, params: NeuronParamsNative, dims: Dims): void;
  neuronForwardTangent(h: S, xDot: S, hDot: S, sDot: S, params: NeuronParamsNative): void;
  neuronBackwardTangent(h: S, hDot: S, dSpikes: S, dSpikesDot: S, dx: S, dxDot: S, params: NeuronParamsNative): void;
  maxPool2dGather(x: S, argmax: S, y: S, dims: Dims): void;
  batchNormForwardTangent(x: S, xDot: S, gamma: S, gammaDot: S | null, betaDot: S | null, savedMean: S, savedInvStd: S,
    yDot: S, dims: Dims, training: boolean): void;
  batchNormBackwardTangent(x: S, xDot: S, gamma: S, gammaDot: S | null, savedMean: S, savedInvStd: S, dy: S, dyDot: S,
    dx: S, dxDot: S, dgammaDot: S, dbetaDot: S, dims: Dims, training: boolean): void;
  mseRateLoss(rate: S, labels: Int32Array, grad: S, dims: Dims): number;
  crossEntropyRateLoss(rate: S, labels: Int32Array, grad: S, dims: Dims): number;
  repeatLeading(x: S, y: S, dims: Dims, scale: number): void;
  sumLeading(x: S, y: S, dims: Dims, scale: number): void;
  gemm(a: S, b: S, c: S, dims: Dims, transA: boolean, transB: boolean, alpha: number, beta: number): void;
  axpy(x: S, y: S, alpha: number): void;
  sgdStep(param: S, grad: S, momentumBuffer: S | null, params: SgdParamsNative): void;
  adamStep(param: S, grad: S, expAvg: S, expAvgSq: S, params: AdamParamsNative): void;
  dot(x: S, y: S): number;
  scale(x: S, alpha: number): void;
  sum(x: S): number;
  sumOfSquares(x: S): number;
  binaryOp(op: BinaryOpCode, a: S, b: S, out: S, dims: Dims): void;
  binaryScalarOp(op: BinaryOpCode, a: S, scalar: number, out: S): void;
  equal(a: S, b: S, out: S, dims: Dims): void;
  equalScalar(a: S, scalar: number, out: S): void;
  argmaxAxis(x: S, out: S, dims: Dims): void;
  sumAxis(x: S, out: S, dims: Dims, scale: number): void;
  cast(x: S, out: S): void;
  threadCount(): number;
  setThreadCount(threads: number): void;
  cpuKernels(): CpuKernelsInfo;
  setCpuKernels(kernels: 'avx2' | 'baseline'): void;
  hostCacheBytes(): number;
  emptyHostCache(): void;
  cudaInfo(): CudaInfo;
  abiVersion: number;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'sources.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('ikun: cannot find the package root (package.json next to sources.json)');
    dir = parent;
  }
}

function load(): NativeAddon {
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(root) as NativeAddon;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `ikun: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}, ` +
        `looked in ${join(root, 'build/Release')} and ${join(root, 'prebuilds')}): ${reason}\n` +
        `Build it from source with 'npm rebuild ikun' (needs cmake, a C++17 compiler and OpenBLAS: ` +
        `'apt-get install cmake g++ libopenblas-dev').`,
    );
  }
}

export const native: NativeAddon = load();
