// `ikun experiment`: the paper's grid (inits x optimisers x seeds) with every `ikun train` flag shared by
// all points; `ikun experiment report DIR` aggregates a folder; `ikun experiment run-one DIR --index I` runs
// one point (what each worker and each SLURM array task runs). Exit codes: 0 done, 1 a point or the
// report failed, 2 bad flags.
import { resolve } from 'node:path';
import { INIT_METHODS, type InitMethod } from '../init.js';
import { setNumThreads } from '../index.js';
import { cliMessage } from '../cli-errors.js';
import { runExperiment, cliScript } from '../experiment/coordinator.js';
import { eventLine, stepEvent } from '../experiment/events.js';
import { DEFAULT_GRID, DEFAULT_HESSIAN, OPT_NAMES, checkSpec, planExperiment, pointAt, requireExperiment, writeExperiment, type ExperimentSpec, type OptName } from '../experiment/grid.js';
import { writeResults, RESULTS_CSV, RESULTS_FILE, REPORT_FILE } from '../experiment/results.js';
import { runPoint } from '../experiment/run-point.js';
import { sbatchScript, submitSbatch, checkSlurmOptions, type SlurmOptions } from '../experiment/slurm.js';
import { pointStatus } from '../experiment/status.js';
import { ensureWritableFolder } from '../files.js';
import { CommandUsageError, HelpShown, ikunCommand, integerArg, listArg, numberArg, parseWith, splitOwnArgs } from './commander-usage.js';
import { parseTrainArgs } from './train-flags.js';

const targetArg = numberArg((n) => (n > 0 && n <= 1 ? null : `must be a test accuracy in (0, 1], e.g. 0.85 for 85%, got ${n}.`));

function gridCommand() {
  return ikunCommand('ikun experiment', "Runs the paper's grid: every init x optimiser x seed is an ordinary `ikun train` run folder DIR/runs/<init>-<opt>-s<seed>.\n" +
    'DIR/experiment.json holds the grid and the shared flags; the same command again skips finished points and resumes\n' +
    'interrupted ones. At the end DIR/results.json, results.csv and report.html aggregate the seeds.')
    .option('--inits <list>', `comma list of inits (default ${DEFAULT_GRID.inits.join(',')})`, listArg)
    .option('--opts <list>', `comma list of optimisers (default ${DEFAULT_GRID.opts.join(',')})`, listArg)
    .option('--seeds <list>', `comma list of seeds (default ${DEFAULT_GRID.seeds.join(',')})`, listArg)
    .option('--out <dir>', 'experiment folder (default experiments/<time>)')
    .option('--workers <n>', 'points at once on this machine (default: one per CUDA GPU, else 1); --threads is split between them', integerArg(1, 256))
    .option('--hessian', "also measure each point's best checkpoint: top eigenvalues, trace and spectral density (the paper's Hessian analysis)")
    .option('--hessian-top <n>', `eigenvalues per point with --hessian (default ${DEFAULT_HESSIAN.top})`, integerArg(1))
    .option('--hessian-max-iter <n>', `power iterations per eigenvalue and trace samples at most (default ${DEFAULT_HESSIAN.maxIter})`, integerArg(1))
    .option('--hessian-iter <n>', `Lanczos steps of the spectral density with --hessian (default ${DEFAULT_HESSIAN.iter})`, integerArg(1))
    .option('--target <acc>', 'test accuracy for epochs to target, a fraction (default 95% of the best group mean best test accuracy)', targetArg)
    .option('--slurm', 'write an sbatch job-array script (one task per point not yet done) to DIR/slurm/ and submit it with sbatch')
    .option('--dry-run', 'with --slurm: print the script instead of writing and submitting anything')
    .option('--partition <name>', 'with --slurm: SLURM partition')
    .option('--time <limit>', 'with --slurm: wall time per task, e.g. 4:00:00')
    .option('--account <name>', 'with --slurm: SLURM account')
    .option('--cpus-per-task <n>', 'with --slurm: CPUs per task (passed to each task as --threads)', integerArg(1))
    .addHelpText('after', '\nEvery other `ikun train` flag (--epochs, --channels, --sample, --device, --lr, ..., --threads, --no-progress) applies to all\n' +
      'points; --init, --opt, --seed and --resume do not (the grid sets them).\n\nSubcommands:\n' +
      '  ikun experiment report DIR [--target ACC]    aggregate what has finished: results.json, results.csv, report.html\n' +
      '  ikun experiment run-one DIR --index I        run one point (a SLURM array task runs this)\n\nExamples:\n' +
      '  ikun experiment --sample --inits ikun_v1,kaiming --opts sgd --seeds 1,2 --epochs 1 --channels 8 --out runs/exp\n' +
      '  ikun experiment --data /usr/share/datasets/fashion-mnist --device cuda --slurm --partition gpu --time 2:00:00 --out /shared/exp');
}

interface GridArgs {
  spec: ExperimentSpec;
  out: string;
  workers?: number;
  threads?: number;
  progress: boolean;
  target?: number;
  slurm: boolean;
  dryRun: boolean;
  slurmOptions: SlurmOptions;
}

/** Parses `ikun experiment` flags; throws CommandUsageError with the reason. */
export function parseExperimentArgs(argv: readonly string[]): GridArgs {
  const cmd = gridCommand();
  const { own, rest } = splitOwnArgs(cmd, argv);
  parseWith(cmd, own);
  const o = cmd.opts<{ inits?: string[]; opts?: string[]; seeds?: string[]; out?: string; workers?: number; hessian?: boolean; hessianTop?: number;
    hessianMaxIter?: number; hessianIter?: number; target?: number; slurm?: boolean; dryRun?: boolean; partition?: string; time?: string; account?: string; cpusPerTask?: number }>();
  if (rest.some((a) => a === '--resume' || a.startsWith('--resume=')))
    throw new CommandUsageError('--resume does not apply to an experiment: run the same command again and it resumes its unfinished points');
  const train = parseTrainArgs(rest);
  for (const [key, flag] of [['init', '--inits'], ['opt', '--opts'], ['seed', '--seeds']] as const)
    if (key in train.config) throw new CommandUsageError(`--${key} is set per point by the grid; give ${flag} (a comma list) instead`);
  for (const init of o.inits ?? []) if (!INIT_METHODS.includes(init as InitMethod)) throw new CommandUsageError(`--inits: unknown init '${init}'; choose from ${INIT_METHODS.join(', ')}`);
  for (const opt of o.opts ?? []) if (!OPT_NAMES.includes(opt as OptName)) throw new CommandUsageError(`--opts: unknown optimiser '${opt}'; choose from ${OPT_NAMES.join(', ')}`);
  const seeds = (o.seeds ?? DEFAULT_GRID.seeds.map(String)).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 2 ** 32 - 1) throw new CommandUsageError(`--seeds: '${s}' is not an integer in [0, 4294967295]`);
    return n;
  });
  if ((o.hessianTop !== undefined || o.hessianMaxIter !== undefined || o.hessianIter !== undefined) && !o.hessian)
    throw new CommandUsageError('--hessian-top, --hessian-max-iter and --hessian-iter need --hessian');
  if (!o.slurm && (o.dryRun || o.partition || o.time || o.account || o.cpusPerTask !== undefined))
    throw new CommandUsageError('--dry-run, --partition, --time, --account and --cpus-per-task go with --slurm');
  const slurmOptions: SlurmOptions = {
    ...(o.partition !== undefined ? { partition: o.partition } : {}), ...(o.time !== undefined ? { time: o.time } : {}),
    ...(o.account !== undefined ? { account: o.account } : {}), ...(o.cpusPerTask !== undefined ? { cpusPerTask: o.cpusPerTask } : {}),
  };
  try {
    checkSlurmOptions(slurmOptions);
  } catch (error) {
    throw new CommandUsageError((error as Error).message.replace(/^ikun: /, ''));
  }
  const spec: ExperimentSpec = {
    inits: (o.inits ?? [...DEFAULT_GRID.inits]) as InitMethod[], opts: (o.opts ?? [...DEFAULT_GRID.opts]) as OptName[], seeds, config: train.config,
    hessian: o.hessian ? { ...DEFAULT_HESSIAN, ...(o.hessianTop !== undefined ? { top: o.hessianTop } : {}), ...(o.hessianMaxIter !== undefined ? { maxIter: o.hessianMaxIter } : {}),
      ...(o.hessianIter !== undefined ? { iter: o.hessianIter } : {}) } : null,
  };
  try {
    checkSpec(spec); // a bad value (--epochs 0, a repeated seed) is a bad flag: exit 2 before anything starts
  } catch (error) {
    throw new CommandUsageError((error as Error).message.replace(/^ikun: /, ''));
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return {
    spec, out: resolve(o.out ?? `experiments/${stamp}`), ...(o.workers !== undefined ? { workers: o.workers } : {}),
    ...(train.threads !== undefined ? { threads: train.threads } : {}), progress: train.progress, ...(o.target !== undefined ? { target: o.target } : {}),
    slurm: o.slurm === true, dryRun: o.dryRun === true, slurmOptions,
  };
}

function summary(dir: string, groups: ReadonlyArray<{ name: string; test_acc: { mean: number; sd: number | null }; epochs_to_target: number | null }>, target: number): string[] {
  const lines = [`results: ${dir}/${RESULTS_FILE}, ${RESULTS_CSV}, ${REPORT_FILE}`, `group               final test acc      epochs to ${(100 * target).toFixed(2)}%`];
  for (const g of groups)
    lines.push(`${g.name.padEnd(20)}${(100 * g.test_acc.mean).toFixed(2).padStart(6)}%${g.test_acc.sd === null ? '         ' : ` ± ${(100 * g.test_acc.sd).toFixed(2).padStart(5)}`}    ${g.epochs_to_target ?? 'never'}`);
  return lines;
}

async function gridMain(argv: readonly string[]): Promise<number> {
  const args = parseExperimentArgs(argv);
  if (args.threads !== undefined && args.slurm) throw new CommandUsageError('--threads is for this machine; with --slurm give --cpus-per-task');
  if (args.slurm) {
    const { file, existing } = planExperiment(args.out, args.spec);
    const todo = file.points.filter((p) => !existing || pointStatus(args.out, file, p).state !== 'done').map((p) => p.index);
    const script = sbatchScript(args.out, file, todo, args.slurmOptions, process.execPath, cliScript());
    if (args.dryRun) {
      process.stdout.write(script);
      console.error(`ikun: --dry-run: nothing written; without it ${args.out}/experiment.json and slurm/experiment.sbatch are written and submitted`);
      return 0;
    }
    ensureWritableFolder(args.out, '--out');
    if (!existing) writeExperiment(args.out, file);
    const { path, jobId } = submitSbatch(args.out, script);
    console.log(`submitted ${path} as SLURM job ${jobId} (${todo.length} array task${todo.length === 1 ? '' : 's'}); aggregate with: ikun experiment report ${args.out}`);
    return 0;
  }
  const outcome = await runExperiment(args.out, args.spec, {
    ...(args.workers !== undefined ? { workers: args.workers } : {}), ...(args.threads !== undefined ? { threads: args.threads } : {}),
    progress: args.progress, ...(args.target !== undefined ? { target: args.target } : {}),
  });
  if (outcome.results) for (const line of summary(args.out, outcome.results.groups, outcome.results.target)) console.log(line);
  for (const f of outcome.failed) console.error(`ikun: ${f.run} failed: ${f.message}`);
  if (outcome.failed.length > 0) {
    console.error(`ikun: ${outcome.failed.length} point${outcome.failed.length > 1 ? 's' : ''} failed; fix the cause and run the same command again to retry ${outcome.failed.length > 1 ? 'them' : 'it'}`);
    return 1;
  }
  return 0;
}

async function reportMain(argv: readonly string[]): Promise<number> {
  const cmd = ikunCommand('ikun experiment report', 'Aggregates the finished points of an experiment folder into results.json, results.csv and report.html.')
    .argument('<dir>', 'experiment folder (holds experiment.json)')
    .option('--target <acc>', 'test accuracy for epochs to target, a fraction (default 95% of the best group mean best test accuracy)', targetArg);
  parseWith(cmd, argv);
  const dir = resolve(cmd.args[0]!);
  const target = cmd.opts<{ target?: number }>().target;
  const results = writeResults(dir, target !== undefined ? { target } : {});
  if (results.points.pending.length > 0) console.log(`${results.points.done} of ${results.points.total} points finished; the others are left out (${results.points.pending.map((p) => p.run).join(', ')})`);
  for (const line of summary(dir, results.groups, results.target)) console.log(line);
  return 0;
}

async function runOneMain(argv: readonly string[]): Promise<number> {
  const cmd = ikunCommand('ikun experiment run-one', 'Runs one grid point of an experiment folder: trains it, resumes it, or measures its Hessian, as far as it is not done.')
    .argument('<dir>', 'experiment folder (holds experiment.json)')
    .requiredOption('--index <i>', 'the point, 0-based, in experiment.json order ($SLURM_ARRAY_TASK_ID)', integerArg(0))
    .option('--threads <n>', 'CPU threads (default: all cores)', integerArg(1, 1024))
    .option('--events', 'print progress as JSON lines (for the coordinator)');
  parseWith(cmd, argv);
  const o = cmd.opts<{ index: number; threads?: number; events?: boolean }>();
  if (o.threads !== undefined) setNumThreads(o.threads);
  const dir = resolve(cmd.args[0]!);
  const events = o.events === true;
  if (events) {
    // The coordinator holds our stdin open; when it goes away (killed, crashed), stop rather than train unwatched.
    process.stdin.on('end', () => process.exit(143));
    process.stdin.resume();
  }
  try {
    const out = (line: string): void => void process.stdout.write(line);
    const file = requireExperiment(dir);
    const epochs = pointStatus(dir, file, pointAt(file, o.index)).epochs;
    const { action, status } = await runPoint(dir, o.index, {
      log: (line) => (events ? out(eventLine({ ikun_event: 'log', line })) : console.log(line)),
      warn: (line) => (events ? out(eventLine({ ikun_event: 'warn', line })) : console.error(`ikun: ${line}`)),
      onStep: events ? (info) => out(eventLine(stepEvent(info))) : () => {},
      onEpoch: (m) => {
        if (events) out(eventLine({ ikun_event: 'epoch', metrics: m, epochs }));
        else console.log(`epoch ${m.epoch}/${epochs}  train acc ${(100 * m.train_acc).toFixed(2)}%  test acc ${(100 * m.test_acc).toFixed(2)}%  ${m.epoch_s.toFixed(1)} s`);
      },
    });
    if (events) out(eventLine({ ikun_event: 'done', action, epochs_done: status.epochsDone }));
    else console.log(`${status.point.run}: ${action} (${status.epochsDone}/${status.epochs} epochs)`);
  } finally {
    // stdin, watched above, would keep this process alive after its point ended (either way)
    if (events) process.stdin.pause();
  }
  return 0;
}

/** `ikun experiment ...`; returns the exit code. */
export async function experimentCommand(argv: string[]): Promise<number> {
  const sub = argv[0] === 'report' ? 'report' : argv[0] === 'run-one' ? 'run-one' : null;
  try {
    if (sub === 'report') return await reportMain(argv.slice(1));
    if (sub === 'run-one') return await runOneMain(argv.slice(1));
    return await gridMain(argv);
  } catch (error) {
    if (error instanceof HelpShown) return 0;
    if (error instanceof CommandUsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun experiment ${sub ? `${sub} ` : ''}--help' for the flags.`);
      return 2;
    }
    console.error(cliMessage(error));
    return 1;
  }
}
