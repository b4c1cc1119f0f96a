// The one loader of the native addon and the typed interface of everything it exports.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaPrecision } from './precision.js';

export type DTypeCode = 0 | 1 | 2; // float32, float64, int32

export interface NativeStorage {
  /** -1 for host memory, n for CUDA device n */
  readonly device: number;
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
}

export interface AdamParamsNative {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupledWeightDecay: boolean;
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
  /** why no device is usable, in a few plain words ('no CUDA GPU found'); '' when one is */
  reason: string;
  /** what lies behind the reason and what would fix it ('' when nothing more is known) */
  detail: string;
}

/** What the binary was built with (native/napi/build_info.cpp). */
export interface NativeBuildInfo {
  /** The N-API version the binary targets (Node must offer at least this one). */
  napiVersion: number;
  /** e.g. 'GCC 12.2.0' */
  compiler: string;
  cuda: {
    /** The CUDA kernels are in this binary. */
    compiled: boolean;
    /** They are the emulated device's (IKUN_CUDA_EMULATE=1 test build). */
    emulated: boolean;
    /** Compute capabilities with machine code, as major * 10 + minor (80 is 8.0). */
    sass: number[];
    /** Compute capabilities with PTX, which the driver compiles for that and any newer GPU. */
    ptx: number[];
  };
  blas: {
    name: string;
    /** OpenBLAS's description of its build (version, DYNAMIC_ARCH, ...) */
    config: string;
    /** The CPU core OpenBLAS picked its kernels for. */
    core: string;
    linkage: 'static' | 'shared';
  };
}

export interface CudaDeviceInfo {
  name: string;
  totalMemory: number;
  major: number;
  minor: number;
  multiprocessors: number;
}

export interface CudaMemoryStats {
  /** bytes in blocks held by live tensors */
  allocated: number;
  /** allocated plus blocks cached for reuse */
  reserved: number;
  /** the most `allocated` has been since start or the last reset */
  peakAllocated: number;
}

/** What the host asked of a CUDA device since the process started (cuda.runtimeCounters()). */
export interface CudaRuntimeCounters {
  /** kernels launched */
  kernelLaunches: number;
  /** memsets and device-to-device copies queued */
  memoryOps: number;
  hostToDeviceCopies: number;
  /** each one waits for the device */
  deviceToHostCopies: number;
  /** times the host waited for the device: reads of a tensor, synchronize(), a busy staging buffer */
  hostWaits: number;
  /** cudaMalloc calls of the caching allocator (a request its cache could not serve) */
  deviceAllocations: number;
}

/** Elementwise arithmetic of the tensor basics: add, sub, mul, div. */
export type BinaryOpCode = 0 | 1 | 2 | 3;

type S = NativeStorage;
type Dims = number[];
/** A BatchNorm the fused neuron + max-pool kernels apply to their input as they read it (per channel). */
export interface InputNormalisationNative {
  gamma: S;
  beta: S;
  mean: S;
  invStd: S;
}
/**
 * The optional trailing arguments of the ops that compute a number: with them the op adds value * scale to
 * accumulator[slot] (a float64 storage on the op's device) and returns undefined without waiting for the
 * device; without them it returns the value.
 */
type Accumulate = [accumulator: S, slot: number, scale: number];
type Labels = Int32Array | S;

export interface NativeAddon {
  Storage: new (dtype: DTypeCode, count: number, zero: boolean, device?: number) => NativeStorage;
  conv2dForward(x: S, w: S, bias: S | null, y: S, dims: Dims): void;
  conv2dBackwardInput(dy: S, w: S, dx: S, dims: Dims): void;
  conv2dBackwardWeight(x: S, dy: S, dw: S, dbias: S | null, dims: Dims): void;
  linearForward(x: S, w: S, bias: S | null, y: S, dims: Dims): void;
  linearBackwardInput(dy: S, w: S, dx: S, dims: Dims): void;
  linearBackwardWeight(x: S, dy: S, dw: S, dbias: S | null, dims: Dims): void;
  /**
   * y null: the statistics only (a fused neuron kernel normalises its input itself). batchesTracked (training
   * only): a float64 scalar on x's device that the statistics kernel adds 1 to.
   */
  batchNormForward(x: S, gamma: S, beta: S, runningMean: S, runningVar: S, y: S | null, savedMean: S, savedInvStd: S,
    dims: Dims, training: boolean, momentum: number, eps: number, replicas: number, batchesTracked?: S | null): void;
  batchNormBackward(dy: S, x: S, gamma: S, savedMean: S, savedInvStd: S, dx: S | null, dgamma: S, dbeta: S,
    dims: Dims, training: boolean): void;
  maxPool2dForward(x: S, y: S, argmax: S, dims: Dims): void;
  maxPool2dBackward(dy: S, argmax: S, dx: S, dims: Dims): void;
  neuronForward(x: S, spikes: S, h: S, params: NeuronParamsNative): void;
  neuronBackward(dSpikes: S, h: S, dx: S, params: NeuronParamsNative): void;
  /** The spike count as float64 values on x's device that add up to it (per-block partial counts on CUDA). */
  neuronPoolForward(x: S, pooled: S, params: NeuronParamsNative, dims: Dims, norm: InputNormalisationNative | null): S;
  neuronPoolBackward(x: S, dPooled: S, dx: S, params: NeuronParamsNative, dims: Dims, norm: InputNormalisationNative | null): void;
  neuronForwardTangent(h: S, xDot: S, hDot: S, sDot: S, params: NeuronParamsNative): void;
  neuronBackwardTangent(h: S, hDot: S, dSpikes: S, dSpikesDot: S, dx: S, dxDot: S, params: NeuronParamsNative): void;
  maxPool2dGather(x: S, argmax: S, y: S, dims: Dims): void;
  batchNormForwardTangent(x: S, xDot: S, gamma: S, gammaDot: S | null, betaDot: S | null, savedMean: S, savedInvStd: S,
    yDot: S, dims: Dims, training: boolean): void;
  batchNormBackwardTangent(x: S, xDot: S, gamma: S, gammaDot: S | null, savedMean: S, savedInvStd: S, dy: S, dyDot: S,
    dx: S, dxDot: S, dgammaDot: S, dbetaDot: S, dims: Dims, training: boolean): void;
  mseRateLoss(rate: S, labels: Labels, grad: S, dims: Dims): number;
  mseRateLoss(rate: S, labels: Labels, grad: S, dims: Dims, ...acc: Accumulate): undefined;
  crossEntropyRateLoss(rate: S, labels: Labels, grad: S, dims: Dims): number;
  crossEntropyRateLoss(rate: S, labels: Labels, grad: S, dims: Dims, ...acc: Accumulate): undefined;
  countCorrect(rate: S, labels: Labels, dims: Dims): number;
  countCorrect(rate: S, labels: Labels, dims: Dims, ...acc: Accumulate): undefined;
  repeatLeading(x: S, y: S, dims: Dims, scale: number): void;
  sumLeading(x: S, y: S, dims: Dims, scale: number): void;
  gemm(a: S, b: S, c: S, dims: Dims, transA: boolean, transB: boolean, alpha: number, beta: number): void;
  axpy(x: S, y: S, alpha: number): void;
  /** Every tensor of the list set to zero (one device; one launch on CUDA for every 16). */
  zeroAll(tensors: S[]): void;
  /** totals += step, and finiteSteps[i] += 1 where totals[i] is then finite (one launch on CUDA). */
  addToTotals(step: S, totals: S, finiteSteps: S | null): void;
  /** out[r] = rows[indices[first + r]] for r < count; dims [rowCount, rowSize, first, count]. */
  gatherRows(rows: S, indices: S, out: S, dims: Dims): void;
  /** One call (one launch on CUDA) updates every parameter of the lists. */
  sgdStep(params: S[], grads: S[], momentumBuffers: Array<S | null>, firstSteps: boolean[], hyper: SgdParamsNative): void;
  /** steps: each parameter's own update count, 1 on its first update. */
  adamStep(params: S[], grads: S[], expAvgs: S[], expAvgSqs: S[], steps: number[], hyper: AdamParamsNative): void;
  dot(x: S, y: S): number;
  dot(x: S, y: S, ...acc: Accumulate): undefined;
  scale(x: S, alpha: number): void;
  sum(x: S): number;
  sum(x: S, ...acc: Accumulate): undefined;
  sumOfSquares(x: S): number;
  sumOfSquares(x: S, ...acc: Accumulate): undefined;
  /** The L2 norm of all the tensors together. */
  gradNorm(tensors: S[]): number;
  gradNorm(tensors: S[], ...acc: Accumulate | []): number | undefined;
  /** accumulator[slots[i]] += sum(tensors[i]) * scales[i] for every i, without waiting (two launches per 16 tensors on CUDA). */
  sumsInto(tensors: S[], accumulator: S, slots: number[], scales: number[]): void;
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
  /** Bytes in host blocks that live tensors hold (not the cache). */
  hostLiveBytes(): number;
  emptyHostCache(): void;
  cudaInfo(): CudaInfo;
  cudaDeviceCount(): number;
  cudaEmulated(): boolean;
  cudaDeviceInfo(device: number): CudaDeviceInfo;
  cudaMemoryStats(device: number): CudaMemoryStats;
  cudaRuntimeCounters(device: number): CudaRuntimeCounters;
  cudaResetPeakMemory(device: number): void;
  cudaEmptyCache(device: number): void;
  cudaSynchronize(device: number): void;
  cudaSetPrecision(precision: CudaPrecision): void;
  /** CUDA events around every op queued on a device, for bench:gpu's per-op split (off by default). */
  cudaSetOpProfiling(enabled: boolean): void;
  /** The time of each op name since profiling began or the last take (waits for the device). */
  cudaTakeOpProfile(device: number): Array<{ op: string; ms: number; calls: number }>;
  cudaPrecision(): CudaPrecision;
  /** The largest error of each tensor-core wrapper on known matrices (0 when its fragment layouts are right). */
  cudaMmaLayoutCheck(device: number): { tf32: number; bf16: number };
  buildInfo(): NativeBuildInfo;
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

/** Where the loaded native addon comes from. */
export interface NativeBinary {
  /** 'prebuilt': prebuilds/<platform>-<arch>/ikun.node as shipped; 'built': compiled on this machine. */
  source: 'prebuilt' | 'built';
  /** The file loaded. */
  path: string;
  /** The emulated CUDA test build (IKUN_CUDA_EMULATE=1), never shipped. */
  emulated: boolean;
}

// The signature of the `bindings` package for the options used here (it has no types of its own).
type BindingsLoader = (options: { bindings: string; module_root: string; try: string[][] }) => { path?: string };

const ABI_VERSION = 9;

// Inside node_modules the package was installed by npm, and npm rebuild re-runs its install script; in a clone,
// npm install does (and npm run build:native builds without it).
function rebuildCommand(root: string, source: NativeBinary['source']): string {
  const installed = root.split(sep).includes('node_modules');
  if (installed) return source === 'prebuilt' ? "'IKUN_BUILD_FROM_SOURCE=1 npm rebuild ikun'" : "'npm rebuild ikun'";
  return source === 'prebuilt' ? "'npm run prebuilds' (or 'npm run build:native' for a local build)" : "'npm run build:native' (or 'npm install')";
}

const BUILD_TOOLS = "cmake, a C++17 compiler and OpenBLAS: 'apt-get install cmake g++ libopenblas-dev'";

// IKUN_CUDA_EMULATE=1 loads the emulated test build (build-emulated/), where device 'cuda' is the host-thread
// emulation of a GPU that the tests check the CUDA kernels on. It is never shipped.
function loadEmulated(root: string): { addon: NativeAddon; binary: NativeBinary } {
  const file = join(root, 'build-emulated', 'Release', 'ikun.node');
  if (!existsSync(file))
    throw new Error(`ikun: IKUN_CUDA_EMULATE=1 asks for the emulated CUDA build, but ${file} does not exist; build it with 'npm run build:emulated'`);
  const addon = createRequire(import.meta.url)(file) as NativeAddon;
  return { addon: checkAbi(addon, 'the emulated build', "'npm run build:emulated'"), binary: { source: 'built', path: file, emulated: true } };
}

// The `bindings` package looks in each folder of `try` in turn (parts that are not its keywords are literal):
// first the local build (cmake-js and node-gyp both write build/Release), so that it shadows the prebuilt
// binary, then prebuilds/<platform>-<arch>/ as prebuildify writes it and npm pack ships it.
function loadBinary(root: string): { addon: NativeAddon; binary: NativeBinary } {
  const platform = `${process.platform}-${process.arch}`;
  const local = join(root, 'build', 'Release', 'ikun.node');
  const prebuilt = join(root, 'prebuilds', platform, 'ikun.node');
  const bindings = createRequire(import.meta.url)('bindings') as BindingsLoader;
  let addon: NativeAddon & { path?: string };
  try {
    addon = bindings({
      bindings: 'ikun.node',
      module_root: root,
      try: [['module_root', 'build', 'Release', 'bindings'], ['module_root', 'prebuilds', platform, 'bindings']],
    }) as NativeAddon & { path?: string };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const where = `Node ${process.version}, N-API ${process.versions.napi ?? '?'}, ${platform}`;
    if (!existsSync(local) && !existsSync(prebuilt))
      throw new Error(
        `ikun: no native addon found (${where}): neither a local build (${local}) nor a prebuilt binary (${prebuilt}). ` +
          `${platform === 'linux-x64' ? "A git checkout has none until 'npm run prebuilds'" : `Prebuilt binaries exist for linux-x64 only, not ${platform}`}; ` +
          `build from source with ${rebuildCommand(root, 'built')}, which needs ${BUILD_TOOLS}.`,
      );
    const file = existsSync(local) ? local : prebuilt;
    const source = file === local ? 'built' : 'prebuilt';
    throw new Error(
      `ikun: the native addon ${file} does not load here (${where}): ${reason}\n` +
        `${source === 'prebuilt' ? 'Build one for this machine from source' : 'Rebuild it'} with ${rebuildCommand(root, source)}; ` +
        `that needs ${BUILD_TOOLS}.`,
    );
  }
  const path = addon.path ?? '';
  const source: NativeBinary['source'] = resolve(path) === resolve(prebuilt) ? 'prebuilt' : 'built';
  return { addon: checkAbi(addon, `the native addon ${path}`, rebuildCommand(root, source)), binary: { source, path, emulated: false } };
}

// A binary left from an older checkout has other bindings: say so instead of failing inside an op.
function checkAbi(addon: NativeAddon, what: string, fix: string): NativeAddon {
  if (addon.abiVersion !== ABI_VERSION)
    throw new Error(`ikun: ${what} is out of date (binding version ${addon.abiVersion}, this code needs ${ABI_VERSION}); rebuild it with ${fix}`);
  return addon;
}

const loaded = process.env.IKUN_CUDA_EMULATE === '1' ? loadEmulated(packageRoot()) : loadBinary(packageRoot());

export const native: NativeAddon = loaded.addon;
/** The native addon in use: prebuilt or built here, and its file. */
export const nativeBinary: Readonly<NativeBinary> = Object.freeze(loaded.binary);
