// report.html of an experiment: the results table, learning curves per group (mean ± sd over seeds),
// final and best accuracy bars with error bars, epochs to the target, firing rates per spiking layer over
// epochs, and the Hessian spectra and top eigenvalue / trace when measured.
import { writeFileAtomic } from '../files.js';
import type { GroupResult } from '../experiment/aggregate.js';
import type { ExperimentFile } from '../experiment/grid.js';
import type { ResultsFile } from '../experiment/results.js';
import type { MeanSd } from '../experiment/stats.js';
import { band, barsChart, curvesChart, densityChart, firingRatesChart, spectrumChart, type BandRow, type BarRow } from './charts.js';
import { escapeHtml, reportPage, type ReportChart, type ReportSection } from './page.js';

const pct = (v: number): string => `${(100 * v).toFixed(2)}`;

function statCell(s: MeanSd | null | undefined, format: (v: number) => string): string {
  if (!s || !Number.isFinite(s.mean)) return '<td>–</td>';
  return `<td>${escapeHtml(format(s.mean))}${s.sd === null ? '' : ` ± ${escapeHtml(format(s.sd))}`}</td>`;
}

function resultsTable(results: ResultsFile): string {
  const head = ['group', 'seeds', 'final train acc %', 'final test acc %', 'best test acc %', `epochs to ${pct(results.target)}%`, 'efficiency vs baselines',
    'top Hessian eigenvalue', 'Hessian trace'];
  const rows = results.groups.map((g) => {
    const eff = g.efficiency.filter((e) => e.ratio !== null).map((e) => `${e.baseline} ${e.ratio!.toFixed(2)}x`).join(', ') || '–';
    const converged = g.hessian && !g.hessian.converged ? ' <span class="warn">(not all converged: see hessian.json)</span>' : '';
    return `<tr><td class="text">${escapeHtml(g.name)}</td><td class="text">${escapeHtml(g.seeds.join(', '))}</td>` +
      statCell(g.final_train_acc, pct) + statCell(g.final_test_acc, pct) + statCell(g.best_test_acc, pct) +
      `<td>${g.epochs_to_target ?? 'never'}</td><td class="text">${escapeHtml(eff)}</td>` +
      statCell(g.hessian?.top_eigenvalue, (v) => v.toPrecision(4)).replace('</td>', `${converged}</td>`) +
      statCell(g.hessian?.trace ?? null, (v) => v.toPrecision(4)) + '</tr>';
  });
  return `<table><thead><tr>${head.map((h, i) => `<th${i < 2 || i === 6 ? ' class="text"' : ''}>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function curveRows(groups: readonly GroupResult[]): BandRow[] {
  const metrics = [['test_acc', 'test accuracy'], ['train_acc', 'train accuracy'], ['test_loss', 'test loss'], ['train_loss', 'train loss']] as const;
  return groups.flatMap((g) => g.curves.flatMap((c) => metrics.map(([key, metric]) => ({ series: g.name, epoch: c.epoch, metric, ...band(c[key].mean, c[key].sd) }))));
}

function barRows(groups: readonly GroupResult[], pickStat: (g: GroupResult) => MeanSd | null | undefined, scale = 1): BarRow[] {
  return groups.flatMap((g) => {
    const s = pickStat(g);
    if (!s || !Number.isFinite(s.mean)) return [];
    const b = band(s.mean * scale, s.sd === null ? null : s.sd * scale);
    return [{ label: g.name, colour: g.init, ...b }];
  });
}

export function experimentReportHtml(file: ExperimentFile, results: ResultsFile): string {
  const g = results.groups;
  const charts: ReportChart[] = [
    { id: 'curves', title: 'Learning curves', caption: 'Mean over the seeds of each group per epoch; the band spans mean ± sd (no band with one seed).', spec: curvesChart(curveRows(g)) },
  ];
  const bars: ReportChart[] = [
    { id: 'final-test', title: 'Final test accuracy (%)', caption: 'Last epoch, mean ± sd over seeds.', spec: barsChart(barRows(g, (x) => x.final_test_acc, 100), 'test accuracy %', { zero: false }) },
    { id: 'best-test', title: 'Best test accuracy (%)', caption: 'Best epoch per seed, mean ± sd over seeds.', spec: barsChart(barRows(g, (x) => x.best_test_acc, 100), 'test accuracy %', { zero: false }) },
    { id: 'final-train', title: 'Final train accuracy (%)', caption: 'Last epoch, mean ± sd over seeds.', spec: barsChart(barRows(g, (x) => x.final_train_acc, 100), 'train accuracy %', { zero: false }) },
  ];
  const reached = g.filter((x) => x.epochs_to_target !== null);
  const never = g.filter((x) => x.epochs_to_target === null).map((x) => x.name);
  const target: ReportChart = {
    id: 'epochs-to-target', title: `Epochs to ${pct(results.target)}% test accuracy`,
    caption: `The first epoch whose mean test accuracy reaches the target (${results.target_source}).${never.length ? ` Never reached: ${never.join(', ')}.` : ''}`,
    spec: barsChart(reached.map((x) => ({ label: x.name, colour: x.init, mean: x.epochs_to_target!, lo: x.epochs_to_target!, hi: x.epochs_to_target! })), 'epochs'),
  };
  const rateRows = g.flatMap((x) => x.curves.flatMap((c) => Object.entries(c.firing_rates).map(([layer, s]) => ({ series: x.name, layer, epoch: c.epoch, rate: s.mean }))));
  const sections: ReportSection[] = [
    { title: 'Results', html: resultsTable(results) + pendingNote(results) },
    { title: 'Training', charts },
    { title: 'Accuracy', charts: [...bars, target] },
  ];
  if (rateRows.length > 0)
    sections.push({ title: 'Firing rates', charts: [{ id: 'firing-rates', title: 'Firing rate per spiking layer', caption: 'Mean spikes per neuron and time step over each training epoch, averaged over seeds.', spec: firingRatesChart(rateRows) }] });
  const measured = g.filter((x) => x.hessian !== null);
  if (measured.length > 0) {
    const spectrum = measured.flatMap((x) => x.hessian!.per_seed.flatMap((s) => s.eigenvalues.map((eigenvalue, i) => ({ series: x.name, seed: s.seed, rank: i + 1, eigenvalue, converged: s.converged[i] ?? false }))));
    const hessianCharts: ReportChart[] = [
      { id: 'spectrum', title: 'Top Hessian eigenvalues', caption: 'Power iteration on the best checkpoint of each seed (MSE on the first test image, eval mode); a point per seed (its shape says whether power iteration converged), the line through the mean. The top eigenvalue is the one largest in magnitude, so it can be negative.', spec: spectrumChart(spectrum) },
      { id: 'top-eigenvalue', title: 'Top eigenvalue', caption: 'Mean ± sd over seeds; nearer zero is a flatter minimum.', spec: barsChart(barRows(measured, (x) => x.hessian!.top_eigenvalue), 'top eigenvalue') },
    ];
    const withDensity = measured.filter((x) => x.hessian!.density);
    if (withDensity.length > 0) {
      const rows = withDensity.flatMap((x) => x.hessian!.density!.grid.map((eigenvalue, i) => ({ series: x.name, eigenvalue, density: x.hessian!.density!.density[i]! })));
      hessianCharts.push({ id: 'density', title: 'Hessian eigenvalue density', caption: 'Stochastic Lanczos quadrature, one start vector per seed, the seeds averaged and smoothed by Gaussians as PyHessian does; each point is the peak of 25 of the 10,000 bins; densities below 1e-8 drawn at 1e-8.', spec: densityChart(rows, 1e-8) });
    }
    const traced = measured.filter((x) => x.hessian!.trace !== null);
    if (traced.length > 0)
      hessianCharts.push({ id: 'trace', title: 'Hessian trace (Hutchinson)', caption: 'Mean ± sd over seeds of each seed\'s Hutchinson estimate.', spec: barsChart(barRows(traced, (x) => x.hessian!.trace), 'trace') });
    sections.push({ title: 'Hessian', charts: hessianCharts });
  }
  const config = Object.entries(file.config).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || 'the train defaults';
  const meta = `${file.points.length} points (${file.inits.join(', ')} × ${file.opts.join(', ')} × seeds ${file.seeds.join(', ')}), ${results.points.done} finished; shared config: ${config}; ikun ${results.ikun_version}, ${results.created}`;
  return reportPage('ikun experiment', meta, sections);
}

function pendingNote(results: ResultsFile): string {
  if (results.points.pending.length === 0) return '';
  const list = results.points.pending.map((p) => `${p.run} (${p.state}, ${p.epochs_done}/${p.epochs} epochs)`).join(', ');
  return `<p class="warn">Not finished, left out of the numbers: ${escapeHtml(list)}.</p>`;
}

export function writeExperimentReport(path: string, file: ExperimentFile, results: ResultsFile): void {
  writeFileAtomic(path, experimentReportHtml(file, results));
}
