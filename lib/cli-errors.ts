// The command line's words for the API's coded errors: flags (--out, --resume, --data, ...) where the
// API speaks of its arguments. Only the CLI says '--'.
import { dataNotFoundMessage } from './data.js';
import { rephrase, type Wording } from './errors.js';
import { finishedText } from './fit/run-folder.js';

const CLI_WORDING: Wording = {
  RUN_EXISTS: (d) => `'${d.dir}' already holds a run (last.safetensors); continue it with --resume ${d.dir} or choose another --out`,
  RUN_NOT_FOUND: (d) => `--resume: '${d.dir}' is not a run folder (no config.json)`,
  RUN_NOT_STARTED: (d) => `--resume: '${d.dir}' has no last.safetensors yet (the run stopped before its first epoch ended); start it again with the same --out`,
  RUN_FINISHED: (d) => `--resume: '${d.dir}' has finished ${finishedText(Number(d.done), Number(d.epochs))}; pass --epochs with a larger total to train on`,
  OUT_UNWRITABLE: (d) => `cannot write to the output folder '${d.dir}': ${d.reason}. Choose another --out.`,
  DATA_NOT_FOUND: (d) => dataNotFoundMessage(d, { dir: '`--data DIR`', sample: '`--sample`' }),
  DEVICE_UNAVAILABLE: (d) => `device '${d.device}' cannot be used: ${d.reason}. Use --device cpu.`,
};

/** The message to print for an error that ends a command. */
export function cliMessage(error: unknown): string {
  const e = rephrase(error, CLI_WORDING);
  return e instanceof Error ? e.message : String(e);
}
