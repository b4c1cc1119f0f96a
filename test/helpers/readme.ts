// Running the README's code as written: the ts blocks of one of its sections, type-checked against the built
// package and run, in order, as one ES module importing 'ikun'.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { expect } from 'vitest';

const root = resolve(__dirname, '../..');

/** The ts blocks of the README section headed `## <title>`. */
export function readmeBlocks(title: string): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README has a "## ${title}" section`).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Type-checks the blocks (no problems expected) and runs them as one module; returns the run. */
export function runBlocks(blocks: string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  // inside the package, so that 'ikun' resolves to it (a package's self-reference)
  const dir = join(root, 'dist', 'readme-check');
  mkdirSync(dir, { recursive: true });
  const source = join(dir, `readme-${process.pid}-${Date.now()}.mts`);
  writeFileSync(source, blocks.join('\n'));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
  };
  try {
    const program = ts.createProgram([source], options);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
    const js = ts.transpileModule(readFileSync(source, 'utf8'), { compilerOptions: { ...options, module: ts.ModuleKind.ES2022, noEmit: false } }).outputText;
    const script = source.replace(/\.mts$/, '.mjs');
    writeFileSync(script, js);
    try {
      return spawnSync(process.execPath, [script], { cwd: mkdtempSync(join(tmpdir(), 'ikun-readme-')), encoding: 'utf8', timeout: 120_000, env });
    } finally {
      rmSync(script);
    }
  } finally {
    rmSync(source);
  }
}
