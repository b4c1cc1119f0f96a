// `ikun train`: the paper's experiment with every knob as a flag (lib/cli/train-flags.ts). Exit codes: 0 done,
// 1 the run failed (missing data, unwritable folder, divergence, a failed write, ...), 2 bad flags, 130 / 143
// stopped by SIGINT / SIGTERM after saving the step it was on. The modules that load the native addon are
// imported once the flags are good, so that --help and the flag checks work without it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IkunError } from '../errors.js';
import { exitCodeFor, stopOnSignals } from '../signals.js';
import type { EpochMetrics, StepInfo } from '../fit.js';
import { DEFAULT_CONFIG, resolveConfig, type ResumeOverrides, type TrainConfig } from '../train/config.js';
import { CommandUsageError } from './commander-usage.js';
import { failureMessage } from './failure-message.js';
import { parseTrainArgs, trainProgram } from './train-flags.js';
import { epochProgress } from './train-progress.js';

function defaultRunDir(c: Partial<TrainConfig>): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join('runs', `${c.init ?? DEFAULT_CONFIG.init}-${c.opt ?? DEFAULT_CONFIG.opt}-s${c.seed ?? DEFAULT_CONFIG.seed}-${stamp}`);
}

export function formatEpoch(m: EpochMetrics, epochs: number): string {
  const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;
  return `epoch ${m.epoch}/${epochs}  train loss ${m.train_loss.toFixed(4)} acc ${pct(m.train_acc)}  test loss ${m.test_loss.toFixed(4)} acc ${pct(m.test_acc)}  lr ${m.lr.toPrecision(3)}  |g| ${m.grad_norm.toFixed(4)}  ${m.epoch_s.toFixed(1)} s  ${m.samples_per_s.toFixed(0)} samples/s`;
}

/** The training batch of the run in dir, for the progress bar's samples/s; null when its config cannot be read (resume() then says why). */
function savedBatch(dir: string): number | null {
  try {
    const batch = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { batch?: unknown }).batch;
    return typeof batch === 'number' ? batch : null;
  } catch {
    return null;
  }
}

async function runTraining(argv: string[]): Promise<number> {
  const args = parseTrainArgs(argv);
  if (args.help) {
    trainProgram().outputHelp();
    return 0;
  }
  const config = { ...args.config, out: args.config.out ?? defaultRunDir(args.config) };
  if (args.resume === undefined) {
    try {
      resolveConfig(config); // a bad value is a bad flag: exit 2 before anything starts
    } catch (error) {
      throw new CommandUsageError((error as Error).message.replace(/^ikun: /, ''));
    }
  }
  const [{ setNumThreads }, { train, resume }, { interruptedMessage }, { writeRunReport }] = await Promise.all([
    import('../index.js'), import('../train.js'), import('../cli-errors.js'), import('../report/run-report.js')]);
  if (args.threads !== undefined) setNumThreads(args.threads);
  // The run's total: a resumed run's comes with its first step (its saved config, or --epochs).
  let totalEpochs = args.config.epochs ?? DEFAULT_CONFIG.epochs;
  const bar = epochProgress({
    enabled: args.progress,
    samplesPerStep: args.resume !== undefined ? savedBatch(args.resume) : args.config.batch ?? DEFAULT_CONFIG.batch,
  });
  const stop = stopOnSignals((signal) => {
    bar.line(`ikun: ${signal}: stopping after the current step and saving it (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again stops at once)`, 'stderr');
  });
  const hooks = {
    log: (line: string) => bar.line(line, 'stdout'),
    onStep: (s: StepInfo) => {
      totalEpochs = s.epochs;
      bar.step(s);
    },
    onEpoch: (m: EpochMetrics) => bar.line(formatEpoch(m, totalEpochs), 'stdout'),
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
    bar.clear();
    const signal = stop.received();
    if (!(error instanceof IkunError && error.code === 'INTERRUPTED' && signal)) throw error;
    console.error(interruptedMessage(error, signal));
    return exitCodeFor(signal);
  } finally {
    stop.dispose();
  }
}

/** `ikun train ...`; returns the exit code. */
export async function trainCommand(argv: string[]): Promise<number> {
  try {
    return await runTraining(argv);
  } catch (error) {
    if (error instanceof CommandUsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun train --help' for the flags.`);
      return 2;
    }
    console.error(await failureMessage(error));
    return 1;
  }
}
