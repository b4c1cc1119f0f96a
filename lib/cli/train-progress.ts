// The progress display of `ikun train` on a terminal: one cli-progress bar per epoch on stderr (the epoch
// lines stay on stdout) with the phase, step, loss, elapsed time, ETA and samples/s. Off a terminal, or with
// --no-progress, nothing is drawn and the epoch lines are the whole output.
import cliProgress from 'cli-progress';
import type { StepInfo } from '../fit/options.js';

export interface EpochProgress {
  step(s: StepInfo): void;
  /** Prints a line above the bar (the bar is drawn again below it at the next step). */
  line(text: string, stream: 'stdout' | 'stderr'): void;
  /** Removes the bar of the epoch in progress (the epoch ended, the run ended or stopped). */
  clear(): void;
}

/**
 * samplesPerStep: the training batch (null when it is not known: samples/s is then left out). The test pass
 * counts towards the epoch's bar but not its samples/s.
 */
export function epochProgress(options: { enabled: boolean; samplesPerStep: number | null }): EpochProgress {
  const plain = (text: string, stream: 'stdout' | 'stderr'): void => void (stream === 'stdout' ? console.log(text) : console.error(text));
  if (!options.enabled || process.stderr.isTTY !== true) return { step: () => {}, line: plain, clear: () => {} };
  let bar: cliProgress.SingleBar | null = null;
  let epoch = 0;
  let started = 0;
  const newBar = (s: StepInfo): cliProgress.SingleBar => {
    const b = new cliProgress.SingleBar({
      stream: process.stderr, clearOnComplete: true, hideCursor: true, fps: 10, barsize: 24, etaBuffer: 50,
      format: 'epoch {epoch} |{bar}| {phase} {step}/{steps} loss {loss}  {duration_formatted} elapsed  ETA {eta_formatted}  {rate} samples/s',
    }, cliProgress.Presets.shades_classic);
    // The bar's unit is a training step; the test pass is its last tenth, about its share of an epoch's time.
    b.start(Math.ceil(s.steps / 0.9), 0, { epoch: `${s.epoch}/${s.epochs}`, phase: s.phase, step: 0, steps: s.steps, loss: '-', rate: '-' });
    return b;
  };
  return {
    step(s) {
      if (s.epoch !== epoch || bar === null) {
        bar?.stop();
        epoch = s.epoch;
        started = Date.now();
        bar = newBar(s);
      }
      const total = bar.getTotal();
      const trainSteps = Math.round(total * 0.9);
      const value = s.phase === 'train' ? (trainSteps * s.step) / s.steps : trainSteps + ((total - trainSteps) * s.step) / s.steps;
      const elapsed = (Date.now() - started) / 1000;
      const trained = s.phase === 'train' ? s.step : null;
      const rate = options.samplesPerStep !== null && trained !== null && elapsed > 0 ? (trained * options.samplesPerStep / elapsed).toFixed(0) : undefined;
      bar.update(value, { phase: s.phase, step: s.step, steps: s.steps, loss: s.loss.toFixed(4), ...(rate !== undefined ? { rate } : {}) });
    },
    line(text, stream) {
      // cli-progress redraws on its own timer; stop it so that the line is not overwritten, and start a new
      // bar at the next step.
      this.clear();
      plain(text, stream);
    },
    clear() {
      bar?.stop();
      bar = null;
      epoch = 0;
    },
  };
}
