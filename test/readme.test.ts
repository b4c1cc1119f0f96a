// The README's API section runs as written: its ts blocks, in order, type-check against the built
// package and run as one ES module importing 'ikun'.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');

function apiSection(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## API\n');
  expect(start, 'README has an "## API" section').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('README API section', () => {
  it('type-checks and runs as written', () => {
    const blocks = [...apiSection().matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    // inside the package, so that 'ikun' resolves to it (a package's self-reference)
    const dir = join(root, 'dist', 'readme-check');
    mkdirSync(dir, { recursive: true });
    const source = join(dir, `api-${process.pid}.mts`);
    writeFileSync(source, blocks.join('\n'));
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
    };
    const program = ts.createProgram([source], options);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
    const js = ts.transpileModule(readFileSync(source, 'utf8'), { compilerOptions: { ...options, module: ts.ModuleKind.ES2022, noEmit: false } }).outputText;
    const script = source.replace(/\.mts$/, '.mjs');
    writeFileSync(script, js);
    const r = spawnSync(process.execPath, [script], { cwd: mkdtempSync(join(tmpdir(), 'ikun-readme-')), encoding: 'utf8', timeout: 120_000 });
    rmSync(source);
    rmSync(script);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('tensor([[0.1000, 0.9000, 0.3000]');
    expect(r.stdout).toContain('CSNN(');
    expect(r.stdout).toContain('Total params:');
    expect(r.stdout).toContain("[ '1.weight', '2.weight', '2.bias' ]");
    expect(r.stdout).toContain("shape mismatch for 'conv_fc.0.weight'");
    const accuracy = Number(/epoch 2: test accuracy (0\.\d+)/.exec(r.stdout)?.[1]);
    expect(accuracy).toBeGreaterThan(0.2); // chance is 0.1
  });
});
