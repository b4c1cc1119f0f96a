// The worker thread behind train() and resume(): runs the loop here and reports back to the caller.
import { parentPort, workerData } from 'node:worker_threads';
import { resumeHere, trainHere, type TrainHooks, type WorkerMessage } from './train.js';

const port = parentPort!;
const post = (message: WorkerMessage): void => port.postMessage(message);
const hooks: TrainHooks = {
  log: (line) => post({ kind: 'log', line }),
  onStep: (info) => post({ kind: 'step', info }),
  onEpoch: (metrics) => post({ kind: 'epoch', metrics }),
};

const request = workerData as { kind: 'train'; config: object } | { kind: 'resume'; runDir: string; overrides: { epochs?: number } };
const run = request.kind === 'train' ? trainHere(request.config, hooks) : resumeHere(request.runDir, hooks, request.overrides);
run.then(
  (result) => post({ kind: 'done', result }),
  (error: unknown) => post({ kind: 'error', message: error instanceof Error ? error.message : String(error) }),
);
