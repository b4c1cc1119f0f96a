// report.html of one run folder (what `ikun train` and every grid point write): loss and accuracy per
// epoch, train and test, the learning rate, and the firing rate of each spiking layer.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../files.js';
import { readMetrics } from '../experiment/status.js';
import { fail } from '../errors.js';
import { curvesChart, firingRatesChart } from './charts.js';
import { reportPage, type ReportSection } from './page.js';

export const RUN_REPORT_FILE = 'report.html';

export function runReportHtml(runDir: string): string {
  const metrics = readMetrics(runDir);
  if (metrics.length === 0) fail(`'${runDir}' has no epochs in metrics.jsonl yet: nothing to report`);
  const configPath = join(runDir, 'config.json');
  const config = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>) : {};
  const curve = (metric: string, key: 'train_acc' | 'test_acc' | 'train_loss' | 'test_loss' | 'lr') =>
    metrics.map((m) => ({ series: 'run', epoch: m.epoch, metric, mean: m[key], lo: m[key], hi: m[key] }));
  const rows = [...curve('test accuracy', 'test_acc'), ...curve('train accuracy', 'train_acc'), ...curve('test loss', 'test_loss'),
    ...curve('train loss', 'train_loss'), ...curve('learning rate', 'lr')];
  const rates = metrics.flatMap((m) => Object.entries(m.firing_rates ?? {}).map(([layer, rate]) => ({ series: 'run', layer, epoch: m.epoch, rate })));
  const best = metrics.reduce((a, b) => (b.test_acc > a.test_acc ? b : a));
  const last = metrics[metrics.length - 1]!;
  const table = `<table><thead><tr><th>epoch</th><th>train loss</th><th>train acc %</th><th>test loss</th><th>test acc %</th><th>lr</th><th>|g|</th><th>s</th><th>samples/s</th></tr></thead><tbody>${metrics.map((m) =>
    `<tr><td>${m.epoch}</td><td>${m.train_loss.toFixed(4)}</td><td>${(100 * m.train_acc).toFixed(2)}</td><td>${m.test_loss.toFixed(4)}</td><td>${(100 * m.test_acc).toFixed(2)}</td><td>${m.lr.toPrecision(3)}</td><td>${m.grad_norm.toFixed(4)}</td><td>${m.epoch_s.toFixed(1)}</td><td>${m.samples_per_s.toFixed(0)}</td></tr>`).join('')}</tbody></table>`;
  const sections: ReportSection[] = [
    { title: 'Epochs', html: `<p>Final test accuracy ${(100 * last.test_acc).toFixed(2)}%, best ${(100 * best.test_acc).toFixed(2)}% (epoch ${best.epoch}).</p>${table}` },
    { title: 'Training', charts: [{ id: 'curves', title: 'Learning curves', caption: 'Per epoch: train figures are means over the epoch\'s steps, test figures one pass over the test set.', spec: curvesChart(rows) }] },
  ];
  if (rates.length > 0) sections.push({ title: 'Firing rates', charts: [{ id: 'firing-rates', title: 'Firing rate per spiking layer', caption: 'Mean spikes per neuron and time step over each training epoch.', spec: firingRatesChart(rates) }] });
  const what = ['init', 'opt', 'seed', 'channels', 'epochs', 'sample'].filter((k) => k in config).map((k) => `${k}=${JSON.stringify(config[k])}`).join(' ');
  return reportPage(`ikun run ${basename(runDir)}`, `${runDir}: ${what}`, sections);
}

/** Writes <runDir>/report.html from its metrics.jsonl and config.json. */
export function writeRunReport(runDir: string): string {
  const path = join(runDir, RUN_REPORT_FILE);
  writeFileAtomic(path, runReportHtml(runDir));
  return path;
}
