#!/usr/bin/env node
// What each tensor-core GEMM kernel (native/cuda/gemm.cuh, gemmTensorCoreKernel: TF32, and its bf16 twin)
// issues per 16-deep k slice of its main loop, counted in the PTX that nvcc emits for one architecture:
// instructions, mma, global loads (a bf16 mma.m16n8k16 does the products of two TF32 mma.m16n8k8, so compare
// the kernels' instructions per slice). The kernels are bounded by the instructions their warps issue (the loaders' index arithmetic),
// not by the tensor cores, so this static count tells whether a change to a loader pays, on a machine
// without a GPU. Counted on the hot path: whole slices, and 16-byte aligned lines where a loader has them
// (IKUN_TF32_HOT_PATH_ONLY leaves the other staging variants out of the loop); PTX is not SASS, so the
// figures compare versions, they are not cycle counts.
//
//   node scripts/tf32-loop-stats.cjs [--arch sm_90] [FILE.cu ...]   (default: conv2d.cu and linear.cu)
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { CUDA_FLAGS, DEFINES, findNvcc } = require('./build-config.cjs');

const root = path.resolve(__dirname, '..');

function parseArgs(argv) {
  const options = { arch: 'sm_90', files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') options.arch = argv[++i];
    else if (argv[i].startsWith('--')) throw new Error(`unknown flag ${argv[i]} (flags: --arch sm_XY)`);
    else options.files.push(argv[i]);
  }
  if (!/^sm_\d+$/.test(options.arch ?? '')) throw new Error(`--arch must look like sm_90, got '${options.arch}'`);
  if (options.files.length === 0) options.files = ['native/cuda/conv2d.cu', 'native/cuda/linear.cu'];
  return options;
}

function compileToPtx(nvcc, file, arch, dir) {
  const out = path.join(dir, `${path.basename(file, '.cu')}.ptx`);
  const flags = CUDA_FLAGS.filter((f) => !f.startsWith('-Xptxas'));
  const defines = ['IKUN_WITH_CUDA=1', 'IKUN_TF32_HOT_PATH_ONLY=1', ...DEFINES].map((d) => `-D${d}`);
  const r = spawnSync(nvcc, ['-std=c++17', ...defines, `-arch=${arch}`, ...flags, '-ptx', path.resolve(root, file), '-o', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nvcc failed on ${file}:\n${r.stderr}`);
  return readFileSync(out, 'utf8');
}

// The loop with the most mma: the span from a label to the last backward branch to it.
function mainLoop(body) {
  const lines = body.split('\n').map((l) => l.trim());
  const labels = new Map();
  lines.forEach((l, i) => { if (/^\$L__BB\d+_\d+:$/.test(l)) labels.set(l.slice(0, -1), i); });
  let best = null;
  lines.forEach((l, i) => {
    const m = /bra(?:\.uni)?\s+(\$L__BB\d+_\d+);/.exec(l);
    if (!m || !labels.has(m[1]) || labels.get(m[1]) >= i) return;
    const span = lines.slice(labels.get(m[1]), i + 1);
    const mma = span.filter((x) => x.includes('mma.sync')).length;
    if (!best || mma > best.mma || (mma === best.mma && span.length > best.span.length)) best = { mma, span };
  });
  if (!best) return null;
  const instructions = best.span.filter((x) => x && !x.startsWith('//') && !x.startsWith('.') && !x.endsWith(':') && x !== '{' && x !== '}');
  return {
    instructions: instructions.length,
    mma: best.mma,
    globalLoads: instructions.filter((x) => x.includes('ld.global')).length,
    sharedLoads: instructions.filter((x) => x.includes('ld.shared')).length,
  };
}

// gemmTensorCoreKernel<ALoader, BLoader, Store, MaskedTaps, Bf16>'s template arguments, demangled by c++filt
// (binutils), without namespaces; the mangled name when c++filt is missing.
function kernelName(mangled) {
  const r = spawnSync('c++filt', [mangled], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) return mangled;
  const name = r.stdout.trim().replace(/ikun::cuda::|\(anonymous namespace\)::/g, '');
  const open = name.indexOf('gemmTensorCoreKernel<') + 'gemmTensorCoreKernel<'.length;
  let depth = 1, i = open;
  for (; i < name.length && depth > 0; i++) depth += name[i] === '<' ? 1 : name[i] === '>' ? -1 : 0;
  // the last two arguments say whether B's bounds tests use the masked taps (small conv kernels) and whether
  // the inputs are bf16
  const args = name.slice(open, i - 1).replace(/<float>/g, '').replace(/<float, /g, '<').trim();
  const m = /, (true|false), (true|false)$/.exec(args);
  if (!m) return args;
  return `${args.slice(0, m.index)}${m[1] === 'true' ? ' (masked taps)' : ''}${m[2] === 'true' ? ' [bf16]' : ''}`;
}

function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`tf32-loop-stats: ${error.message}`);
    process.exit(2);
  }
  const nvcc = findNvcc();
  if (!nvcc) {
    console.error('tf32-loop-stats: nvcc was not found (PATH, CUDA_PATH, /usr/local/cuda); it compiles the kernels to PTX');
    process.exit(2);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'ikun-tf32-stats-'));
  try {
    const rows = [];
    for (const file of options.files) {
      const ptx = compileToPtx(nvcc, file, options.arch, dir);
      for (const m of ptx.matchAll(/\.entry (\S+)\((?:.|\n)*?\n\{((?:.|\n)*?)\n\}/g)) {
        if (!m[1].includes('gemmTensorCoreKernel')) continue;
        const loop = mainLoop(m[2]);
        if (loop) rows.push({ file: path.basename(file), kernel: kernelName(m[1]), ...loop });
      }
    }
    console.log(`Tensor-core GEMM main loop per 16-deep slice (TF32; [bf16]: the bf16 twin), PTX for ${options.arch} (hot path: whole slices, aligned lines; one warp's instructions)`);
    const header = ['file', 'kernel (A loader, B loader, store)', 'instructions', 'mma', 'per mma', 'ld.global', 'ld.shared'];
    const table = rows.map((r) => [r.file, r.kernel, String(r.instructions), String(r.mma), (r.instructions / r.mma).toFixed(1), String(r.globalLoads), String(r.sharedLoads)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
    const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ');
    console.log(line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const t of table) console.log(line(t));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
