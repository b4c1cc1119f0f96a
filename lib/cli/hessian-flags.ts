// The flags of `ikun hessian`, declared once for commander (its --help and its parsing).
import type { Command } from 'commander';
import { Option } from 'commander';
import { CommandUsageError, ikunCommand, parseWith } from './commander-usage.js';
import { checkFlags, integerFlag, numberFlag, textFlag } from './flags.js';

export interface HessianArgs {
  checkpoints: string[];
  samples: number;
  top: number;
  trace: boolean;
  density: boolean;
  iter: number;
  maxIter: number;
  tol: number;
  seed: number;
  data?: string;
  sample: boolean;
  out?: string;
  threads?: number;
  progress: boolean;
  help: boolean;
}

export const HESSIAN_DEFAULTS = Object.freeze({ samples: 1, top: 50, iter: 100, maxIter: 100, tol: 1e-3, seed: 0 });

export function hessianProgram(): Command {
  const d = HESSIAN_DEFAULTS;
  const integer = (name: string, range: { min: number; max?: number }, help: string) => new Option(`${name} <n>`, help).argParser(integerFlag(name, range));
  const text = (flags: string, help: string) => new Option(flags, help).argParser(textFlag(flags.split(' ')[0]!));
  return ikunCommand('ikun hessian', 'Analyses the loss Hessian of trained CSNN checkpoints (eval mode, the MSE loss on the first test images), as ' +
    'the paper does with PyHessian: the top eigenvalues, optionally the trace and the spectral density. Writes ' +
    'hessian.json, eigenvalues.csv, eigenvalues.svg (all checkpoints overlaid) and, when asked, trace.csv, ' +
    'density.csv and density.svg. The model shape comes from the config.json next to each checkpoint.')
    .usage('--checkpoint RUN/best.safetensors [--checkpoint OTHER ...] [flags]')
    .addOption(new Option('--checkpoint <file>', 'checkpoint to analyse, e.g. RUN/best.safetensors; repeat to compare several')
      .argParser((raw: string, previous: string[] | undefined) => [...(previous ?? []), textFlag('--checkpoint')(raw)]))
    .addOption(integer('--samples', { min: 1 }, `first N test images the loss is taken on (default ${d.samples}, the paper's)`))
    .addOption(integer('--top', { min: 1 }, `top eigenvalues by power iteration (default ${d.top})`))
    .option('--trace', "also estimate the trace (Hutchinson's method)")
    .option('--density', 'also estimate the spectral density (stochastic Lanczos quadrature)')
    .addOption(integer('--iter', { min: 1 }, `Lanczos steps for --density (default ${d.iter})`))
    .addOption(integer('--max-iter', { min: 1 }, `power iterations per eigenvalue and trace samples at most (default ${d.maxIter})`))
    .addOption(new Option('--tol <x>', `relative tolerance that ends an eigenvalue or the trace (default ${d.tol})`).argParser(numberFlag('--tol', { positive: true })))
    .addOption(integer('--seed', { min: 0 }, `seed of the random vectors (default ${d.seed})`))
    .addOption(text('--data <dir>', "folder with the IDX files (default: the run's --data, $IKUN_DATA, /usr/share/datasets/fashion-mnist, ./data)"))
    .option('--sample', 'use the bundled sample (also used when the run trained on it)')
    .addOption(text('--out <dir>', "folder for the results (default: the first checkpoint's folder + /hessian)"))
    .addOption(integer('--threads', { min: 1, max: 1024 }, 'CPU threads (default: all cores)'))
    .option('--no-progress', 'no progress bar, plain lines only')
    .addHelpText('after', '\nExamples:\n  ikun hessian --checkpoint runs/demo/best.safetensors --top 10 --trace --density\n' +
      '  ikun hessian --checkpoint runs/ikun/best.safetensors --checkpoint runs/kaiming/best.safetensors --out runs/compare');
}

/** The generated --help text, examples included. */
export function hessianHelp(): string {
  const lines: string[] = [];
  const cmd = hessianProgram().configureOutput({ writeOut: (s) => void lines.push(s) });
  cmd.outputHelp();
  return lines.join('').trimEnd();
}

/** Parses the flags of `ikun hessian`; throws CommandUsageError with the reason on a bad flag. */
export function parseHessianArgs(argv: readonly string[]): HessianArgs {
  const defaults: HessianArgs = { checkpoints: [], ...HESSIAN_DEFAULTS, trace: false, density: false, sample: false, progress: true, help: false };
  const cmd = hessianProgram();
  const { help } = checkFlags(cmd, argv, { repeatable: ['--checkpoint'], strayArgument: (arg) => `unexpected argument '${arg}' (give checkpoints with --checkpoint)` });
  if (help) return { ...defaults, help: true };
  parseWith(cmd, argv);
  const { checkpoint, ...given } = cmd.opts<Partial<Omit<HessianArgs, 'checkpoints' | 'help'>> & { checkpoint?: string[] }>();
  const args: HessianArgs = { ...defaults, ...given, checkpoints: checkpoint ?? [] };
  if (args.checkpoints.length === 0) throw new CommandUsageError('give at least one --checkpoint FILE (e.g. runs/demo/best.safetensors)');
  return args;
}
