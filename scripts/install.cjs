#!/usr/bin/env node
// npm install hook. Uses the prebuilt binary that the package ships (prebuilds/<platform>-<arch>/ikun.node: CPU
// kernels and CUDA kernels in one file) when it loads on this machine: seconds, no compiler. Otherwise builds
// from source with cmake-js (CMakeLists.txt; CUDA kernels too when nvcc is found), saying why.
//   IKUN_BUILD_FROM_SOURCE=1     build from source even where the prebuilt binary loads
//   IKUN_WITH_CUDA=OFF           a source build without the CUDA kernels even where nvcc is found
//   IKUN_CUDA_ARCHITECTURES=75   the GPU architectures of a source build, in CMake's notation (default: those
//                                of the prebuilt binary, scripts/build-config.cjs)
// When the build fails, npm rolls the installation back: the message names what is missing and says to run
// `npm install` again once it is installed.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { locateBlas } = require('./build-config.cjs');

const root = path.resolve(__dirname, '..');
const platform = `${process.platform}-${process.arch}`;
const prebuilt = path.join(root, 'prebuilds', platform, 'ikun.node');
const built = path.join(root, 'build', 'Release', 'ikun.node');

/** Why the addon in `file` does not load in a fresh node process, or null when it does. */
function loadFailure(file) {
  const check = `const addon = require(${JSON.stringify(file)});
if (typeof addon.abiVersion !== 'number') throw new Error('it is not an ikun addon (no abiVersion)');`;
  const r = spawnSync(process.execPath, ['-e', check], { encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return null;
  if (r.error) return r.error.message;
  if (r.signal) return `node was killed by ${r.signal} while loading it`;
  // node prints the stack of the uncaught error; its first "Error: ..." line is the cause (e.g. a missing GLIBC_2.38).
  const line = r.stderr.split('\n').find((l) => /^\w*Error\b.*:/.test(l.trim()));
  return (line ?? r.stderr.trim().split('\n').pop() ?? `exit status ${r.status}`).trim();
}

function onPath(name) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, name)));
}

/** The build tools that are missing, each with its Debian/Ubuntu and Fedora package. */
function missingTools() {
  const missing = [];
  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  const version = /cmake version (\d+)\.(\d+)/.exec(cmake.stdout ?? '');
  if (cmake.status !== 0 || !version) missing.push({ what: 'cmake (>= 3.19)', apt: 'cmake', dnf: 'cmake' });
  else if (Number(version[1]) < 3 || (Number(version[1]) === 3 && Number(version[2]) < 19))
    missing.push({ what: `cmake >= 3.19 (this one is ${version[1]}.${version[2]})`, apt: 'cmake', dnf: 'cmake' });
  const cxx = process.env.CXX ? existsSync(process.env.CXX) || onPath(process.env.CXX) : ['c++', 'g++', 'clang++'].some(onPath);
  if (!cxx) missing.push({ what: `a C++17 compiler (${process.env.CXX ? `CXX=${process.env.CXX} not found` : 'g++'})`, apt: 'g++', dnf: 'gcc-c++' });
  if (!onPath('make') && !onPath('ninja')) missing.push({ what: 'make (or ninja)', apt: 'make', dnf: 'make' });
  if (!locateBlas()) missing.push({ what: 'OpenBLAS (cblas.h and libopenblas)', apt: 'libopenblas-dev', dnf: 'openblas-devel' });
  return missing;
}

function failBuild(why, cause, missing) {
  const tools = missing.length > 0 ? missing : [
    { apt: 'cmake', dnf: 'cmake' }, { apt: 'g++', dnf: 'gcc-c++' }, { apt: 'make', dnf: 'make' }, { apt: 'libopenblas-dev', dnf: 'openblas-devel' },
  ];
  console.error(
    `\nikun: ${why}.\nA source build was needed because ${cause}.\n` +
      (missing.length > 0 ? `Missing: ${missing.map((m) => m.what).join(', ')}.\n` : 'The build needs cmake (>= 3.19), a C++17 compiler, make and OpenBLAS.\n') +
      `Install ${missing.length === 1 ? 'it' : 'them'}, then run npm install again:\n` +
      `  Debian/Ubuntu:  apt-get install ${tools.map((t) => t.apt).join(' ')}\n` +
      `  Fedora/RHEL:    dnf install ${tools.map((t) => t.dnf).join(' ')}\n` +
      'CUDA 13 (nvcc) is optional: without it the build has the CPU kernels only.\n',
  );
  process.exit(1);
}

function buildFromSource(cause) {
  console.log(`ikun: building the native addon from source because ${cause}`);
  const missing = missingTools();
  if (missing.length > 0) failBuild('cannot build the native addon from source', cause, missing);
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--parallel', String(Math.max(1, os.cpus().length))];
  // Given on the command line, they override what an earlier build left in CMake's cache.
  if (process.env.IKUN_WITH_CUDA) args.push(`--CDIKUN_WITH_CUDA=${process.env.IKUN_WITH_CUDA}`);
  if (process.env.IKUN_CUDA_ARCHITECTURES) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.IKUN_CUDA_ARCHITECTURES}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0)
    failBuild(`building the native addon from source failed (cmake-js exit ${result.status ?? result.signal}; the output above says where)`, cause, missingTools());
  const failure = loadFailure(built);
  if (failure) {
    console.error(`\nikun: the native addon built from source (${built}) does not load: ${failure}`);
    process.exit(1);
  }
  console.log(`ikun: built ${path.relative(root, built)}`);
}

function main() {
  if (process.env.IKUN_BUILD_FROM_SOURCE === '1') return buildFromSource('IKUN_BUILD_FROM_SOURCE=1 is set');
  if (!existsSync(prebuilt)) return buildFromSource(`${path.relative(root, prebuilt)} does not exist (${platform === 'linux-x64' ? "a git checkout has none until 'npm run prebuilds'" : 'prebuilt binaries exist for linux-x64 only'})`);
  const failure = loadFailure(prebuilt);
  if (failure) return buildFromSource(`the prebuilt binary ${path.relative(root, prebuilt)} does not load on this machine: ${failure}`);
  console.log(`ikun: using the prebuilt binary ${path.relative(root, prebuilt)}`);
}

main();
