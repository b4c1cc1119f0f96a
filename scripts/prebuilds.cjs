#!/usr/bin/env node
// npm run prebuilds: the shipped binary, prebuilds/<platform>-<arch>/ikun.node, made by prebuildify (which drives
// node-gyp and binding.gyp): the CPU kernels, and the CUDA kernels when nvcc is found. npm pack takes it along;
// the install script uses it instead of compiling. node-gyp's rebuild empties build/ first, so no local build
// is left to shadow the new prebuild.
//
// Not named `prebuild`: npm would run a script of that name before every `npm run build`.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const env = { ...process.env };

// node-gyp compiles against the headers of this Node: where they sit next to it (/usr/include/node for
// /usr/bin/node), use them rather than downloading them from nodejs.org (CI machines may not reach it).
const nodePrefix = path.resolve(path.dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(path.join(nodePrefix, 'include', 'node', 'common.gypi'))) env.npm_config_nodedir = nodePrefix;
// node-gyp runs make with one job unless told otherwise.
if (!env.JOBS) env.JOBS = 'max';

// prebuildify runs `node-gyp` from PATH; npm puts its own node-gyp there for scripts.
const onPath = (name) => (env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, name)));
if (!onPath('node-gyp')) {
  console.error("ikun prebuilds: node-gyp is not on PATH; run this as 'npm run prebuilds' (npm provides node-gyp to its scripts)");
  process.exit(1);
}

const willHaveCuda = spawnSync(process.execPath, [path.join(__dirname, 'build-config.cjs'), 'gyp-cuda'], { cwd: root, env, encoding: 'utf8' }).stdout.trim() === '1';
const started = Date.now();
const result = spawnSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip'], { cwd: root, env, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(`ikun prebuilds: prebuildify failed (exit ${result.status ?? result.signal}); the build output above says why`);
  process.exit(result.status || 1);
}

const file = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'ikun.node');
if (!existsSync(file)) {
  console.error(`ikun prebuilds: prebuildify succeeded but ${file} does not exist`);
  process.exit(1);
}
// A CUDA build must carry the kernels' fatbinary; without it every GPU would say "no kernel image".
if (willHaveCuda) {
  const sections = spawnSync('readelf', ['-S', '-W', file], { encoding: 'utf8' });
  if (sections.status !== 0) {
    console.error(`ikun prebuilds: readelf -S ${file} failed: ${sections.stderr || sections.error?.message}`);
    process.exit(1);
  }
  if (!/\s\.nv_fatbin\s/.test(sections.stdout)) {
    console.error(`ikun prebuilds: ${file} was built with nvcc but has no .nv_fatbin section (no CUDA kernels in it)`);
    process.exit(1);
  }
}
const mib = (statSync(file).size / 2 ** 20).toFixed(1);
console.log(`ikun prebuilds: ${path.relative(root, file)} (${mib} MiB, ${willHaveCuda ? 'CPU + CUDA' : 'CPU only'}) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
