// `ikun eval --checkpoint FILE [--data DIR | --sample]`: test loss and accuracy of a checkpoint (an `ikun
// train` run's, or one written by PyTorch with the same keys), its accuracy per class and the confusion
// matrix. --json prints { test_loss, test_acc, per_class_acc, confusion, ... }. Exit codes: 0 done, 1 the
// evaluation failed (missing or corrupt checkpoint, missing data), 2 bad flags. The evaluation, which loads the
// native addon, is imported once the flags are good: --help works without it.
import type { EvalResult } from '../eval.js';
import { CommandUsageError, HelpShown, ikunCommand, integerArg, parseWith } from './commander-usage.js';
import { failureMessage } from './failure-message.js';

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function evalProgram() {
  return ikunCommand('ikun eval', 'Evaluates a checkpoint on the test set: loss, accuracy, accuracy per class and the confusion matrix.')
    .requiredOption('--checkpoint <file>', 'the .safetensors file, e.g. RUN/best.safetensors (a PyTorch state dict with the same keys works too)')
    .option('--data <dir>', "folder with the IDX files (default: the run's --data, $IKUN_DATA, /usr/share/datasets/fashion-mnist, ./data)")
    .option('--sample', 'the bundled sample (also used when the run trained on it)')
    .option('--batch <n>', 'test images per batch (default 256)', integerArg(1))
    .option('--T <n>', 'time steps, for a checkpoint without a config (a PyTorch file; default 4)', integerArg(1))
    .option('--threads <n>', 'CPU threads (default: all cores)', integerArg(1, 1024))
    .option('--json', 'print the results as one JSON object');
}

/** The confusion matrix as text: rows are the true classes, columns the predictions. */
export function confusionText(confusion: readonly (readonly number[])[]): string[] {
  const width = Math.max(5, ...confusion.flat().map((v) => String(v).length + 1));
  const lines = [`true\\pred ${confusion.map((_, c) => String(c).padStart(width)).join('')}`];
  confusion.forEach((row, t) => lines.push(`${String(t).padStart(9)} ${row.map((v) => String(v).padStart(width)).join('')}`));
  return lines;
}

function textReport(r: EvalResult): string[] {
  const pct = (v: number | null): string => (v === null ? '   –  ' : `${(100 * v).toFixed(2).padStart(6)}%`);
  return [
    `checkpoint: ${r.checkpoint}`,
    `data: ${r.images} test images of the ${r.data}`,
    `test loss ${r.test_loss.toFixed(6)} (${r.loss})  test accuracy ${pct(r.test_acc).trim()}`,
    'accuracy per class:',
    ...r.per_class_acc.map((a, c) => `  ${String(c).padStart(2)} ${((r.data === 'mnist' ? '' : FASHION_CLASSES[c]) ?? '').padEnd(12)} ${pct(a)}`),
    'confusion matrix (rows: true class, columns: predicted):',
    ...confusionText(r.confusion),
  ];
}

export async function evalCommand(argv: string[]): Promise<number> {
  try {
    const cmd = evalProgram();
    parseWith(cmd, argv);
    if (cmd.args.length > 0) throw new CommandUsageError(`unexpected argument '${cmd.args[0]}' (give the checkpoint with --checkpoint)`);
    const o = cmd.opts<{ checkpoint: string; data?: string; sample?: boolean; batch?: number; T?: number; threads?: number; json?: boolean }>();
    if (o.sample && o.data !== undefined) throw new CommandUsageError('give --data DIR or --sample, not both');
    if (o.checkpoint === '') throw new CommandUsageError('--checkpoint needs a file');
    const [{ setNumThreads }, { evaluateCheckpoint }] = await Promise.all([import('../index.js'), import('../eval.js')]);
    if (o.threads !== undefined) setNumThreads(o.threads);
    const r = await evaluateCheckpoint(o.checkpoint, {
      ...(o.data !== undefined ? { data: o.data } : {}), ...(o.sample ? { sample: true } : {}), ...(o.batch !== undefined ? { batch: o.batch } : {}),
      ...(o.T !== undefined ? { overrides: { T: o.T } } : {}),
    });
    if (o.json) console.log(JSON.stringify(r));
    else for (const line of textReport(r)) console.log(line);
    return 0;
  } catch (error) {
    if (error instanceof HelpShown) return 0;
    if (error instanceof CommandUsageError) {
      console.error(`ikun: ${error.message}\nRun 'ikun eval --help' for the flags.`);
      return 2;
    }
    console.error(await failureMessage(error));
    return 1;
  }
}
