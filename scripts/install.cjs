#!/usr/bin/env node
// npm install hook: use a prebuilt CPU binary when one matches this platform (prebuilds/), otherwise build
// from source with cmake-js (CUDA kernels included when nvcc is found). IKUN_BUILD_FROM_SOURCE=1 forces
// the source build (e.g. to get the CUDA build where a CPU prebuild exists).
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const force = process.env.IKUN_BUILD_FROM_SOURCE === '1';

function prebuildLoads() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

if (!force && existsSync(path.join(root, 'prebuilds')) && prebuildLoads()) {
  console.log('ikun: using the prebuilt native addon');
  process.exit(0);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--parallel', String(Math.max(1, require('node:os').cpus().length))], {
  cwd: root,
  stdio: 'inherit',
});
if (result.status !== 0) {
  console.error(
    '\nikun: building the native addon failed. It needs cmake (>= 3.19), a C++17 compiler and OpenBLAS:\n' +
      '  Debian/Ubuntu: apt-get install cmake g++ libopenblas-dev\n' +
      'CUDA 13 (nvcc) is optional; without it ikun builds for the CPU only. Then run: npm rebuild ikun\n',
  );
  process.exit(result.status ?? 1);
}
