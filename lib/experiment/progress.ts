// One progress display for a whole grid. On a terminal (cli-progress): a bar for the grid in epochs,
// with points done, elapsed time, ETA and samples/s, and a bar per running point (its epoch and step).
// Off a terminal: one line per finished epoch and per finished point, for logs.
import cliProgress from 'cli-progress';
import type { EpochMetrics } from '../fit.js';

export interface GridProgress {
  start(name: string, epochs: number, epochsDone: number): void;
  step(name: string, epoch: number, step: number, steps: number, phase: string, loss: number): void;
  epoch(name: string, m: EpochMetrics, epochs: number): void;
  finish(name: string, ok: boolean, note: string): void;
  line(text: string): void;
  stop(): void;
}

const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;

function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/** totalEpochs: epochs over all points of the grid; doneEpochs: those already on disk. */
export function gridProgress(options: { tty: boolean; points: number; pointsDone: number; totalEpochs: number; doneEpochs: number }): GridProgress {
  const startTime = Date.now();
  let pointsDone = options.pointsDone;
  let epochsFinished = options.doneEpochs;
  const startEpochs = options.doneEpochs;
  const fraction = new Map<string, number>(); // running points: fraction of their current epoch
  const samples = { count: 0 };
  const rate = (): string => {
    const seconds = (Date.now() - startTime) / 1000;
    return seconds > 0 ? (samples.count / seconds).toFixed(0) : '0';
  };
  const progressValue = (): number => epochsFinished + [...fraction.values()].reduce((a, b) => a + b, 0);
  const eta = (): string => {
    const gained = progressValue() - startEpochs;
    const seconds = (Date.now() - startTime) / 1000;
    return gained > 0 ? formatSeconds(((options.totalEpochs - progressValue()) * seconds) / gained) : '--';
  };

  if (!options.tty) {
    return {
      start: (name, epochs, done) => console.log(`${name}: ${done > 0 ? `resuming after epoch ${done} of ${epochs}` : `starting (${epochs} epochs)`}`),
      step: () => {},
      epoch: (name, m, epochs) => {
        epochsFinished += 1;
        samples.count += m.samples_per_s * (m.epoch_s - m.test_s);
        console.log(`${name}: epoch ${m.epoch}/${epochs}  train acc ${pct(m.train_acc)}  test acc ${pct(m.test_acc)}  ${m.epoch_s.toFixed(1)} s  ` +
          `[grid ${Math.round(progressValue())}/${options.totalEpochs} epochs, ETA ${eta()}]`);
      },
      finish: (name, ok, note) => {
        if (ok) pointsDone += 1;
        console.log(`${name}: ${note} [${pointsDone}/${options.points} points done, ${formatSeconds((Date.now() - startTime) / 1000)} elapsed]`);
      },
      line: (text) => console.log(text),
      stop: () => {},
    };
  }

  const multi = new cliProgress.MultiBar({
    clearOnComplete: false, hideCursor: true, stream: process.stderr, fps: 5, barsize: 24, autopadding: true,
    format: '{name} |{bar}| {detail}',
  }, cliProgress.Presets.shades_classic);
  const grid = multi.create(options.totalEpochs, options.doneEpochs, { name: 'grid'.padEnd(22), detail: '' });
  const bars = new Map<string, cliProgress.SingleBar>();
  const refreshGrid = (): void => {
    grid.update(progressValue(), {
      detail: `${progressValue().toFixed(1)}/${options.totalEpochs} epochs  ${pointsDone}/${options.points} points  ` +
        `${formatSeconds((Date.now() - startTime) / 1000)} elapsed  ETA ${eta()}  ${rate()} samples/s`,
    });
  };
  const timer = setInterval(refreshGrid, 1000);
  refreshGrid();
  return {
    start(name, epochs, done) {
      bars.set(name, multi.create(epochs, done, { name: name.padEnd(22), detail: `epoch ${done + 1}/${epochs}` }));
      fraction.set(name, 0);
    },
    step(name, epoch, step, steps, phase, loss) {
      const bar = bars.get(name);
      if (!bar) return;
      // counted as nine tenths training, the last tenth the test pass (about their share of an epoch's time)
      fraction.set(name, phase === 'train' ? 0.9 * (step / steps) : 0.9 + 0.1 * (step / steps));
      bar.update(epoch - 1 + fraction.get(name)!, { detail: `epoch ${epoch}/${bar.getTotal()} ${phase} ${step}/${steps} loss ${loss.toFixed(4)}` });
      refreshGrid();
    },
    epoch(name, m, epochs) {
      epochsFinished += 1;
      fraction.set(name, 0);
      samples.count += m.samples_per_s * (m.epoch_s - m.test_s);
      bars.get(name)?.update(m.epoch, { detail: `epoch ${m.epoch}/${epochs} test acc ${pct(m.test_acc)}` });
      refreshGrid();
    },
    finish(name, ok, note) {
      if (ok) pointsDone += 1;
      fraction.delete(name);
      const bar = bars.get(name);
      if (bar) {
        bar.update({ detail: note });
        bar.stop();
        multi.remove(bar);
      }
      bars.delete(name);
      multi.log(`${name}: ${note}\n`);
      refreshGrid();
    },
    line(text) {
      multi.log(text + '\n');
    },
    stop() {
      clearInterval(timer);
      refreshGrid();
      multi.stop();
    },
  };
}
