// The worker thread behind train() and resume(): runs the loop here and reports back to the caller.
import { parentPort, workerData } from 'node:worker_threads';
import { IkunError } from './errors.js';
import { GATE, GATE_CONTINUE, GATE_WAIT, STOP, resumeHere, trainHere, type ResumeOverrides, type TrainHooks, type WorkerMessage } from './train.js';

const port = parentPort!;
const post = (message: WorkerMessage): void => port.postMessage(message);
const request = workerData as ({ kind: 'train'; config: object } | { kind: 'resume'; runDir: string; overrides: ResumeOverrides }) & {
  control: Int32Array;
};
// The caller's stop request arrives in shared memory; fit() looks at the signal after each step's onStep
// hook, so the hook turns the request into an abort first.
const stop = new AbortController();
// Steps go to the caller at most every 100 ms (and the last of each pass): each message reads the step's
// loss, which on a GPU waits for the device, and a progress display needs no more.
let lastStepPost = 0;
const hooks: TrainHooks = {
  log: (line) => post({ kind: 'log', line }),
  onStep: (info) => {
    if (Atomics.load(request.control, STOP) === 1 && !stop.signal.aborted) stop.abort();
    const now = performance.now();
    if (now - lastStepPost < 100 && info.step !== info.steps && info.step !== 1) return;
    lastStepPost = now;
    post({ kind: 'step', info: { ...info, loss: info.loss } });
  },
  onEpoch: (metrics) => {
    // Wait for the caller's hook: it may stop the run here (the epoch is already on disk).
    Atomics.store(request.control, GATE, GATE_WAIT);
    post({ kind: 'epoch', metrics });
    Atomics.wait(request.control, GATE, GATE_WAIT);
    if (Atomics.load(request.control, GATE) !== GATE_CONTINUE) process.exit(0);
    if (Atomics.load(request.control, STOP) === 1 && !stop.signal.aborted) stop.abort();
  },
  signal: stop.signal,
};

const run = request.kind === 'train' ? trainHere(request.config, hooks) : resumeHere(request.runDir, hooks, request.overrides);
run.then(
  (result) => post({ kind: 'done', result }),
  (error: unknown) => post(error instanceof IkunError
    ? { kind: 'error', message: error.message, code: error.code, details: { ...error.details } }
    : { kind: 'error', message: error instanceof Error ? error.message : String(error) }),
);
