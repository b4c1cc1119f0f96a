// The two builds of the native addon compile with the same flags: CMakeLists.txt (cmake-js) and binding.gyp
// (node-gyp, which prebuildify drives for the shipped binary) both take them from scripts/build-config.cjs.
// Both are configured here (nothing is compiled) and the commands they generate are compared.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../..');
const hasNvcc = spawnSync('nvcc', ['--version']).status === 0;
const sources = JSON.parse(readFileSync(join(root, 'sources.json'), 'utf8')) as { cuda: string[] };
const cudaSources = sources.cuda.filter((f) => f.endsWith('.cu'));

function buildConfig(...args: string[]): string {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-config.cjs'), ...args], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build-config.cjs ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** binding.gyp's nvcc command for one file (the gyp rule runs `build-config.cjs nvcc IN OUT`), without -c IN -o OUT. */
function gypNvccFlags(file: string): string[] {
  const args = JSON.parse(buildConfig('nvcc-args', file, 'out.o')) as string[];
  expect(args.slice(-4)).toEqual(['-c', file, '-o', 'out.o']);
  return args.slice(0, -4);
}

/** `  KEY = value` lines of the ninja build statement that compiles `file`. */
function ninjaVariables(ninja: string, file: string): Record<string, string[]> {
  const start = ninja.split('\n').findIndex((l) => l.startsWith('build ') && l.includes(` ${join(root, file)}`));
  if (start < 0) throw new Error(`build.ninja has no build statement for ${file}`);
  const vars: Record<string, string[]> = {};
  for (const line of ninja.split('\n').slice(start + 1)) {
    const m = /^ {2}(\w+) = (.*)$/.exec(line);
    if (!m) break;
    vars[m[1]!] = m[2]!.trim().split(/\s+/).filter(Boolean);
  }
  return vars;
}

/** A make variable of node-gyp's ikun.target.mk (`NAME := \` then one value per line). */
function makeList(mk: string, name: string): string[] {
  const lines = mk.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${name} :=`));
  if (start < 0) throw new Error(`ikun.target.mk has no ${name}`);
  const values: string[] = [];
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]!.replace(/^.*?:=/, '').replace(/\\$/, '').trim();
    if (line) values.push(line.replace(/^'(.*)'$/, '$1'));
    if (!lines[i]!.endsWith('\\')) break;
  }
  return values;
}

describe('scripts/build-config.cjs', () => {
  it('gives nvcc the four architectures with PTX for 9.0, the ptxas gate, and -fmad=false for the neuron kernels only', () => {
    for (const file of cudaSources) {
      const flags = gypNvccFlags(file);
      expect(flags.filter((f) => f.startsWith('--generate-code='))).toEqual([
        '--generate-code=arch=compute_80,code=[sm_80]', '--generate-code=arch=compute_86,code=[sm_86]',
        '--generate-code=arch=compute_89,code=[sm_89]', '--generate-code=arch=compute_90,code=[compute_90,sm_90]']);
      for (const f of ['-O3', '--expt-relaxed-constexpr', '-Xptxas=-v,-warn-spills,-warn-lmem-usage,--warning-as-error', '-Xcompiler=-fPIC', '-DIKUN_WITH_CUDA=1', '-std=c++17'])
        expect(flags, `${file}: ${f}`).toContain(f);
      expect(flags.includes('-fmad=false'), file).toBe(file === 'native/cuda/neuron.cu');
    }
  });

  it('refuses an unknown mode, naming the modes', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-config.cjs'), 'flags'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown mode 'flags'; modes: cmake, gyp-cuda/);
  });
});

describe.skipIf(!hasNvcc)('CMakeLists.txt and binding.gyp, configured side by side', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ikun-build-config-'));
  let ninja = '';
  let mk = '';

  beforeAll(() => {
    const cmake = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js'), 'configure', '--out', join(dir, 'cmake')], { cwd: root, encoding: 'utf8', timeout: 300_000 });
    if (cmake.status !== 0) throw new Error(`cmake-js configure failed:\n${cmake.stdout}\n${cmake.stderr}`);
    ninja = readFileSync(join(dir, 'cmake', 'build.ninja'), 'utf8');

    // node-gyp writes build/ beside binding.gyp: configure a copy, not the checkout (its build/ may hold a build).
    const copy = join(dir, 'gyp');
    for (const f of ['binding.gyp', 'sources.json', 'package.json', 'scripts', 'native']) cpSync(join(root, f), join(copy, f), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (!existsSync(nodeGyp)) throw new Error(`npm's node-gyp is not at ${nodeGyp}; run the tests with npm test (npm sets npm_config_node_gyp)`);
    // Node's own headers when they sit beside it, as scripts/prebuilds.cjs does (no download from nodejs.org).
    const prefix = resolve(dirname(process.execPath), '..');
    const env = { ...process.env, ...(existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? { npm_config_nodedir: prefix } : {}) };
    const gyp = spawnSync(process.execPath, [nodeGyp, 'configure'], { cwd: copy, env, encoding: 'utf8', timeout: 300_000 });
    if (gyp.status !== 0) throw new Error(`node-gyp configure failed:\n${gyp.stdout}\n${gyp.stderr}`);
    mk = readFileSync(join(copy, 'build', 'ikun.target.mk'), 'utf8');
  }, 360_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compile every .cu file with the same nvcc flags', () => {
    for (const file of cudaSources) {
      const cmake = ninjaVariables(ninja, file);
      // CMake's defines that only the C++ side reads (the recorded architectures, the BLAS linkage, its export macro).
      const cmakeFlags = [...(cmake.FLAGS ?? []), ...(cmake.DEFINES ?? []).filter((d) => !/^-D(ikun_EXPORTS|IKUN_BLAS_STATIC|IKUN_CUDA_SASS|IKUN_CUDA_PTX)\b/.test(d))];
      expect(new Set(gypNvccFlags(file)), file).toEqual(new Set(cmakeFlags));
      // and binding.gyp's rule hands the file to that command
      expect(mk).toMatch(new RegExp(`^cmd_\\w*nvcc_\\d+ = .*node scripts/build-config\\.cjs nvcc "\\$\\(abspath \\$<\\)" "[^"]*/cuda/${file.split('/').pop()!.replace('.cu', '')}\\.o"$`, 'm'));
    }
  });

  it('compile the C++ sources with the same flags, C++ exceptions and RTTI on', () => {
    const cmake = ninjaVariables(ninja, 'native/cpu/neuron.cpp');
    const gyp = [...makeList(mk, 'CFLAGS_Release'), ...makeList(mk, 'CFLAGS_CC_Release'), ...makeList(mk, 'DEFS_Release')];
    // -fPIC: gyp passes it too; -Dikun_EXPORTS is CMake's own.
    for (const flag of [...(cmake.FLAGS ?? []), ...(cmake.DEFINES ?? [])].filter((f) => f !== '-Dikun_EXPORTS')) expect(gyp, flag).toContain(flag);
    for (const flag of ['-fno-exceptions', '-fno-rtti', '-fno-omit-frame-pointer']) expect(gyp).not.toContain(flag);
    expect(makeList(mk, 'CFLAGS_CC_Release').filter((f) => f.startsWith('-std=')).pop()).toBe('-std=gnu++17');
  });

  it('link OpenBLAS and the CUDA runtime statically', () => {
    const libs = makeList(mk, 'LIBS');
    expect(libs.some((l) => l.endsWith('/libopenblas.a'))).toBe(true);
    expect(libs).toContain('-lcudart_static');
    expect(ninja).toMatch(/LINK_LIBRARIES = .*libopenblas\.a.*-lcudart_static/);
  });
});
