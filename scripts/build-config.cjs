#!/usr/bin/env node
// The build settings of the native addon in one place, for its two builds:
//   CMakeLists.txt (cmake-js: source installs, `npm run build:native`, the emulated test build) evaluates what
//     `node scripts/build-config.cjs cmake` prints;
//   binding.gyp (node-gyp, which prebuildify drives for the shipped binary: `npm run prebuilds`) expands the
//     gyp-* modes and compiles every .cu file through `node scripts/build-config.cjs nvcc IN OUT`, since gyp
//     knows no CUDA and a gyp rule runs one command line for all files of an extension.
// The source lists stay in sources.json. CMake adds nothing here for CUDA beyond the C++ standard it sets
// itself (CMAKE_CUDA_STANDARD 17) and the include folders of node and node-addon-api, which the .cu files
// do not use.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sources = JSON.parse(readFileSync(path.join(root, 'sources.json'), 'utf8'));

// Every C++ translation unit. x86-64-v2 is the baseline the shipped binary asks of a CPU; the neuron
// kernels carry their own AVX2 build (neuron_avx2.cpp) picked at run time. -fno-trapping-math lets GCC
// vectorise the branch-free selects of the kernels.
const CXX_FLAGS = ['-O3', '-march=x86-64-v2', '-mtune=generic', '-fno-trapping-math', '-Wall', '-Wextra', '-Wno-unused-parameter'];
// NDEBUG: CMake's Release configuration sets it and node-gyp's does not; both builds get it from here.
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a binding that throws while its environment is being torn down
// (worker.terminate() during a native call) cannot hand the error to JS; without it node-addon-api throws a
// second C++ exception out of the callback, and std::terminate takes down the whole process, every other
// thread included. With it the error is dropped, as the terminated JS would never see it anyway.
const DEFINES = ['NDEBUG', 'NAPI_VERSION=8', 'NODE_ADDON_API_CPP_EXCEPTIONS', 'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
  'NODE_ADDON_API_DISABLE_DEPRECATED'];
// Keeps the symbols of the static libraries (OpenBLAS, the CUDA runtime) private to the addon, so that they
// cannot clash with another addon's copy in the same process.
const LINK_FLAGS = ['-Wl,--exclude-libs,ALL'];

// Machine code (SASS) for Ampere (8.0, 8.6), Ada (8.9) and Hopper (9.0), and PTX for 9.0 that the driver
// compiles for newer GPUs.
const CUDA_SASS = [80, 86, 89, 90];
const CUDA_PTX = [90];
// -Xptxas: ptxas prints registers, shared memory and stack per kernel (-v) and fails the build on any register
// spill or local-memory use (the kernels are written to need neither; test/native/ptxas-gate.test.ts
// checks the gate itself).
const CUDA_FLAGS = ['-O3', '--expt-relaxed-constexpr', '-Xptxas=-v,-warn-spills,-warn-lmem-usage,--warning-as-error'];
// The neuron kernels compute the membrane with the same roundings as the CPU (no fused multiply-add), so
// that CPU and GPU fire the same spikes from the same inputs, even at the threshold.
const CUDA_FILE_FLAGS = { 'native/cuda/neuron.cu': ['-fmad=false'] };
// The CUDA runtime is linked statically: one binary runs with any driver new enough for the toolkit,
// and on machines without one (a dynamic libcudart.so.N would pin a toolkit version and fail to load there).
const CUDA_LIBRARIES = ['-lcudadevrt', '-lcudart_static', '-lrt', '-lpthread', '-ldl'];

// OpenBLAS for binding.gyp, where CMakeLists.txt looks for it too (its find_path / find_library PATHS): the
// static archive when there is one, so that the shipped binary needs no libopenblas on the user's machine.
const BLAS_INCLUDE_DIRS = ['/usr/include/x86_64-linux-gnu/openblas-pthread', '/usr/include/openblas-pthread', '/usr/include/openblas',
  '/usr/include', '/usr/include/x86_64-linux-gnu', '/usr/local/include'];
const BLAS_LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu/openblas-pthread', '/usr/lib/x86_64-linux-gnu', '/usr/local/lib', '/usr/lib64'];

/** OpenBLAS's header and library, or undefined when either is missing (scripts/install.cjs asks too). */
function locateBlas() {
  const include = BLAS_INCLUDE_DIRS.find((d) => existsSync(path.join(d, 'cblas.h')));
  const staticLibrary = BLAS_LIBRARY_DIRS.map((d) => path.join(d, 'libopenblas.a')).find((f) => existsSync(f));
  const sharedDir = BLAS_LIBRARY_DIRS.find((d) => existsSync(path.join(d, 'libopenblas.so')));
  if (!include || !(staticLibrary || sharedDir)) return undefined;
  return { include, libraries: staticLibrary ? [staticLibrary, '-lm'] : [`-L${sharedDir}`, '-lopenblas'], isStatic: Boolean(staticLibrary) };
}

function findBlas() {
  const blas = locateBlas();
  if (!blas)
    fail("ikun needs OpenBLAS to build: install it with 'apt-get install libopenblas-dev' (Debian/Ubuntu) or " +
      "'dnf install openblas-devel', then run 'npm install' again.");
  return blas;
}

/** nvcc's --generate-code options for the architectures above, as CMake writes them for 80-real ... 90. */
function gencodeFlags() {
  return CUDA_SASS.map((arch) => {
    const codes = [...(CUDA_PTX.includes(arch) ? [`compute_${arch}`] : []), `sm_${arch}`];
    return `--generate-code=arch=compute_${arch},code=[${codes.join(',')}]`;
  }).concat(CUDA_PTX.filter((arch) => !CUDA_SASS.includes(arch)).map((arch) => `--generate-code=arch=compute_${arch},code=[compute_${arch}]`));
}

/** CMake's notation of the same architectures: 80-real for SASS only, 90 for SASS and PTX, 100-virtual for PTX only. */
function cmakeArchitectures() {
  const all = [...new Set([...CUDA_SASS, ...CUDA_PTX])].sort((a, b) => a - b);
  return all.map((arch) => (CUDA_SASS.includes(arch) ? (CUDA_PTX.includes(arch) ? `${arch}` : `${arch}-real`) : `${arch}-virtual`));
}

// IKUN_WITH_CUDA=OFF (or 0) builds the CPU-only variant although nvcc exists, as CMake's option of that name.
function cudaWanted() {
  const setting = (process.env.IKUN_WITH_CUDA ?? '').trim().toUpperCase();
  return !['OFF', '0', 'FALSE', 'NO'].includes(setting);
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** nvcc as CMake looks for it: $CUDACXX, then PATH, then $CUDA_PATH/bin and /usr/local/cuda/bin. */
function findNvcc() {
  if (process.env.CUDACXX) return existsSync(process.env.CUDACXX) ? process.env.CUDACXX : undefined;
  const candidates = [onPath('nvcc'), process.env.CUDA_PATH && path.join(process.env.CUDA_PATH, 'bin', 'nvcc'), '/usr/local/cuda/bin/nvcc'];
  return candidates.find((p) => p && existsSync(p));
}

/** The folder holding libcudart_static.a, from nvcc's own view of its installation (it may be a wrapper script). */
function cudaLibraryDir(nvcc) {
  const r = spawnSync(nvcc, ['--dryrun', '-x', 'cu', '/dev/null', '-o', '/dev/null'], { encoding: 'utf8' });
  const line = `${r.stdout}${r.stderr}`.split('\n').find((l) => /LIBRARIES=/.test(l)) ?? '';
  const dirs = [...line.matchAll(/"-L([^"]+)"|-L(\S+)/g)].map((m) => m[1] ?? m[2]);
  const dir = dirs.find((d) => existsSync(path.join(d, 'libcudart_static.a')));
  if (!dir) fail(`cannot find libcudart_static.a next to ${nvcc} (looked in ${dirs.join(', ') || 'nothing: nvcc --dryrun named no library folder'})`);
  return path.normalize(dir);
}

function fail(message) {
  console.error(`ikun build: ${message}`);
  process.exit(1);
}

function cmakeList(values) {
  return values.map((v) => `"${v}"`).join(' ');
}

// CMake code: the flags as variables, read by CMakeLists.txt with cmake_language(EVAL CODE ...).
function cmakeCode() {
  const lines = [
    `set(IKUN_CXX_FLAGS ${cmakeList(CXX_FLAGS)})`,
    `set(IKUN_DEFINES ${cmakeList(DEFINES)})`,
    `set(IKUN_LINK_FLAGS ${cmakeList(LINK_FLAGS)})`,
    `set(IKUN_CUDA_FLAGS ${cmakeList(CUDA_FLAGS)})`,
    `set(IKUN_CUDA_DEFAULT_ARCHITECTURES ${cmakeList(cmakeArchitectures())})`,
    `set(IKUN_CUDA_FILES_WITH_FLAGS ${cmakeList(Object.keys(CUDA_FILE_FLAGS))})`,
  ];
  for (const [file, flags] of Object.entries(CUDA_FILE_FLAGS)) lines.push(`set(IKUN_CUDA_FILE_FLAGS_${file} ${cmakeList(flags)})`);
  return lines.join('\n');
}

// gyp reads its lists from command output split at spaces; no flag here contains one.
function words(values) {
  for (const v of values) if (/\s/.test(v)) fail(`'${v}' contains white space, which gyp would split`);
  return values.join(' ');
}

function relativeToRoot(file) {
  return path.relative(root, path.resolve(file)).split(path.sep).join('/');
}

/** nvcc's arguments for one .cu file: CMake's CUDA flags for it (CMAKE_CUDA_STANDARD 17, its Release -O3, -fPIC). */
function nvccArgs(input, output) {
  const defines = ['IKUN_WITH_CUDA=1', ...DEFINES].map((d) => `-D${d}`);
  return ['-std=c++17', ...defines, ...gencodeFlags(), '-Xcompiler=-fPIC', ...CUDA_FLAGS, ...(CUDA_FILE_FLAGS[relativeToRoot(input)] ?? []),
    '-c', input, '-o', output];
}

function cudaBuild() {
  if (!cudaWanted()) return undefined;
  return findNvcc();
}

function main(mode, args) {
switch (mode) {
  case 'cmake':
    console.log(cmakeCode());
    break;
  case 'gyp-cuda': {
    // 1 when binding.gyp compiles the CUDA kernels, else 0; the reason goes to the build log.
    const nvcc = cudaBuild();
    console.error(nvcc ? `ikun build: CUDA kernels with ${nvcc} for sm_${CUDA_SASS.join('/')} + PTX ${CUDA_PTX.join('/')}`
      : `ikun build: CPU only (${cudaWanted() ? 'nvcc not found' : 'IKUN_WITH_CUDA is off'})`);
    console.log(nvcc ? 1 : 0);
    break;
  }
  case 'gyp-sources':
    console.log(words([...sources.common, ...(cudaBuild() ? sources.cuda : sources.cpuOnly)]));
    break;
  case 'gyp-cuda-headers':
    // What the .cu files include: a change to any of them recompiles them (gyp rules know no header scanning).
    console.log(words(['scripts/build-config.cjs', ...['native/cuda', 'native/common'].flatMap((dir) =>
      readdirSync(path.join(root, dir)).filter((f) => /\.(cuh|h)$/.test(f)).map((f) => `${dir}/${f}`))]));
    break;
  case 'gyp-cxxflags':
    console.log(words(CXX_FLAGS));
    break;
  case 'gyp-defines':
    console.log(words([...DEFINES, ...(findBlas().isStatic ? ['IKUN_BLAS_STATIC=1'] : [])]));
    break;
  case 'gyp-blas-include':
    console.log(words([findBlas().include]));
    break;
  case 'gyp-blas-libraries':
    console.log(words(findBlas().libraries));
    break;
  case 'gyp-ldflags':
    console.log(words(LINK_FLAGS));
    break;
  case 'gyp-cuda-defines':
    // IKUN_CUDA_SASS / IKUN_CUDA_PTX record the architectures compiled in, for `ikun doctor`.
    console.log(words(['IKUN_WITH_CUDA=1', `IKUN_CUDA_SASS=${CUDA_SASS.join(',')}`, `IKUN_CUDA_PTX=${CUDA_PTX.join(',')}`]));
    break;
  case 'gyp-cuda-libraries': {
    const nvcc = cudaBuild() ?? fail('gyp-cuda-libraries: no nvcc');
    console.log(words([`-L${cudaLibraryDir(nvcc)}`, ...CUDA_LIBRARIES]));
    break;
  }
  case 'nvcc-args':
    // What `nvcc IN OUT` runs, as JSON (for the test that compares it with CMake's command for the same file).
    if (!args[0] || !args[1]) fail('usage: build-config.cjs nvcc-args IN.cu OUT.o');
    console.log(JSON.stringify(nvccArgs(args[0], args[1])));
    break;
  case 'nvcc': {
    // nvcc IN OUT: one .cu file to an object file, with the flags CMake gives it.
    const [input, output] = args;
    if (!input || !output) fail('usage: build-config.cjs nvcc IN.cu OUT.o');
    const nvcc = cudaBuild() ?? fail('nvcc: not found (and binding.gyp asked to compile CUDA)');
    console.error(`nvcc ${relativeToRoot(input)}`);
    const r = spawnSync(nvcc, nvccArgs(input, output), { stdio: 'inherit' });
    if (r.error) fail(`could not run ${nvcc}: ${r.error.message}`);
    process.exit(r.status ?? 1);
  }
  default:
    fail(`unknown mode '${mode ?? ''}'; modes: cmake, gyp-cuda, gyp-sources, gyp-cuda-headers, gyp-cxxflags, gyp-defines, gyp-blas-include, gyp-blas-libraries, gyp-ldflags, gyp-cuda-defines, gyp-cuda-libraries, nvcc IN OUT, nvcc-args IN OUT`);
}
}

if (require.main === module) main(process.argv[2], process.argv.slice(3));

module.exports = { CXX_FLAGS, DEFINES, CUDA_SASS, CUDA_PTX, CUDA_FLAGS, CUDA_FILE_FLAGS, locateBlas, findNvcc };
