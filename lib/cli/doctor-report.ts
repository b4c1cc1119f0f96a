// `ikun doctor`: what this installation runs on and whether it works. The binary in use (prebuilt or built
// here), the CPU and its kernels, the BLAS, the CUDA runtime, driver and GPUs (and whether the binary has code
// for each), then one small CSNN training step on every device, each GPU's compared with the CPU's.
// Exit codes: 0 everything found works (also without a GPU), 1 something found does not (a GPU that cannot
// be used, a self-test that fails). The command and its flags are in lib/cli/doctor.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ikunVersion } from '../checkpoint.js';
import { getCpuKernels, getNumThreads, setCpuKernels } from '../index.js';
import * as losses from '../loss.js';
import * as models from '../models.js';
import * as init from '../init.js';
import { native, nativeBinary, type CpuKernelsInfo, type CudaDeviceInfo, type CudaInfo, type NativeBuildInfo } from '../native.js';
import { SGD } from '../optim.js';
import { Generator } from '../random.js';
import * as surrogate from '../surrogate.js';
import { tensor, type Device } from '../tensor.js';

/** Relative error allowed between a GPU's training step and the CPU's: float32 rounding over a few layers. */
export const SELF_TEST_TOLERANCE = 1e-4;

export interface DoctorDevice {
  device: `cuda:${number}`;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
  /** How the binary runs on it: its own machine code, PTX compiled by the driver, the emulator, or not at all. */
  code: 'sass' | 'ptx' | 'emulated' | 'none';
  codeDetail: string;
}

export interface SelfTestResult {
  device: 'cpu' | `cuda:${number}`;
  passed: boolean;
  /** What was compared and how closely, in words. */
  summary: string;
  seconds: number;
  loss?: number;
  gradNorm?: number;
  /** Relative errors against the reference (the CPU; on the CPU, the other build of its kernels). */
  relativeError?: { loss: number; gradients: number; weights: number };
  error?: string;
}

export interface DoctorProblem {
  problem: string;
  fix: string;
}

export interface DoctorReport {
  ikun: { version: string };
  node: { version: string; napi: number | null; platform: string };
  binary: { source: 'prebuilt' | 'built'; path: string; emulated: boolean; napiVersion: number; compiler: string };
  cpu: {
    model: string;
    cores: number;
    /** From /proc/cpuinfo (null where there is none). */
    features: { x86_64_v2: boolean; avx: boolean; avx2: boolean; fma: boolean; avx512f: boolean } | null;
    kernels: CpuKernelsInfo;
    threads: number;
    blas: NativeBuildInfo['blas'];
  };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason?: string;
    detail?: string;
    /** e.g. '13.0'; null when unknown (no CUDA in the binary, no driver) */
    runtimeVersion: string | null;
    driverVersion: string | null;
    architectures: { sass: number[]; ptx: number[] };
    devices: DoctorDevice[];
  };
  selfTest: SelfTestResult[];
  ok: boolean;
  problems: DoctorProblem[];
}


function cudaVersion(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

function capabilityText(arch: number): string {
  return `${Math.floor(arch / 10)}.${arch % 10}`;
}

function cpuFeatures(): DoctorReport['cpu']['features'] {
  if (!existsSync('/proc/cpuinfo')) return null;
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^flags\s*:/.test(l));
  if (!line) return null;
  const flags = new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
  // x86-64-v2, the baseline the binary is compiled for: CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSSE3, SSE4.1, SSE4.2.
  const v2 = ['cx16', 'lahf_lm', 'popcnt', 'pni', 'ssse3', 'sse4_1', 'sse4_2'].every((f) => flags.has(f));
  return { x86_64_v2: v2, avx: flags.has('avx'), avx2: flags.has('avx2'), fma: flags.has('fma'), avx512f: flags.has('avx512f') };
}

/**
 * Whether the binary has code for a GPU of compute capability major.minor: machine code of the same major
 * version and an equal or lower minor runs on it; PTX of an equal or lower capability is compiled for it by
 * the driver.
 */
export function codeForCapability(major: number, minor: number, build: NativeBuildInfo['cuda']): Pick<DoctorDevice, 'code' | 'codeDetail'> {
  if (build.emulated) return { code: 'emulated', codeDetail: 'the kernels run on host threads (the emulated test device)' };
  const cc = major * 10 + minor;
  const sass = build.sass.filter((a) => Math.floor(a / 10) === major && a <= cc).sort((a, b) => b - a)[0];
  if (sass !== undefined) return { code: 'sass', codeDetail: `machine code for sm_${sass}` };
  const ptx = build.ptx.filter((a) => a <= cc).sort((a, b) => b - a)[0];
  if (ptx !== undefined) return { code: 'ptx', codeDetail: `PTX ${capabilityText(ptx)}, compiled by the driver at first use` };
  const has = [...build.sass.map((a) => `sm_${a}`), ...build.ptx.map((a) => `PTX ${capabilityText(a)}`)].join(', ');
  return { code: 'none', codeDetail: `no code for compute capability ${major}.${minor} (the binary has ${has || 'none'})` };
}

/** GPUs the NVIDIA kernel driver knows of, whether or not CUDA can use them (Linux; 0 elsewhere). */
function nvidiaGpusInSystem(): number {
  try {
    return readdirSync('/proc/driver/nvidia/gpus').length;
  } catch {
    return 0;
  }
}

interface StepResult {
  loss: number;
  grads: Float64Array;
  weights: Float64Array;
}

// One training step of a small CSNN from fixed inputs and weights: forward, MSE loss on the firing rates,
// backward and an SGD update with momentum. The smooth surrogate (spiking: false) makes the spikes a
// continuous function of the inputs, so a rounding difference between devices cannot flip one at the threshold.
function trainingStep(device: Device): StepResult {
  const n = 4;
  const g = new Generator(11);
  const images = Float32Array.from({ length: n * 28 * 28 }, () => g.uniform());
  const labels = [3, 1, 4, 1];
  const model = models.csnn({ channels: 4, T: 2, surrogate: surrogate.atan({ alpha: 2, spiking: false }) });
  init.apply(model, 'ikun_v1', { seed: 11 });
  model.to(device);
  model.train();
  model.zeroGrad();
  const x = tensor(images, [n, 1, 28, 28], { device });
  const rate = model.forward(x);
  const { loss, grad } = losses.mseRate(rate, labels);
  model.backward(grad);
  const params = model.parameters();
  const concat = (arrays: ArrayLike<number>[]): Float64Array => {
    const out = new Float64Array(arrays.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a, at);
      at += a.length;
    }
    return out;
  };
  const grads = concat(params.map((p) => {
    if (!p.grad) throw new Error('the backward pass left a parameter without a gradient');
    return p.grad.toArray();
  }));
  new SGD(params, { lr: 0.1, momentum: 0.9 }).step();
  const weights = concat(params.map((p) => p.toArray()));
  for (const t of [x, rate, grad]) t.dispose();
  return { loss, grads, weights };
}

function norm(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}

function relativeError(a: Float64Array, reference: Float64Array): number {
  if (a.length !== reference.length) return Infinity;
  const diff = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) diff[i] = a[i]! - reference[i]!;
  const ref = norm(reference);
  return ref === 0 ? norm(diff) : norm(diff) / ref;
}

function compare(step: StepResult, reference: StepResult): { loss: number; gradients: number; weights: number } {
  return {
    loss: Math.abs(step.loss - reference.loss) / Math.max(Math.abs(reference.loss), Number.MIN_VALUE),
    gradients: relativeError(step.grads, reference.grads),
    weights: relativeError(step.weights, reference.weights),
  };
}

const sci = (v: number): string => (v === 0 ? '0' : v.toExponential(1).replace('.0e', 'e'));
const errorsText = (e: { loss: number; gradients: number; weights: number }): string =>
  `loss ${sci(e.loss)}, gradients ${sci(e.gradients)}, weights after the update ${sci(e.weights)}`;
const withinTolerance = (e: { loss: number; gradients: number; weights: number }): boolean =>
  [e.loss, e.gradients, e.weights].every((v) => Number.isFinite(v) && v <= SELF_TEST_TOLERANCE);

function timed<T>(f: () => T): { value: T; seconds: number } {
  const start = performance.now();
  const value = f();
  return { value, seconds: (performance.now() - start) / 1000 };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// The CPU's step is the reference. It must be finite and move the weights; where the AVX2 build of the neuron
// kernels runs, the baseline build must give the same step (the two are meant to agree bit for bit).
function cpuSelfTest(): { result: SelfTestResult; reference?: StepResult } {
  try {
    const { value: reference, seconds } = timed(() => trainingStep('cpu'));
    const gradNorm = norm(reference.grads);
    const finite = Number.isFinite(reference.loss) && Number.isFinite(gradNorm) && reference.weights.every(Number.isFinite);
    if (!finite || gradNorm === 0 || reference.loss <= 0) {
      return { result: { device: 'cpu', passed: false, seconds, loss: reference.loss, gradNorm,
        summary: `the training step gave loss ${reference.loss} and gradient norm ${gradNorm}; expected finite, non-zero values` } };
    }
    const kernels = getCpuKernels();
    if (kernels.active !== 'avx2') {
      return { reference, result: { device: 'cpu', passed: true, seconds, loss: reference.loss, gradNorm,
        summary: `training step: loss ${reference.loss.toFixed(4)}, gradient norm ${gradNorm.toFixed(4)} (baseline kernels; no AVX2 build to compare with)` } };
    }
    let baseline: StepResult;
    try {
      setCpuKernels('baseline');
      baseline = trainingStep('cpu');
    } finally {
      setCpuKernels('avx2');
    }
    const relativeError = compare(baseline, reference);
    const passed = withinTolerance(relativeError);
    return { reference, result: { device: 'cpu', passed, seconds, loss: reference.loss, gradNorm, relativeError,
      summary: `training step: loss ${reference.loss.toFixed(4)}, gradient norm ${gradNorm.toFixed(4)}; baseline vs AVX2 kernels: ${errorsText(relativeError)}` } };
  } catch (error) {
    return { result: { device: 'cpu', passed: false, seconds: 0, summary: 'the training step failed', error: message(error) } };
  }
}

function gpuSelfTest(device: `cuda:${number}`, reference: StepResult | undefined): SelfTestResult {
  if (!reference) return { device, passed: false, seconds: 0, summary: 'not run: the CPU reference step failed' };
  // On the exact fp32 products: the TF32 tensor cores (CUDA's default) round the GEMM inputs to 10 mantissa
  // bits, which this tolerance is not meant for; the check is that the GPU computes what the CPU does.
  const precision = native.cudaPrecision();
  try {
    native.cudaSetPrecision('fp32');
    const { value: step, seconds } = timed(() => trainingStep(device));
    const relativeError = compare(step, reference);
    const passed = withinTolerance(relativeError);
    return { device, passed, seconds, loss: step.loss, gradNorm: norm(step.grads), relativeError,
      summary: `relative error vs the CPU: ${errorsText(relativeError)} (fp32 products, tolerance ${sci(SELF_TEST_TOLERANCE)})` };
  } catch (error) {
    return { device, passed: false, seconds: 0, summary: 'the training step failed', error: message(error) };
  } finally {
    native.cudaSetPrecision(precision);
  }
}

/** What diagnose() asks of the binary and the system; tests stand in for a GPU this machine does not have. */
export interface DoctorProbe {
  buildInfo(): NativeBuildInfo;
  cudaInfo(): CudaInfo;
  cudaDeviceInfo(index: number): CudaDeviceInfo;
  nvidiaGpusInSystem(): number;
}

const systemProbe: DoctorProbe = {
  buildInfo: () => native.buildInfo(),
  cudaInfo: () => native.cudaInfo(),
  cudaDeviceInfo: (index) => native.cudaDeviceInfo(index),
  nvidiaGpusInSystem,
};

/** Everything `ikun doctor` reports; runs the self-tests (on the devices the probe reports). */
export function diagnose(probe: DoctorProbe = systemProbe): DoctorReport {
  const build = probe.buildInfo();
  const info = probe.cudaInfo();
  const problems: DoctorProblem[] = [];
  const devices: DoctorDevice[] = [];
  for (let i = 0; i < info.deviceCount; i++) {
    const d = probe.cudaDeviceInfo(i);
    const code = codeForCapability(d.major, d.minor, build.cuda);
    devices.push({ device: `cuda:${i}`, name: d.name, totalMemory: d.totalMemory, computeCapability: `${d.major}.${d.minor}`,
      multiprocessors: d.multiprocessors, ...code });
    if (code.code === 'none') {
      problems.push({ problem: `cuda:${i} (${d.name}): ${code.codeDetail}`,
        fix: `build ikun from source for it (needs nvcc): IKUN_CUDA_ARCHITECTURES=${d.major}${d.minor} IKUN_BUILD_FROM_SOURCE=1 npm rebuild ikun`,
      });
    }
  }
  const inSystem = probe.nvidiaGpusInSystem();
  if (info.deviceCount === 0) {
    const noGpu = info.reason === 'no CUDA GPU found';
    if (!info.compiled && inSystem > 0) {
      problems.push({ problem: `${inSystem} NVIDIA GPU${inSystem > 1 ? 's are' : ' is'} installed, but ${info.reason}`, fix: info.detail });
    } else if (info.compiled && !noGpu) {
      // The driver is too old, or CUDA cannot list the GPUs: a GPU is there but cannot be used.
      problems.push({ problem: info.reason, fix: info.detail || 'check the NVIDIA driver (nvidia-smi)' });
    }
  }

  const cpuTest = cpuSelfTest();
  const selfTest: SelfTestResult[] = [cpuTest.result];
  for (const d of devices) {
    if (d.code === 'none') {
      selfTest.push({ device: d.device, passed: false, seconds: 0, summary: `not run: ${d.codeDetail}` });
      continue;
    }
    selfTest.push(gpuSelfTest(d.device, cpuTest.reference));
  }
  // A device without code has its problem already; its self-test was not run.
  const withoutCode = new Set(devices.filter((d) => d.code === 'none').map((d) => d.device));
  for (const t of selfTest) {
    if (t.passed || withoutCode.has(t.device as DoctorDevice['device'])) continue;
    problems.push({
      problem: `self-test on ${t.device} failed: ${t.error ?? t.summary}`,
      fix: t.device === 'cpu'
        ? 'rebuild the native addon for this machine (IKUN_BUILD_FROM_SOURCE=1 npm rebuild ikun) and run ikun doctor again'
        : `check the GPU and its driver (nvidia-smi); use --device cpu meanwhile. If a rebuild from source (IKUN_BUILD_FROM_SOURCE=1 npm rebuild ikun) gives the same result, report it with the output of ikun doctor --json`,
    });
  }

  const cpu = cpus();
  const napi = Number(process.versions.napi);
  return {
    ikun: { version: ikunVersion() },
    node: { version: process.version, napi: Number.isFinite(napi) ? napi : null, platform: `${process.platform}-${process.arch}` },
    binary: { source: nativeBinary.source, path: nativeBinary.path, emulated: nativeBinary.emulated, napiVersion: build.napiVersion, compiler: build.compiler },
    cpu: { model: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length, features: cpuFeatures(), kernels: getCpuKernels(), threads: getNumThreads(), blas: build.blas },
    cuda: {
      compiled: info.compiled,
      available: info.deviceCount > 0,
      ...(info.deviceCount > 0 ? {} : { reason: info.reason, ...(info.detail ? { detail: info.detail } : {}) }),
      runtimeVersion: cudaVersion(info.runtimeVersion),
      driverVersion: cudaVersion(info.driverVersion),
      architectures: { sass: build.cuda.sass, ptx: build.cuda.ptx },
      devices,
    },
    selfTest,
    ok: problems.length === 0,
    problems,
  };
}

const yesNo = (v: boolean): string => (v ? 'yes' : 'no');
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** The report as a person reads it. */
export function formatReport(r: DoctorReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string): void => {
    lines.push(`${label.padEnd(11)}${text}`);
  };
  row('ikun', `${r.ikun.version} on Node ${r.node.version} (N-API ${r.node.napi ?? '?'}), ${r.node.platform}`);
  row('binary', `${r.binary.source}${r.binary.emulated ? ' (emulated CUDA test build)' : ''}: ${r.binary.path}`);
  row('', `N-API ${r.binary.napiVersion}, ${r.binary.compiler}`);
  row('CPU', `${r.cpu.model}, ${r.cpu.cores} core${r.cpu.cores === 1 ? '' : 's'}`);
  const f = r.cpu.features;
  if (f) row('', `x86-64-v2 ${yesNo(f.x86_64_v2)}, AVX ${yesNo(f.avx)}, AVX2 ${yesNo(f.avx2)}, FMA ${yesNo(f.fma)}, AVX-512 ${yesNo(f.avx512f)}`);
  row('kernels', `${r.cpu.kernels.active} build of the neuron kernels${r.cpu.kernels.avx2 ? ' (AVX2 usable; IKUN_CPU_KERNELS=baseline picks the other)' : ''}`);
  row('threads', `${r.cpu.threads} (ikun's pool; OpenBLAS runs single-threaded inside it)`);
  row('BLAS', `${r.cpu.blas.config} (core ${r.cpu.blas.core}, linked ${r.cpu.blas.linkage === 'static' ? 'statically' : 'as a shared library'})`);
  const c = r.cuda;
  if (!c.compiled) row('CUDA', 'not in this binary');
  else if (r.binary.emulated) row('CUDA', 'the emulated device of the tests (kernels compiled as C++, run on host threads)');
  else row('CUDA', `kernels for ${c.architectures.sass.map((a) => `sm_${a}`).join(', ')}${c.architectures.ptx.length ? ` + PTX ${c.architectures.ptx.map(capabilityText).join(', ')}` : ''}`);
  if (c.compiled && !r.binary.emulated) row('', `runtime ${c.runtimeVersion ?? 'unknown'} (linked statically), driver ${c.driverVersion ?? 'none'}`);
  if (!c.available) row('', `${c.reason}${c.detail ? ` (${c.detail})` : ''}`);
  for (const d of c.devices) {
    row(`GPU`, `${d.device} ${d.name}, ${gib(d.totalMemory)}, compute capability ${d.computeCapability}, ${d.multiprocessors} SMs`);
    row('', d.code === 'none' ? `NO CODE: ${d.codeDetail}` : d.codeDetail);
  }
  for (const [i, t] of r.selfTest.entries()) {
    const status = t.passed ? 'ok  ' : 'FAIL';
    row(i === 0 ? 'self-test' : '', `${t.device.padEnd(7)} ${status} ${t.summary}${t.error ? `: ${t.error}` : ''}${t.seconds > 0 ? ` (${t.seconds.toFixed(2)} s)` : ''}`);
  }
  lines.push('');
  if (r.ok) {
    lines.push(c.available ? `ok: the CPU and ${c.devices.length === 1 ? 'the GPU' : `all ${c.devices.length} GPUs`} work`
      : `ok: the CPU works; no GPU to use (${c.reason}), so ikun runs on the CPU`);
  } else {
    lines.push(`${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`);
    for (const p of r.problems) lines.push(`  ${p.problem}`, `    fix: ${p.fix}`);
  }
  return lines.join('\n');
}
