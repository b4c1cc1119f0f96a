// `ikun experiment`: runs the grid's unfinished points, N at a time, each in its own child process
// (`ikun experiment run-one DIR --index I --events`), then aggregates. A child per point keeps one
// point's crash, memory and thread pool away from the others, and is the same program a SLURM array task
// runs. CPU threads are split between the workers; with CUDA GPUs each worker gets one GPU of its own.
// A rerun skips done points and resumes partial ones (each point's state is read from its run folder).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../data.js';
import { fail } from '../errors.js';
import { ensureWritableFolder } from '../files.js';
import { native } from '../native.js';
import { parseEventLine } from './events.js';
import { planExperiment, writeExperiment, type ExperimentFile, type ExperimentSpec } from './grid.js';
import { gridProgress, type GridProgress } from './progress.js';
import { writeResults, type ResultsFile } from './results.js';
import { pointStatus, type PointStatus } from './status.js';

export interface ExperimentOptions {
  /** Points at once (default: one per CUDA GPU when the grid may use them, else 1). */
  workers?: number;
  /** CPU threads in all, split between the workers (default: all cores). */
  threads?: number;
  /** Draw bars on a terminal (default true; off a terminal there are lines either way). */
  progress?: boolean;
  target?: number;
}

export interface ExperimentOutcome {
  file: ExperimentFile;
  /** Points trained or resumed this time (not those already done). */
  ran: string[];
  skipped: string[];
  failed: Array<{ run: string; message: string }>;
  results: ResultsFile | null;
}

/** The compiled CLI the children run: next to this module's parent, or dist/ under a TypeScript runner. */
export function cliScript(): string {
  const sibling = fileURLToPath(new URL('../cli.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const compiled = join(packageRoot(), 'dist', 'lib', 'cli.js');
  if (!existsSync(compiled)) fail(`the ikun command ${compiled} is missing; build it with 'npm run build:ts'`);
  return compiled;
}

function gpuPlan(file: ExperimentFile, requested: number | undefined): { workers: number; gpus: number } {
  const device = file.config.device ?? 'auto';
  const gpus = device === 'cpu' ? 0 : native.cudaDeviceCount();
  if (gpus === 0 || /^cuda:\d+$/.test(device)) return { workers: requested ?? 1, gpus: 0 };
  return { workers: Math.min(requested ?? gpus, gpus), gpus };
}

interface Child {
  process: ChildProcess;
  status: PointStatus;
}

function runChild(dir: string, status: PointStatus, threads: number, gpu: number | null, progress: GridProgress, children: Set<Child>): Promise<string | null> {
  return new Promise((done) => {
    const name = status.point.run.replace(/^runs\//, '');
    const env = { ...process.env, ...(gpu !== null ? { CUDA_VISIBLE_DEVICES: String(gpu) } : {}) };
    const args = [cliScript(), 'experiment', 'run-one', dir, '--index', String(status.point.index), '--events', '--threads', String(threads)];
    // stdin is a pipe the child watches: when this process dies, however it dies, the child stops too.
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const entry: Child = { process: child, status };
    children.add(entry);
    progress.start(name, status.epochs, status.epochsDone);
    const other: string[] = [];
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const event = parseEventLine(line);
        if (!event) {
          if (line.trim() !== '') other.push(line);
          continue;
        }
        if (event.ikun_event === 'step') progress.step(name, event.epoch, event.step, event.steps, event.phase, event.loss);
        else if (event.ikun_event === 'epoch') progress.epoch(name, event.metrics, status.epochs);
        else if (event.ikun_event === 'warn') progress.line(`${name}: ${event.line}`);
      }
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => {
      children.delete(entry);
      progress.finish(name, false, `failed to start: ${error.message}`);
      done(`could not start ${process.execPath}: ${error.message}`);
    });
    child.on('close', (code, signal) => {
      children.delete(entry);
      if (code === 0) {
        progress.finish(name, true, 'done');
        done(null);
        return;
      }
      const why = (stderr.trim() || other.slice(-5).join('\n') || `exit code ${code ?? signal}`).replace(/\n+$/, '');
      progress.finish(name, false, `FAILED: ${why.split('\n').slice(-1)[0]}`);
      done(why);
    });
  });
}

/** Plans (or continues) the experiment in dir and runs every point that is not done, then reports. */
export async function runExperiment(dirArg: string, spec: ExperimentSpec, options: ExperimentOptions = {}): Promise<ExperimentOutcome> {
  const dir = resolve(dirArg);
  const { file, existing } = planExperiment(dir, spec); // every check before anything is written
  ensureWritableFolder(dir);
  if (!existing) writeExperiment(dir, file);
  const statuses = file.points.map((p) => pointStatus(dir, file, p));
  const todo = statuses.filter((s) => s.state !== 'done');
  const skipped = statuses.filter((s) => s.state === 'done').map((s) => s.point.run);
  const plan = gpuPlan(file, options.workers);
  const workers = Math.max(1, Math.min(plan.workers, todo.length || 1));
  const threads = Math.max(1, Math.floor((options.threads ?? availableParallelism()) / workers));
  const progress = gridProgress({
    tty: (options.progress ?? true) && process.stderr.isTTY === true, points: file.points.length, pointsDone: skipped.length,
    totalEpochs: statuses.reduce((a, s) => a + s.epochs, 0), doneEpochs: statuses.reduce((a, s) => a + Math.min(s.epochsDone, s.epochs), 0),
  });
  progress.line(`experiment ${dir}: ${file.points.length} points, ${skipped.length} done, ${todo.length} to run on ${workers} worker${workers > 1 ? 's' : ''}` +
    ` (${threads} CPU thread${threads > 1 ? 's' : ''} each${plan.gpus > 0 ? ', one GPU each' : ''})`);
  const children = new Set<Child>();
  const stopChildren = (): void => {
    for (const c of children) c.process.kill('SIGTERM');
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    stopChildren();
    progress.stop();
    console.error(`ikun: experiment stopped by ${signal}; run the same command again to continue where it stopped`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const failed: ExperimentOutcome['failed'] = [];
  const ran: string[] = [];
  try {
    let next = 0;
    const slot = async (index: number): Promise<void> => {
      while (next < todo.length) {
        const status = todo[next++]!;
        const error = await runChild(dir, status, threads, plan.gpus > 0 ? index : null, progress, children);
        if (error === null) ran.push(status.point.run);
        else failed.push({ run: status.point.run, message: error });
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, i) => slot(i)));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stopChildren();
    progress.stop();
  }
  let results: ResultsFile | null = null;
  if (file.points.length > failed.length || skipped.length > 0) {
    try {
      results = writeResults(dir, options.target !== undefined ? { target: options.target } : {});
    } catch (error) {
      if (failed.length === 0) throw error;
    }
  }
  return { file, ran, skipped, failed, results };
}
