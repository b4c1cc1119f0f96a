// The flags of `ikun train`, declared once for commander (its --help and its parsing) and shared with
// `ikun experiment`, whose grid passes every other train flag to all points. Nothing here loads the native
// addon, so that --help works without it.
import { Option, type Command } from 'commander';
import { BETA_MODES, INIT_METHODS } from '../init-methods.js';
import { CUDA_PRECISIONS } from '../precision.js';
import { DEFAULT_CONFIG, RESUME_OVERRIDES, type TrainConfig } from '../train/config.js';
import { CommandUsageError, ikunCommand, parseWith } from './commander-usage.js';
import { checkFlags, choiceFlag, integerFlag, numberFlag } from './flags.js';

export interface ParsedTrain {
  /** Only the flags given: a resumed run and the experiment's grid tell given values from defaults. */
  config: Partial<TrainConfig>;
  resume?: string;
  threads?: number;
  progress: boolean;
  help: boolean;
}

export function trainProgram(): Command {
  const c = DEFAULT_CONFIG;
  const choice = (name: string, values: readonly string[], help: string) => new Option(`${name} <${values.join('|')}>`, help).argParser(choiceFlag(name, values));
  const integer = (name: string, help: string) => new Option(`${name} <n>`, help).argParser(integerFlag(name));
  const number = (name: string, help: string) => new Option(`${name} <x>`, help).argParser(numberFlag(name));
  return ikunCommand('ikun train', "Trains the paper's CSNN on Fashion-MNIST and writes a run folder: config.json, metrics.jsonl, " +
    'metrics.csv, best.safetensors (best test accuracy) and last.safetensors (to --resume from). ' +
    'Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, saves it in last.safetensors and exits ' +
    '130 / 143; --resume continues at that step. A second Ctrl-C stops at once.')
    .usage('[flags]')
    .addOption(choice('--init', INIT_METHODS, `weight initialisation (default ${c.init})`))
    .addOption(choice('--beta-mode', BETA_MODES, `IKUN beta: code reproduces 1.273703; mean / second-moment use the surrogate (default ${c.betaMode})`))
    .addOption(choice('--opt', ['sgd', 'adam', 'adamw'], `optimiser (default ${c.opt})`))
    .addOption(number('--lr', 'learning rate (default 0.1 for sgd, 1e-3 for adam/adamw)'))
    .addOption(number('--momentum', `SGD momentum (default ${c.momentum})`))
    .option('--nesterov', 'Nesterov momentum for SGD')
    .addOption(number('--weight-decay', 'weight decay (default 0; adamw: 1e-2)'))
    .addOption(choice('--schedule', ['cosine', 'step', 'none'], `learning-rate schedule, stepped per epoch (default ${c.schedule} over the run, to --eta-min)`))
    .addOption(number('--eta-min', `cosine floor (default ${c.etaMin})`))
    .addOption(integer('--step-size', `epochs per decay for --schedule step (default ${c.stepSize})`))
    .addOption(number('--gamma', `decay factor for --schedule step (default ${c.gamma})`))
    .addOption(integer('--warmup', `linear warm-up epochs before the schedule (default ${c.warmup})`))
    .addOption(integer('--epochs', `epochs (default ${c.epochs})`))
    .addOption(integer('--batch', `training batch size; the last partial batch is dropped (default ${c.batch})`))
    .addOption(integer('--test-batch', 'test batch size (default: --batch)'))
    .addOption(integer('--T', `time steps (default ${c.T})`))
    .addOption(integer('--channels', `CSNN channels (default ${c.channels})`))
    .addOption(integer('--subset', 'seeded subset of the training images (default 20000; the whole bundled sample with --sample)'))
    .addOption(integer('--seed', `seed for init, subset and shuffling (default ${c.seed})`))
    .addOption(choice('--neuron', ['if', 'lif'], `spiking neuron (default ${c.neuron})`))
    .option('--surrogate <name:alpha>', `surrogate gradient NAME[:ALPHA], e.g. atan:2, sigmoid:4 (default ${c.surrogate})`)
    .addOption(choice('--loss', ['mse', 'ce'], `loss on firing rates (default ${c.loss})`))
    .option('--device <device>', `auto, cpu, cuda or cuda:N (default ${c.device})`)
    .addOption(choice('--precision', CUDA_PRECISIONS, `CUDA convolutions and matrix products: tf32 tensor cores, exact fp32, or bf16 mixed precision (default ${c.precision})`))
    .addOption(choice('--dataset', ['fashion-mnist', 'mnist'], `data set (default ${c.dataset})`))
    .option('--data <dir>', 'folder with the IDX files (default: $IKUN_DATA, then /usr/share/datasets/fashion-mnist, then ./data)')
    .option('--sample', 'use the bundled sample (4,000 train / 1,000 test images)')
    .option('--out <dir>', 'run folder to write (default runs/<init>-<opt>-s<seed>-<time>)')
    .addOption(integer('--checkpoint-every', 'also write last.safetensors every N training steps (default: at each epoch end), so a killed run loses at most N steps'))
    .addOption(choice('--on-nan', ['stop', 'skip'], `a non-finite loss or gradient: stop the run, keeping the last good checkpoint, or skip that batch (default ${c.onNan})`))
    .option('--resume <run_dir>', 'continue the run in RUN_DIR from its last checkpoint (--epochs may raise the total; --checkpoint-every and --on-nan may change)')
    .option('--threads <n>', 'CPU threads (default: all cores)', integerFlag('--threads', { min: 1, max: 1024 }))
    .option('--no-progress', 'no progress bar, one line per epoch')
    .addHelpText('after', '\nExamples:\n  ikun train --sample --epochs 1 --channels 16 --device cpu --out runs/demo\n' +
      '  ikun train --sample --epochs 3 --checkpoint-every 20 --on-nan skip --out runs/long\n' +
      '  ikun train --data /usr/share/datasets/fashion-mnist --init ikun_v1 --opt sgd\n  ikun train --resume runs/demo --epochs 2');
}

/** Parses `ikun train` flags (also the experiment's shared ones); throws CommandUsageError with the reason. */
export function parseTrainArgs(argv: readonly string[]): ParsedTrain {
  const cmd = trainProgram();
  if (checkFlags(cmd, argv).help) return { config: {}, progress: true, help: true };
  parseWith(cmd, argv);
  const { resume, threads, progress, ...config } = cmd.opts<Partial<TrainConfig> & { resume?: string; threads?: number; progress: boolean }>();
  if (resume !== undefined) {
    const allowed: readonly string[] = RESUME_OVERRIDES;
    const extra = Object.keys(config).filter((k) => !allowed.includes(k));
    if (extra.length > 0)
      throw new CommandUsageError(`--resume continues a run with its saved config; only --epochs, --checkpoint-every and --on-nan may be given with it (got ${extra.join(', ')})`);
  }
  return { config, ...(resume !== undefined ? { resume } : {}), ...(threads !== undefined ? { threads } : {}), progress, help: false };
}
