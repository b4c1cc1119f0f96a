// bench/torch-anchor.py, the plain-PyTorch anchor that scripts/gpu-session.sh runs on a lent GPU: its flags,
// its IDX reader on the bundled sample and on corrupt files, and (where PyTorch is installed, not on CI) its
// smoke run on the CPU, the model's parameter count included.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const script = join(root, 'bench/torch-anchor.py');
const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : null;
const hasTorch = python !== null && spawnSync(python, ['-c', 'import torch']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'ikun-torch-anchor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => spawnSync(python!, [script, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, IKUN_DATA: '' } });
/** Calls the script's read_idx(folder, stem) and prints the dims, or the error's type and message. */
function readIdx(folder: string, stem: string) {
  const code = `import importlib.util, sys
sys.dont_write_bytecode = True
spec = importlib.util.spec_from_file_location('anchor', ${JSON.stringify(script)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
try:
    dims, body = m.read_idx(${JSON.stringify(folder)}, ${JSON.stringify(stem)}); print(list(dims), len(body), body[:4].hex())
except Exception as e:
    print(type(e).__name__, e)`;
  return spawnSync(python!, ['-c', code], { encoding: 'utf8' }).stdout.trim();
}

describe.skipIf(python === null)('bench/torch-anchor.py', () => {
  it('refuses bad flags with exit 2', () => {
    const r = run(['--epochs', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--epochs must be at least 1/);
    const p = run(['--precision', 'fp16']);
    expect(p.status).toBe(2);
    expect(p.stderr).toMatch(/invalid choice: 'fp16'/);
  });

  it('reads the bundled sample and names what is wrong with a missing or corrupt file', () => {
    const sample = join(root, 'data/sample');
    expect(readIdx(sample, 'train-images-idx3-ubyte')).toMatch(/^\[4000, 28, 28\] 3136000 [0-9a-f]{8}$/);
    expect(readIdx(sample, 't10k-labels-idx1-ubyte')).toMatch(/^\[1000\] 1000 /);
    expect(readIdx(dir, 'train-images-idx3-ubyte')).toMatch(/^FileNotFoundError no train-images-idx3-ubyte\[\.gz\] in .*: pass --data DIR or set IKUN_DATA/);
    writeFileSync(join(dir, 'short-idx1-ubyte.gz'), gzipSync(Buffer.from([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3])));
    expect(readIdx(dir, 'short-idx1-ubyte')).toMatch(/^ValueError short-idx1-ubyte in .* holds 3 bytes of data, its header says 5$/);
    writeFileSync(join(dir, 'float-idx1-ubyte'), Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]));
    expect(readIdx(dir, 'float-idx1-ubyte')).toMatch(/^ValueError float-idx1-ubyte in .* is not an unsigned-byte IDX file$/);
  });

  it.skipIf(hasTorch)('without PyTorch says there is nothing to measure and exits 0', () => {
    const r = run([]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('torch-anchor: PyTorch is not installed here; nothing to measure.\n');
  });

  it.skipIf(!hasTorch)('trains the CSNN at smoke size and writes its figures', () => {
    const json = join(dir, 'anchor.json');
    const r = run(['--smoke', '--data', join(root, 'data/sample'), '--json', json]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/plain PyTorch CSNN-4 \(13,380 parameters\)/);  // the paper's layers at c = 4 (ikun's count)
    const figures = JSON.parse(readFileSync(json, 'utf8'));
    expect(figures.epochs).toHaveLength(2);
    expect(figures.epoch_s).toBeGreaterThan(0);
    for (const e of figures.epochs) expect(e.train_acc).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
