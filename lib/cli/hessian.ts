// `ikun hessian`: the paper's Hessian analysis (ikun-paper.md, "Hessian analysis") of trained checkpoints:
// top-k eigenvalues, optionally the trace and the spectral density of the loss Hessian on the first test
// images, written as JSON, CSV and SVG (lib/cli/hessian-analysis.ts). Exit codes: 0 done, 1 the analysis
// failed (missing or corrupt checkpoint, missing data, unwritable folder, ...), 2 bad flags. The analysis,
// which loads the native addon, is imported once the flags are good: --help works without it.
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fail } from '../errors.js';
import { ensureWritableFolder } from '../files.js';
import { CommandUsageError } from './commander-usage.js';
import { failureMessage } from './failure-message.js';
import type { CheckpointResult, TestData } from './hessian-analysis.js';
import { hessianHelp, parseHessianArgs } from './hessian-flags.js';
import { hessianProgress, type HessianProgress } from './hessian-progress.js';

/** Runs `ikun hessian` with the given flags; returns the exit code (0 done, 1 failed, 2 bad flags). */
export async function hessianCommand(argv: string[]): Promise<number> {
  let report: HessianProgress | null = null;
  try {
    const args = parseHessianArgs(argv);
    if (args.help) {
      console.log(hessianHelp());
      return 0;
    }
    const [{ native }, { analyse, labelsFor, writeResults }] = await Promise.all([import('../native.js'), import('./hessian-analysis.js')]);
    if (args.threads !== undefined) native.setThreadCount(args.threads);
    const paths = args.checkpoints.map((p) => resolve(p));
    for (const p of paths) {
      let isFile = false;
      try {
        isFile = statSync(p).isFile();
      } catch {
        fail(`checkpoint ${p} not found`);
      }
      if (!isFile) fail(`checkpoint ${p} is not a file (give the .safetensors file, e.g. RUN/best.safetensors)`);
    }
    const out = resolve(args.out ?? join(dirname(paths[0]!), 'hessian'));
    ensureWritableFolder(out);
    report = hessianProgress(args.progress);
    const labels = labelsFor(paths);
    const cache = new Map<string, TestData>();
    const results: CheckpointResult[] = [];
    const curves: Array<{ grid?: number[]; density?: number[] }> = [];
    for (let i = 0; i < paths.length; i++) {
      const { result, grid, density } = analyse(args, paths[i]!, labels[i]!, i + 1, paths.length, report, cache);
      results.push(result);
      curves.push({ ...(grid ? { grid } : {}), ...(density ? { density } : {}) });
      await new Promise<void>((done) => setImmediate(done));
    }
    writeResults(out, args, results, curves);
    report.line(`results: ${out}`);
    return 0;
  } catch (error) {
    report?.clear();
    if (error instanceof CommandUsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun hessian --help' for the flags.`);
      return 2;
    }
    console.error(await failureMessage(error));
    return 1;
  }
}
