// The progress display of `ikun hessian` on a terminal: a cli-progress bar on stderr per checkpoint and phase
// (eigenvalues, trace, density) with the step, the running estimate, elapsed time and ETA. Off a terminal,
// or with --no-progress, only the result lines are printed.
import cliProgress from 'cli-progress';
import type { SpectralProgress } from '../hessian.js';

export interface HessianProgress {
  progress(checkpointIndex: number, checkpoints: number, p: SpectralProgress): void;
  line(text: string): void;
  /** A warning on stderr (the numbers are still written). */
  warn(text: string): void;
  clear(): void;
}

export function hessianProgress(enabled: boolean): HessianProgress {
  const tty = enabled && process.stderr.isTTY === true;
  let bar: cliProgress.SingleBar | null = null;
  let shownFor = '';
  const clear = (): void => {
    bar?.stop();
    bar = null;
    shownFor = '';
  };
  return {
    progress(ci, cn, p) {
      if (!tty) return;
      // The bar's unit is a thousandth of the phase: the power iterations of one eigenvalue end early when it
      // converges, so the fraction, not a step count, is what moves steadily.
      const phaseKey = `${ci}:${p.phase}`;
      if (bar === null || shownFor !== phaseKey) {
        clear();
        bar = new cliProgress.SingleBar({
          stream: process.stderr, clearOnComplete: true, hideCursor: true, fps: 10, barsize: 24,
          format: 'checkpoint {checkpoint} |{bar}| {what} step {step}{estimate}  {duration_formatted} elapsed  ETA {eta_formatted}',
        }, cliProgress.Presets.shades_classic);
        bar.start(1000, 0, { checkpoint: `${ci}/${cn}`, what: '', step: '', estimate: '' });
        shownFor = phaseKey;
      }
      const fraction = Math.min(1, (p.index - 1 + p.iteration / p.maxIterations) / p.count);
      const what = p.phase === 'eigenvalues' ? `eigenvalue ${p.index}/${p.count}` : p.phase === 'trace' ? 'trace' : `density run ${p.index}/${p.count}`;
      const estimate = p.phase === 'density' ? '' : ` ${p.phase === 'trace' ? 'mean' : 'estimate'} ${p.value.toPrecision(5)}`;
      bar.update(Math.round(1000 * fraction), { what, step: `${p.iteration}/${p.maxIterations}`, estimate });
    },
    line(text) {
      clear();
      console.log(text);
    },
    warn(text) {
      clear();
      console.error(text);
    },
    clear,
  };
}
