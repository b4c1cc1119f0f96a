// The caller's side of the worker thread behind train() and resume(). Each training step is seconds of
// native work; the loop runs in a worker thread so the caller's event loop (servers, progress bars,
// signals) stays responsive. Hooks run on the caller's thread; a hook that throws stops the run after
// that epoch, like a killed process (the run folder can then be resumed). An aborted signal asks the
// worker to stop after the step in progress (through shared memory, which the worker reads every step).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../data.js';
import { IkunError, fail, type ErrorDetails } from '../errors.js';
import type { EpochMetrics, FitHooks, StepInfo } from '../fit.js';
import type { ResumeOverrides, TrainConfig } from './config.js';

/** Hooks of train() and resume(): log lines, each step, each epoch (a hook that throws stops the run after that epoch), and a stop signal. */
export interface TrainHooks extends FitHooks {
  /** Aborting it stops the run after the step in progress, saving that point (the promise rejects with code INTERRUPTED). */
  signal?: AbortSignal;
}

export interface TrainResult {
  runDir: string;
  config: TrainConfig;
  metrics: EpochMetrics[];
  bestTestAcc: number;
}

export type WorkerRequest = { kind: 'train'; config: Partial<TrainConfig> } | { kind: 'resume'; runDir: string; overrides: ResumeOverrides };
export type WorkerMessage =
  | { kind: 'log'; line: string }
  | { kind: 'step'; info: StepInfo }
  | { kind: 'epoch'; metrics: EpochMetrics }
  | { kind: 'done'; result: TrainResult }
  | { kind: 'error'; message: string; code?: string; details?: ErrorDetails };

function workerScript(): URL {
  // Compiled next to lib/train.js; under a TypeScript runner (vitest), the compiled copy in dist/.
  const sibling = new URL('../train-worker.js', import.meta.url);
  if (existsSync(sibling)) return sibling;
  const compiled = pathToFileURL(join(packageRoot(), 'dist', 'lib', 'train-worker.js'));
  if (!existsSync(compiled)) fail(`the training worker ${compiled.pathname} is missing; build it with 'npm run build:ts'`);
  return compiled;
}

// Shared control words. GATE: after each epoch the worker waits until the caller's onEpoch hook has run
// (1 continue, 2 stop), so a hook that throws stops the run exactly after that epoch, as a killed process
// would. STOP: set to 1 when the caller's signal aborts.
export const GATE = 0, STOP = 1;
export const GATE_WAIT = 0, GATE_CONTINUE = 1, GATE_STOP = 2;

export function runInWorker(request: WorkerRequest, hooks: TrainHooks): Promise<TrainResult> {
  return new Promise((resolveResult, reject) => {
    const control = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(workerScript(), { workerData: { ...request, control } });
    const openGate = (value: number): void => {
      Atomics.store(control, GATE, value);
      Atomics.notify(control, GATE);
    };
    const requestStop = (): void => {
      Atomics.store(control, STOP, 1);
    };
    if (hooks.signal?.aborted) requestStop();
    hooks.signal?.addEventListener('abort', requestStop, { once: true });
    let settled = false;
    const finish = (error: Error | null, result?: TrainResult): void => {
      if (settled) return;
      settled = true;
      hooks.signal?.removeEventListener('abort', requestStop);
      if (error) {
        openGate(GATE_STOP);
        void worker.terminate();
        reject(error);
      } else resolveResult(result!);
    };
    worker.on('message', (message: WorkerMessage) => {
      try {
        if (message.kind === 'log') hooks.log?.(message.line);
        else if (message.kind === 'step') hooks.onStep?.(message.info);
        else if (message.kind === 'epoch') {
          hooks.onEpoch?.(message.metrics);
          openGate(GATE_CONTINUE);
        }
        else if (message.kind === 'done') finish(null, message.result);
        else finish(message.code ? new IkunError(message.code, message.message, message.details) : new Error(message.message));
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
    worker.on('error', (error) => finish(error));
    worker.on('exit', (code) => finish(new Error(`ikun: the training worker stopped unexpectedly (exit code ${code})`)));
  });
}
