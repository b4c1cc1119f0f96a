// The command line's words for the API's coded errors: flags (--out, --resume, --data, ...) where the
// API speaks of its arguments. Only the CLI says '--'.
import { dirname } from 'node:path';
import { dataNotFoundMessage } from './data.js';
import { rephrase, type IkunError, type Wording } from './errors.js';
import { divergedMessage } from './fit/divergence.js';
import { finishedText } from './fit/run-folder.js';
import type { StopSignal } from './signals.js';
import { stoppedText } from './train.js';

const CLI_WORDING: Wording = {
  RUN_EXISTS: (d) => `'${d.dir}' already holds a run (last.safetensors); continue it with --resume ${d.dir} or choose another --out`,
  RUN_NOT_FOUND: (d) => `--resume: '${d.dir}' is not a run folder (no config.json)`,
  RUN_NOT_STARTED: (d) => `--resume: '${d.dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again with the same --out`,
  RUN_FINISHED: (d) => `--resume: '${d.dir}' has finished ${finishedText(Number(d.done), Number(d.epochs))}; pass --epochs with a larger total to train on`,
  OUT_UNWRITABLE: (d) => `cannot write to the output folder '${d.dir}': ${d.reason}. Choose another --out.`,
  DATA_NOT_FOUND: (d) => dataNotFoundMessage(d, { dir: '`--data DIR`', sample: '`--sample`' }),
  DEVICE_UNAVAILABLE: (d) => `device '${d.device}' cannot be used: ${d.reason}. Use --device cpu.`,
  DIVERGED: (d) => divergedMessage(d, '--on-nan skip'),
  WRITE_FAILED: (d) => `cannot write ${JSON.stringify(d.path)}: ${d.reason}. The previous file is left as it was; ` +
    `free space (or make the folder writable), then continue the run with: ikun train --resume ${dirname(String(d.path))}`,
  CHECKPOINT_UNREADABLE: (d) => `--resume: no checkpoint in '${d.dir}' can be read (${d.reasons}); start the run again with another --out`,
};

/** What `ikun train` prints when a signal stopped it: where, and how to go on. */
export function interruptedMessage(error: IkunError, signal: StopSignal): string {
  const d = error.details;
  return d.saved
    ? `ikun: ${signal}: ${stoppedText(d)}. Continue with: ikun train --resume ${d.dir}`
    : `ikun: ${signal}: ${stoppedText(d)}; nothing was saved`;
}

/** The message to print for an error that ends a command. */
export function cliMessage(error: unknown): string {
  const e = rephrase(error, CLI_WORDING);
  return e instanceof Error ? e.message : String(e);
}
