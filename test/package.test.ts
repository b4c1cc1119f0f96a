// The package as a user gets it: `npm pack`, then `npm install` of the tarball into an empty project on a PATH
// without compilers (cmake, make, ninja, gcc, g++, c++, cc, clang, nvcc), where `ikun doctor --json` and
// `ikun train --sample --epochs 1 --channels 8` must work from the prebuilt binary, which must carry the CUDA
// kernels. The prebuilt binary is the one `npm run prebuilds` made (CI builds it once, before npm test); this
// test packs it and never builds it. It installs elsewhere because a local build/ would shadow prebuilds/.
// Also: package-lock.json is what npm install writes (so an install leaves the checkout unchanged).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../lib/cli/doctor-report.js';

const root = resolve(__dirname, '..');
const platform = `${process.platform}-${process.arch}`;
const prebuilt = join(root, 'prebuilds', platform, 'ikun.node');
const MINUTES = 60_000;

// What a source build would run. Tripwires of these names stand first on the PATH and log any call.
const TRIPWIRES = ['cmake', 'make', 'ninja', 'nvcc', 'gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];
const COMPILER = /^(?:cmake|ccmake|cpack|ctest|make|gmake|ninja|nvcc|(?:[\w.]+-)*(?:gcc|g\+\+|c\+\+|cc|cpp|clang|clang\+\+)(?:-[\d.]+)?)$/;

/** The files the prebuilt binary is compiled from: it is stale when any is newer. */
function nativeInputs(): string[] {
  const sources = JSON.parse(readFileSync(join(root, 'sources.json'), 'utf8')) as Record<string, string[] | string>;
  const files = ['common', 'cuda', 'cpuOnly'].flatMap((key) => sources[key] as string[]);
  for (const dir of ['native/common', 'native/cpu', 'native/cuda', 'native/napi'])
    for (const f of readdirSync(join(root, dir))) if (/\.(h|cuh)$/.test(f)) files.push(`${dir}/${f}`);
  return [...files, 'sources.json', 'binding.gyp', 'scripts/build-config.cjs'];
}

function checkPrebuilt(): void {
  if (!existsSync(prebuilt))
    throw new Error(`${prebuilt} is missing: run 'npm run prebuilds' first (the packaging test ships that binary; it does not build it)`);
  const built = statSync(prebuilt).mtimeMs;
  const newer = nativeInputs().filter((f) => statSync(join(root, f)).mtimeMs > built);
  if (newer.length > 0)
    throw new Error(`${prebuilt} is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ` and ${newer.length - 3} more` : ''}: run 'npm run prebuilds' again`);
}

/** A folder of symlinks to every program on PATH except the compilers, behind a folder of tripwires. */
function pathWithoutCompilers(dir: string, tripwireLog: string): string {
  const tripwires = join(dir, 'tripwires');
  const links = join(dir, 'bin');
  mkdirSync(tripwires);
  mkdirSync(links);
  for (const name of TRIPWIRES) {
    writeFileSync(join(tripwires, name), `#!/bin/sh\necho "${name} $*" >> '${tripwireLog}'\nexit 127\n`);
    chmodSync(join(tripwires, name), 0o755);
  }
  // Not the repository's node_modules/.bin (npm run puts it on PATH; a user's shell has none) nor npm's node-gyp
  // shim folder (npm adds its own to the scripts it runs).
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d && !resolve(d).startsWith(root) && !d.includes('node-gyp-bin'));
  const seen = new Set<string>();
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (COMPILER.test(name) || seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(d, name), join(links, name));
    }
  }
  return [tripwires, links].join(delimiter);
}

/** The environment of a user's shell: none of the npm_* variables of the `npm test` that runs this. */
function userEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || ['INIT_CWD', 'NODE_OPTIONS', 'IKUN_CUDA_EMULATE', 'IKUN_BUILD_FROM_SOURCE', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID'].includes(k)) continue;
    env[k] = v;
  }
  env.PATH = path;
  return env;
}

function output(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`;
}

interface PackResult {
  filename: string;
  size: number;
  files: { path: string; size: number }[];
}

describe('the packed package, installed without compilers', () => {
  let dir = '';
  let project = '';
  let env: NodeJS.ProcessEnv = {};
  let tripwireLog = '';
  let pack: PackResult;
  let install: SpawnSyncReturns<string>;

  beforeAll(() => {
    checkPrebuilt();
    dir = mkdtempSync(join(tmpdir(), 'ikun-package-'));
    tripwireLog = join(dir, 'compiler-calls.log');
    // --ignore-scripts: `prepare` would recompile dist/ while other test files run the CLI from it (npm test
    // has just compiled it).
    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', timeout: 5 * MINUTES });
    if (packed.status !== 0) throw new Error(`npm pack failed: ${output(packed)}`);
    pack = (JSON.parse(packed.stdout) as PackResult[])[0]!;
    project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'ikun-install-check', version: '1.0.0', private: true }));
    env = userEnv(pathWithoutCompilers(dir, tripwireLog));
    // The dependencies come from npm's cache when they are there (npm ci filled it), the registry otherwise.
    install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', join(dir, pack.filename)],
      { cwd: project, env, encoding: 'utf8', timeout: 10 * MINUTES });
  }, 15 * MINUTES);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds the prebuilt binary, the compiled library, the sources to build from and the licence', () => {
    const files = new Set(pack.files.map((f) => f.path));
    for (const f of [`prebuilds/${platform}/ikun.node`, 'dist/lib/cli.js', 'dist/lib/index.js', 'scripts/install.cjs', 'scripts/build-config.cjs',
      'binding.gyp', 'CMakeLists.txt', 'sources.json', 'LICENSE', 'README.md', 'data/sample/train-images-idx3-ubyte.gz',
      'scripts/gpu-session.sh', 'bench/torch-anchor.py', 'dist/bench/gpu.js', 'dist/bench/gpu-check.js'])
      expect(files.has(f), f).toBe(true);
    expect([...files].filter((f) => /^build(-emulated)?\//.test(f))).toEqual([]);
  });

  it('npm install uses the prebuilt binary and invokes no compiler', () => {
    expect(install.status, output(install)).toBe(0);
    expect(install.stdout).toContain(`ikun: using the prebuilt binary prebuilds/${platform}/ikun.node`);
    expect(install.stdout).not.toMatch(/building the native addon from source/);
    expect(existsSync(tripwireLog) ? readFileSync(tripwireLog, 'utf8') : '').toBe('');
    expect(existsSync(join(project, 'node_modules', 'ikun', 'build'))).toBe(false);
  });

  it('npx ikun doctor --json reports the prebuilt binary with CUDA kernels, and its self-tests pass', () => {
    expect(install.status, 'npm install failed').toBe(0);
    const r = spawnSync('npx', ['--no', 'ikun', 'doctor', '--json'], { cwd: project, env, encoding: 'utf8', timeout: 5 * MINUTES });
    expect(r.status, output(r)).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.binary.source).toBe('prebuilt');
    expect(realpathSync(report.binary.path)).toBe(realpathSync(join(project, 'node_modules', 'ikun', 'prebuilds', platform, 'ikun.node')));
    expect(report.cuda.compiled).toBe(true);
    expect(report.cuda.architectures).toEqual({ sass: [80, 86, 89, 90], ptx: [90] });
    expect(typeof report.cuda.available).toBe('boolean');
    if (!report.cuda.available) expect(report.cuda.reason).toMatch(/\w/);
    expect(report.cpu.blas.linkage).toBe('static');
    expect(report.selfTest.map((t) => t.device)).toEqual(['cpu', ...report.cuda.devices.map((d) => d.device)]);
    for (const t of report.selfTest) expect(t.passed, `${t.device}: ${t.summary} ${t.error ?? ''}`).toBe(true);
    // The file that was loaded carries the GPU kernels.
    const sections = spawnSync('readelf', ['-S', '-W', report.binary.path], { encoding: 'utf8' });
    expect(sections.status, output(sections)).toBe(0);
    expect(sections.stdout).toMatch(/\s\.nv_fatbin\s/);
    expect(existsSync(tripwireLog) ? readFileSync(tripwireLog, 'utf8') : '').toBe('');
  }, 6 * MINUTES);

  it('npx ikun train --sample --epochs 1 --channels 8 trains there', () => {
    expect(install.status, 'npm install failed').toBe(0);
    const r = spawnSync('npx', ['--no', 'ikun', 'train', '--sample', '--epochs', '1', '--channels', '8'], { cwd: project, env, encoding: 'utf8', timeout: 10 * MINUTES });
    expect(r.status, output(r)).toBe(0);
    expect(r.stdout).toMatch(/epoch 1\/1 {2}train loss/);
    const runs = readdirSync(join(project, 'runs'));
    expect(runs).toHaveLength(1);
    const metrics = JSON.parse(readFileSync(join(project, 'runs', runs[0]!, 'metrics.jsonl'), 'utf8').trim()) as { test_acc: number };
    expect(metrics.test_acc).toBeGreaterThan(0.2); // well above chance (0.1) after one epoch of the sample
    expect(existsSync(tripwireLog) ? readFileSync(tripwireLog, 'utf8') : '').toBe('');
  }, 11 * MINUTES);
});

describe('package-lock.json', () => {
  it('is what npm install writes for package.json: an install leaves it unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ikun-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) writeFileSync(join(dir, f), readFileSync(join(root, f)));
      // --package-lock-only: npm's resolution of package.json into the lock, without touching node_modules.
      const r = spawnSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
        { cwd: dir, env: userEnv(process.env.PATH ?? ''), encoding: 'utf8', timeout: 5 * MINUTES });
      expect(r.status, output(r)).toBe(0);
      expect(readFileSync(join(dir, 'package-lock.json'), 'utf8'), 'npm install rewrote package-lock.json: run npm install and commit the lock').toBe(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
