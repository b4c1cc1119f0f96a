// `ikun doctor` on this machine (the compiled bin, as a user runs it), and its verdicts on GPUs this machine does
// not have (a stand-in probe: a GPU without code in the binary, a driver too old, a CPU-only binary beside a GPU).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeForCapability, diagnose, formatReport, type DoctorProbe, type DoctorReport } from '../../lib/cli/doctor-report.js';
import { native } from '../../lib/native.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
const shipped = { compiled: true, emulated: false, sass: [80, 86, 89, 90], ptx: [90] };

describe('ikun doctor', () => {
  it('--json reports the binary, the CPU, the BLAS and CUDA, and the CPU self-test passes; exit 0 without a GPU', () => {
    const r = run(['doctor', '--json']);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(['prebuilt', 'built']).toContain(report.binary.source);
    expect(existsSync(report.binary.path)).toBe(true);
    expect(report.binary.napiVersion).toBe(8);
    expect(report.cpu.kernels).toEqual(native.cpuKernels());
    expect(report.cpu.threads).toBe(native.threadCount());
    expect(report.cpu.blas.config).toMatch(/^OpenBLAS \d/);
    expect(typeof report.cuda.available).toBe('boolean');
    expect(report.cuda.devices).toHaveLength(native.cudaDeviceCount());
    if (!report.cuda.available) expect(report.cuda.reason).toBe(native.cudaInfo().reason);
    const cpu = report.selfTest[0]!;
    expect(cpu.device).toBe('cpu');
    expect(cpu.passed, cpu.summary).toBe(true);
    expect(cpu.gradNorm).toBeGreaterThan(0);
    if (native.cpuKernels().active === 'avx2') expect(cpu.relativeError).toEqual({ loss: 0, gradients: 0, weights: 0 }); // bit for bit
    expect(r.status, r.stderr).toBe(report.ok ? 0 : 1);
    // No NVIDIA driver here (CI): nothing that could be broken, so it must say ok and exit 0.
    if (!existsSync('/proc/driver/nvidia/gpus')) expect({ status: r.status, problems: report.problems }).toEqual({ status: 0, problems: [] });
  });

  it('prints a report a person reads, ending with the verdict', () => {
    const r = run(['doctor']);
    expect(r.stdout).toMatch(/^ikun {7}\d+\.\d+\.\d+ on Node v\d+/);
    expect(r.stdout).toMatch(/\nbinary {5}(prebuilt|built): \//);
    expect(r.stdout).toMatch(/\nBLAS {7}OpenBLAS /);
    expect(r.stdout).toMatch(/\nself-test  cpu {5}ok {3}training step: loss /);
    if (native.cudaDeviceCount() === 0 && r.status === 0) expect(r.stdout).toMatch(/\nok: the CPU works; no GPU to use \(.+\), so ikun runs on the CPU$/m);
  });

  it('exits 2 on a bad flag, 0 with --help', () => {
    const bad = run(['doctor', '--gpu']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^ikun: unknown flag --gpu\nRun 'ikun doctor --help'/);
    const help = run(['doctor', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ikun doctor \[--json\]/);
    expect(run(['--help']).stdout).toMatch(/\n {2}doctor {4}check the installation/);
  });
});

describe('which GPUs the binary has code for', () => {
  it('machine code of the same major version and no higher minor, else PTX of no higher capability', () => {
    expect(codeForCapability(8, 0, shipped)).toEqual({ code: 'sass', codeDetail: 'machine code for sm_80' });
    expect(codeForCapability(8, 6, shipped).codeDetail).toBe('machine code for sm_86');
    expect(codeForCapability(8, 7, shipped).codeDetail).toBe('machine code for sm_86'); // Jetson Orin runs sm_86 code
    expect(codeForCapability(8, 9, shipped).codeDetail).toBe('machine code for sm_89');
    expect(codeForCapability(9, 0, shipped).codeDetail).toBe('machine code for sm_90');
    expect(codeForCapability(10, 0, shipped)).toEqual({ code: 'ptx', codeDetail: 'PTX 9.0, compiled by the driver at first use' });
    expect(codeForCapability(12, 0, shipped).code).toBe('ptx');
    expect(codeForCapability(7, 5, shipped)).toEqual({ code: 'none', codeDetail: 'no code for compute capability 7.5 (the binary has sm_80, sm_86, sm_89, sm_90, PTX 9.0)' });
    expect(codeForCapability(10, 0, { ...shipped, ptx: [] }).code).toBe('none');
    expect(codeForCapability(7, 5, { ...shipped, emulated: true }).code).toBe('emulated');
  });
});

describe('the verdict on GPUs that cannot be used', () => {
  const probe = (over: Partial<DoctorProbe>): DoctorProbe => ({
    buildInfo: () => ({ ...native.buildInfo(), cuda: shipped }),
    cudaInfo: () => ({ compiled: true, available: false, deviceCount: 0, runtimeVersion: 13000, driverVersion: 0, reason: 'no CUDA GPU found', detail: 'no NVIDIA driver is installed or loaded' }),
    cudaDeviceInfo: () => {
      throw new Error('no device');
    },
    nvidiaGpusInSystem: () => 0,
    ...over,
  });

  it('no GPU at all: ok, the CPU is used', () => {
    const report = diagnose(probe({}));
    expect(report.ok).toBe(true);
    expect(report.cuda).toMatchObject({ available: false, reason: 'no CUDA GPU found', devices: [] });
    expect(report.selfTest.map((t) => t.device)).toEqual(['cpu']);
  });

  it('a GPU the binary has no code for: not ok, with the source build for its architecture as the fix', () => {
    const report = diagnose(probe({
      cudaInfo: () => ({ compiled: true, available: true, deviceCount: 1, runtimeVersion: 13000, driverVersion: 13000, reason: '', detail: '' }),
      cudaDeviceInfo: () => ({ name: 'Tesla T4', totalMemory: 16 * 2 ** 30, major: 7, minor: 5, multiprocessors: 40 }),
    }));
    expect(report.ok).toBe(false);
    expect(report.cuda.devices[0]).toMatchObject({ device: 'cuda:0', computeCapability: '7.5', code: 'none' });
    expect(report.selfTest[1]).toMatchObject({ device: 'cuda:0', passed: false });
    expect(report.problems).toEqual([{
      problem: 'cuda:0 (Tesla T4): no code for compute capability 7.5 (the binary has sm_80, sm_86, sm_89, sm_90, PTX 9.0)',
      fix: 'build ikun from source for it (needs nvcc): IKUN_CUDA_ARCHITECTURES=75 IKUN_BUILD_FROM_SOURCE=1 npm rebuild ikun',
    }]);
    const text = formatReport(report);
    expect(text).toMatch(/\nGPU {8}cuda:0 Tesla T4, 16\.0 GiB, compute capability 7\.5, 40 SMs\n {11}NO CODE: /);
    expect(text).toMatch(/\n1 problem:\n {2}cuda:0 \(Tesla T4\): no code .*\n {4}fix: build ikun from source/);
  });

  it('a driver too old for the runtime: not ok, the fix is the driver update', () => {
    const report = diagnose(probe({
      cudaInfo: () => ({ compiled: true, available: false, deviceCount: 0, runtimeVersion: 13000, driverVersion: 12020,
        reason: 'the NVIDIA driver is too old for this build of ikun', detail: 'the driver supports CUDA 12.2, ikun was built with CUDA 13.0; update the NVIDIA driver' }),
    }));
    expect(report.ok).toBe(false);
    expect(report.cuda.driverVersion).toBe('12.2');
    expect(report.problems).toEqual([{ problem: 'the NVIDIA driver is too old for this build of ikun', fix: 'the driver supports CUDA 12.2, ikun was built with CUDA 13.0; update the NVIDIA driver' }]);
  });

  it('a binary without CUDA on a machine with an NVIDIA GPU: not ok; without a GPU: ok', () => {
    const cpuOnly = {
      buildInfo: () => ({ ...native.buildInfo(), cuda: { compiled: false, emulated: false, sass: [], ptx: [] } }),
      cudaInfo: () => ({ compiled: false, available: false, deviceCount: 0, runtimeVersion: 0, driverVersion: 0,
        reason: 'this build of ikun has no CUDA support', detail: 'it was built without nvcc; ...' }),
    };
    const withGpu = diagnose(probe({ ...cpuOnly, nvidiaGpusInSystem: () => 2 }));
    expect(withGpu.ok).toBe(false);
    expect(withGpu.problems[0]!.problem).toBe('2 NVIDIA GPUs are installed, but this build of ikun has no CUDA support');
    expect(diagnose(probe(cpuOnly)).ok).toBe(true);
  });
});
