// node dist/bench/gpu-check.js [--small] [--device cuda:N] [--filter TEXT]
// Runs every op, a CSNN training step and a Hessian-vector product on a CUDA device and on the CPU with
// the same random data, prints one table (op, shape, dtype, max relative error, pass) and exits 1 when any
// check fails, 2 on bad flags, 3 when no CUDA device can be used. Plain node: a GPU machine may have no
// vitest. --small runs the sizes the emulated device of the tests uses (IKUN_CUDA_EMULATE=1).
import { cuda, native } from '../lib/index.js';
import { checkCase, opCases, type CaseResult } from './gpu-cases.js';

interface Flags {
  small: boolean;
  device: string;
  filter: string | null;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { small: false, device: 'cuda:0', filter: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--small') flags.small = true;
    else if (arg === '--device' || arg === '--filter') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      if (arg === '--device') {
        if (!/^cuda(:\d+)?$/.test(value)) throw new Error(`--device must be cuda or cuda:N, got '${value}'`);
        flags.device = value;
      } else flags.filter = value;
    } else if (arg === '--help') {
      console.log('Usage: node dist/bench/gpu-check.js [--small] [--device cuda:N] [--filter TEXT]');
      process.exit(0);
    } else throw new Error(`unknown flag ${arg}`);
  }
  return flags;
}

function format(error: number): string {
  return Number.isNaN(error) ? 'NaN' : error === 0 ? '0' : error.toExponential(2);
}

function main(): number {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    console.error(`gpu-check: ${(error as Error).message}`);
    return 2;
  }
  if (!cuda.isAvailable()) {
    console.error(`gpu-check: no CUDA device can be used: ${cuda.unavailableReason()}`);
    return 3;
  }
  const index = flags.device === 'cuda' ? 0 : Number(flags.device.slice(5));
  const props = cuda.getDeviceProperties(index);
  console.log(`gpu-check on cuda:${index}: ${props.name} (compute capability ${props.major}.${props.minor}, ` +
    `${(props.totalMemory / 2 ** 30).toFixed(1)} GiB, ${props.multiprocessors} SMs), ${flags.small ? 'small' : 'medium'} sizes`);
  // The fragment layouts of the tensor-core wrappers first: the emulation the test suite relies on follows
  // the PTX ISA's layouts, and this is where the real instruction confirms them.
  const layoutErrors = native.cudaMmaLayoutCheck(index);
  const layoutOk = layoutErrors.tf32 === 0 && layoutErrors.bf16 === 0;
  console.log(`mma.m16n8k8 TF32 fragment layout (exact small-integer product): max error ${layoutErrors.tf32}, ${layoutErrors.tf32 === 0 ? 'pass' : 'FAIL'}`);
  console.log(`mma.m16n8k16 bf16 fragment layout (exact small-integer product): max error ${layoutErrors.bf16}, ${layoutErrors.bf16 === 0 ? 'pass' : 'FAIL'}`);
  const cases = opCases(flags.small ? 'small' : 'medium').filter((c) => !flags.filter || `${c.op} ${c.shape}`.includes(flags.filter));
  const start = performance.now();
  const results: CaseResult[] = [];
  const widths = { op: 48, shape: 60 };
  console.log(`${'op'.padEnd(widths.op)} | ${'shape'.padEnd(widths.shape)} | dtype   | max rel. error | tolerance | pass`);
  console.log(`${'-'.repeat(widths.op)}-|-${'-'.repeat(widths.shape)}-|---------|----------------|-----------|-----`);
  for (const c of cases) {
    const r = checkCase(c, `cuda:${index}`);
    results.push(r);
    console.log(`${r.op.padEnd(widths.op)} | ${r.shape.padEnd(widths.shape)} | ${r.dtype.padEnd(7)} | ${format(r.error).padStart(14)} | ` +
      `${r.tolerance.toExponential(0).padStart(9)} | ${r.pass ? 'yes' : 'NO'}${r.problem ? `  (${r.problem})` : ''}`);
  }
  cuda.synchronize(index);
  const failed = results.filter((r) => !r.pass);
  const stats = cuda.memoryStats(index);
  console.log(`\n${results.length - failed.length} of ${results.length} checks passed in ${((performance.now() - start) / 1000).toFixed(1)} s; ` +
    `peak device memory ${(stats.peakAllocated / 2 ** 20).toFixed(1)} MiB`);
  return failed.length === 0 && layoutOk ? 0 : 1;
}

process.exitCode = main();
