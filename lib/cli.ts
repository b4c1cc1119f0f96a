#!/usr/bin/env node
// The ikun command line: `ikun train` (the paper's experiment with every knob as a flag), `ikun hessian`
// (lib/cli-hessian.ts) and `ikun doctor` (lib/cli-doctor.ts).
// Exit codes: 0 done, 1 the run failed (missing data, unwritable folder, divergence, a failed write, ...),
// 2 bad flags, 130 / 143 stopped by SIGINT / SIGTERM after saving the step it was on.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ikunVersion } from './checkpoint.js';
import { cliMessage, interruptedMessage } from './cli-errors.js';
import { doctorCommand } from './cli-doctor.js';
import { IkunError } from './errors.js';
import { exitCodeFor, stopOnSignals } from './signals.js';
import { hessianCommand } from './cli-hessian.js';
import { evalCommand } from './cli/eval.js';
import { writeRunReport } from './report/run-report.js';
import { experimentCommand } from './cli/experiment.js';
import { INIT_METHODS, BETA_MODES } from './init.js';
import { setNumThreads } from './index.js';
import { DEFAULT_CONFIG, RESUME_OVERRIDES, resolveConfig, resume, train, type EpochMetrics, type ResumeOverrides, type StepInfo, type TrainConfig } from './train.js';

export class UsageError extends Error {}

type FlagKind = 'string' | 'number' | 'integer' | 'boolean';
interface Flag {
  key: keyof TrainConfig | 'resume' | 'threads' | 'progress' | 'help';
  kind: FlagKind;
  help: string;
  choices?: readonly string[];
}

const TRAIN_FLAGS: Record<string, Flag> = {
  '--init': { key: 'init', kind: 'string', choices: INIT_METHODS, help: `weight initialisation (default ${DEFAULT_CONFIG.init})` },
  '--beta-mode': { key: 'betaMode', kind: 'string', choices: BETA_MODES, help: `IKUN beta: code reproduces 1.273703; mean / second-moment use the surrogate (default ${DEFAULT_CONFIG.betaMode})` },
  '--opt': { key: 'opt', kind: 'string', choices: ['sgd', 'adam', 'adamw'], help: `optimiser (default ${DEFAULT_CONFIG.opt})` },
  '--lr': { key: 'lr', kind: 'number', help: 'learning rate (default 0.1 for sgd, 1e-3 for adam/adamw)' },
  '--momentum': { key: 'momentum', kind: 'number', help: `SGD momentum (default ${DEFAULT_CONFIG.momentum})` },
  '--nesterov': { key: 'nesterov', kind: 'boolean', help: 'Nesterov momentum for SGD' },
  '--weight-decay': { key: 'weightDecay', kind: 'number', help: 'weight decay (default 0; adamw: 1e-2)' },
  '--schedule': { key: 'schedule', kind: 'string', choices: ['cosine', 'step', 'none'], help: `learning-rate schedule, stepped per epoch (default ${DEFAULT_CONFIG.schedule} over the run, to --eta-min)` },
  '--eta-min': { key: 'etaMin', kind: 'number', help: `cosine floor (default ${DEFAULT_CONFIG.etaMin})` },
  '--step-size': { key: 'stepSize', kind: 'integer', help: `epochs per decay for --schedule step (default ${DEFAULT_CONFIG.stepSize})` },
  '--gamma': { key: 'gamma', kind: 'number', help: `decay factor for --schedule step (default ${DEFAULT_CONFIG.gamma})` },
  '--warmup': { key: 'warmup', kind: 'integer', help: `linear warm-up epochs before the schedule (default ${DEFAULT_CONFIG.warmup})` },
  '--epochs': { key: 'epochs', kind: 'integer', help: `epochs (default ${DEFAULT_CONFIG.epochs})` },
  '--batch': { key: 'batch', kind: 'integer', help: `training batch size; the last partial batch is dropped (default ${DEFAULT_CONFIG.batch})` },
  '--test-batch': { key: 'testBatch', kind: 'integer', help: 'test batch size (default: --batch)' },
  '--T': { key: 'T', kind: 'integer', help: `time steps (default ${DEFAULT_CONFIG.T})` },
  '--channels': { key: 'channels', kind: 'integer', help: `CSNN channels (default ${DEFAULT_CONFIG.channels})` },
  '--subset': { key: 'subset', kind: 'integer', help: 'seeded subset of the training images (default 20000; the whole bundled sample with --sample)' },
  '--seed': { key: 'seed', kind: 'integer', help: `seed for init, subset and shuffling (default ${DEFAULT_CONFIG.seed})` },
  '--neuron': { key: 'neuron', kind: 'string', choices: ['if', 'lif'], help: `spiking neuron (default ${DEFAULT_CONFIG.neuron})` },
  '--surrogate': { key: 'surrogate', kind: 'string', help: `surrogate gradient NAME[:ALPHA], e.g. atan:2, sigmoid:4 (default ${DEFAULT_CONFIG.surrogate})` },
  '--loss': { key: 'loss', kind: 'string', choices: ['mse', 'ce'], help: `loss on firing rates (default ${DEFAULT_CONFIG.loss})` },
  '--device': { key: 'device', kind: 'string', help: `auto, cpu, cuda or cuda:N (default ${DEFAULT_CONFIG.device})` },
  '--precision': { key: 'precision', kind: 'string', choices: ['tf32', 'fp32'], help: `CUDA convolutions and matrix products: tf32 tensor cores or exact fp32 (default ${DEFAULT_CONFIG.precision})` },
  '--dataset': { key: 'dataset', kind: 'string', choices: ['fashion-mnist', 'mnist'], help: `data set (default ${DEFAULT_CONFIG.dataset})` },
  '--data': { key: 'data', kind: 'string', help: 'folder with the IDX files (default: $IKUN_DATA, then /usr/share/datasets/fashion-mnist, then ./data)' },
  '--sample': { key: 'sample', kind: 'boolean', help: 'use the bundled sample (4,000 train / 1,000 test images)' },
  '--out': { key: 'out', kind: 'string', help: 'run folder to write (default runs/<init>-<opt>-s<seed>-<time>)' },
  '--checkpoint-every': { key: 'checkpointEvery', kind: 'integer', help: 'also write last.safetensors every N training steps (default: at each epoch end), so a killed run loses at most N steps' },
  '--on-nan': { key: 'onNan', kind: 'string', choices: ['stop', 'skip'], help: `a non-finite loss or gradient: stop the run, keeping the last good checkpoint, or skip that batch (default ${DEFAULT_CONFIG.onNan})` },
  '--resume': { key: 'resume', kind: 'string', help: 'continue the run in RUN_DIR from its last checkpoint (--epochs may raise the total; --checkpoint-every and --on-nan may change)' },
  '--threads': { key: 'threads', kind: 'integer', help: 'CPU threads (default: all cores)' },
  '--no-progress': { key: 'progress', kind: 'boolean', help: 'no progress bar, one line per epoch' },
  '--help': { key: 'help', kind: 'boolean', help: 'show this help' },
};

function trainHelp(): string {
  const lines = [
    'Usage: ikun train [flags]',
    '',
    "Trains the paper's CSNN on Fashion-MNIST and writes a run folder: config.json, metrics.jsonl,",
    'metrics.csv, best.safetensors (best test accuracy) and last.safetensors (to --resume from).',
    'Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, saves it in last.safetensors and exits',
    '130 / 143; --resume continues at that step. A second Ctrl-C stops at once.',
    '',
    'Flags:',
  ];
  for (const [name, f] of Object.entries(TRAIN_FLAGS)) {
    const value = f.kind === 'boolean' ? '' : f.choices ? ` ${f.choices.join('|')}` : f.kind === 'string' ? ' VALUE' : ' N';
    lines.push(`  ${(name + value).padEnd(40)} ${f.help}`);
  }
  lines.push('', 'Examples:', '  ikun train --sample --epochs 1 --channels 16 --device cpu --out runs/demo',
    '  ikun train --sample --epochs 3 --checkpoint-every 20 --on-nan skip --out runs/long',
    '  ikun train --data /usr/share/datasets/fashion-mnist --init ikun_v1 --opt sgd', '  ikun train --resume runs/demo --epochs 2');
  return lines.join('\n');
}

function parseValue(name: string, f: Flag, raw: string | undefined): string | number {
  if (raw === undefined || raw.startsWith('--')) throw new UsageError(`${name} needs a value`);
  if (f.choices && !f.choices.includes(raw)) throw new UsageError(`${name} must be one of ${f.choices.join(', ')}, got '${raw}'`);
  if (f.kind === 'string') return raw;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${name} must be a number, got '${raw}'`);
  if (f.kind === 'integer' && !Number.isInteger(n)) throw new UsageError(`${name} must be an integer, got '${raw}'`);
  return n;
}

interface ParsedTrain {
  config: Partial<TrainConfig>;
  resume?: string;
  threads?: number;
  progress: boolean;
  help: boolean;
}

export function parseTrainArgs(argv: string[]): ParsedTrain {
  const out: ParsedTrain = { config: {}, progress: true, help: false };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const f = TRAIN_FLAGS[name];
    if (!f) throw new UsageError(arg.startsWith('-') ? `unknown flag ${name}` : `unexpected argument '${arg}'`);
    if (seen.has(name)) throw new UsageError(`${name} given twice`);
    seen.add(name);
    if (f.kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${name} takes no value`);
      if (f.key === 'help') out.help = true;
      else if (f.key === 'progress') out.progress = false;
      else (out.config as Record<string, unknown>)[f.key] = true;
      continue;
    }
    const value = parseValue(name, f, inline ?? argv[++i]);
    if (f.key === 'resume') out.resume = String(value);
    else if (f.key === 'threads') {
      if (Number(value) < 1 || Number(value) > 1024) throw new UsageError(`--threads must be between 1 and 1024, got ${value}`);
      out.threads = Number(value);
    }
    else (out.config as Record<string, unknown>)[f.key] = value;
  }
  if (out.resume !== undefined) {
    const allowed: readonly string[] = RESUME_OVERRIDES;
    const extra = Object.keys(out.config).filter((k) => !allowed.includes(k));
    if (extra.length > 0)
      throw new UsageError(`--resume continues a run with its saved config; only --epochs, --checkpoint-every and --on-nan may be given with it (got ${extra.join(', ')})`);
  }
  return out;
}

function defaultRunDir(c: Partial<TrainConfig>): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join('runs', `${c.init ?? DEFAULT_CONFIG.init}-${c.opt ?? DEFAULT_CONFIG.opt}-s${c.seed ?? DEFAULT_CONFIG.seed}-${stamp}`);
}

function formatEpoch(m: EpochMetrics, epochs: number): string {
  const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;
  return `epoch ${m.epoch}/${epochs}  train loss ${m.train_loss.toFixed(4)} acc ${pct(m.train_acc)}  test loss ${m.test_loss.toFixed(4)} acc ${pct(m.test_acc)}  lr ${m.lr.toPrecision(3)}  |g| ${m.grad_norm.toFixed(4)}  ${m.epoch_s.toFixed(1)} s  ${m.samples_per_s.toFixed(0)} samples/s`;
}

/** A one-line progress bar on a terminal (stderr); nothing when not a terminal. */
function progressBar(enabled: boolean): { step: (s: StepInfo) => void; clear: () => void } {
  const tty = enabled && process.stderr.isTTY === true;
  let last = 0;
  return {
    step(s) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100 && s.step !== s.steps) return;
      last = now;
      const width = 24, filled = Math.round((width * s.step) / s.steps);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] epoch ${s.epoch}/${s.epochs} ${s.phase} ${s.step}/${s.steps} loss ${s.loss.toFixed(4)}   `);
    },
    clear() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

async function trainCommand(argv: string[]): Promise<number> {
  const args = parseTrainArgs(argv);
  if (args.help) {
    console.log(trainHelp());
    return 0;
  }
  const config = { ...args.config, out: args.config.out ?? defaultRunDir(args.config) };
  if (args.resume === undefined) {
    try {
      resolveConfig(config); // a bad value is a bad flag: exit 2 before anything starts
    } catch (error) {
      throw new UsageError((error as Error).message.replace(/^ikun: /, ''));
    }
  }
  if (args.threads !== undefined) setNumThreads(args.threads);
  // The run's total: a resumed run's comes with its first step (its saved config, or --epochs).
  let totalEpochs = args.config.epochs ?? DEFAULT_CONFIG.epochs;
  const bar = progressBar(args.progress);
  const stop = stopOnSignals((signal) => {
    bar.clear();
    console.error(`ikun: ${signal}: stopping after the current step and saving it (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again stops at once)`);
  });
  const hooks = {
    log: (line: string) => {
      bar.clear();
      console.log(line);
    },
    onStep: (s: StepInfo) => {
      totalEpochs = s.epochs;
      bar.step(s);
    },
    onEpoch: (m: EpochMetrics) => {
      bar.clear();
      console.log(formatEpoch(m, totalEpochs));
    },
    signal: stop.signal,
  };
  try {
    const result = args.resume !== undefined
      ? await resume(args.resume, hooks, args.config as ResumeOverrides)
      : await train(config, hooks);
    bar.clear();
    writeRunReport(result.runDir);
    console.log(`run folder: ${result.runDir} (best test accuracy ${(100 * result.bestTestAcc).toFixed(2)}%; charts in report.html)`);
    return 0;
  } catch (error) {
    const signal = stop.received();
    if (!(error instanceof IkunError && error.code === 'INTERRUPTED' && signal)) throw error;
    bar.clear();
    console.error(interruptedMessage(error, signal));
    return exitCodeFor(signal);
  } finally {
    stop.dispose();
  }
}

const USAGE = `Usage: ikun <command> [flags]

Commands:
  train     train the paper's CSNN (ikun train --help for the flags)
  hessian   Hessian spectrum of a checkpoint: top eigenvalues, trace, density (ikun hessian --help)
  doctor    check the installation: binary, CPU, BLAS, CUDA and GPUs, a training step on each device
  experiment  the paper's grid of inits x optimisers x seeds, aggregated, with report.html (ikun experiment --help)
  eval      test loss, accuracy, per-class accuracy and confusion matrix of a checkpoint (ikun eval --help)

Flags:
  --version  print the version
  --help     print this help`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === 'help') {
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === '--version') {
      console.log(ikunVersion());
      return 0;
    }
    if (command === 'train') return await trainCommand(rest);
    if (command === 'hessian') return await hessianCommand(rest);
    if (command === 'doctor') return await doctorCommand(rest);
    if (command === 'experiment') return await experimentCommand(rest);
    if (command === 'eval') return await evalCommand(rest);
    throw new UsageError(`unknown command '${command}'`);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun ${command === 'train' ? 'train ' : ''}--help' for the flags.`);
      return 2;
    }
    console.error(cliMessage(error));
    return 1;
  }
}

// Run when executed as the bin, also through npm's symlink in node_modules/.bin (not when imported).
function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
