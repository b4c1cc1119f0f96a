// report.html in a real headless browser (Debian's chromium): every chart draws, nothing reaches the
// console, and a screenshot is not blank. Skipped, with the reason in its name, where chromium is missing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregateRuns, type FinishedRun } from '../../lib/experiment/aggregate.js';
import { gridPoints, type ExperimentFile } from '../../lib/experiment/grid.js';
import type { ResultsFile } from '../../lib/experiment/results.js';
import { experimentReportHtml } from '../../lib/report/experiment-report.js';
import { renderSvg, reportSpecs } from '../../lib/report/render-svg.js';
import type { EpochMetrics } from '../../lib/fit.js';
import { inkStatistics, readPng } from '../helpers/png.js';

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);

function handMadeReport(): string {
  const curve = (base: number): EpochMetrics[] => [1, 2, 3].map((epoch) => ({
    epoch, train_loss: 0.09 - 0.01 * epoch - base / 10, train_acc: base + 0.1 * epoch, test_loss: 0.08 - 0.01 * epoch, test_acc: base + 0.09 * epoch, lr: 0.1 / epoch,
    grad_norm: 0.3, epoch_s: 1, test_s: 0.2, samples_per_s: 3000, skipped_steps: 0, firing_rates: { 'conv_fc.2': 0.1 + base / 5, 'conv_fc.6': 0.05 + base / 10, 'conv_fc.12': 0.2 },
  }));
  const hessian = (top: number, converged: boolean) => ({
    ikun_version: 't', checkpoint: 'c', settings: { top: 3, maxIter: 20, tol: 1e-3, trace: true, density: true, iter: 3, samples: 1, seed: 0 },
    density: { nodes: [-top / 10, 0, top], weights: [0.2, 0.7, 0.1], steps: 3 }, data: 'bundled Fashion-MNIST sample', sample: true,
    images: 1, loss: 0.05, parameters: 52136, eigenvalues: [top, top / 2, top / 5], iterations: [8, 12, 20], last_relative_change: [1e-4, 5e-4, converged ? 1e-4 : 0.01],
    converged: [true, true, converged], trace: { value: top * 3, standard_error: top / 4, sample_count: 20, converged: true, samples: [] }, seconds: 1,
  });
  const runs: FinishedRun[] = [];
  for (const [init, base] of [['ikun_v1', 0.4], ['kaiming', 0.35], ['xavier', 0.3]] as const)
    for (const seed of [1, 2]) runs.push({ init, opt: 'sgd', seed, metrics: curve(base + seed / 100), hessian: hessian(10 * base + seed, seed === 1) });
  const spec = { inits: ['ikun_v1', 'kaiming', 'xavier'] as ExperimentFile['inits'], opts: ['sgd'] as ExperimentFile['opts'], seeds: [1, 2], config: { sample: true, epochs: 3 }, hessian: null };
  const file: ExperimentFile = { format: 'ikun-experiment/1', ikun_version: 't', created: 'now', ...spec, points: gridPoints(spec) };
  const results: ResultsFile = { format: 'ikun-experiment-results/1', ikun_version: 't', created: 'now', experiment: '/x', ...aggregateRuns(runs), points: { total: 6, done: 6, pending: [] } };
  return experimentReportHtml(file, results);
}

describe('report.html', () => {
  it('embeds a chart for every figure of the issue, each of which Vega renders to SVG in Node', async () => {
    const specs = reportSpecs(handMadeReport());
    expect(Object.keys(specs)).toEqual(['curves', 'final-test', 'best-test', 'final-train', 'epochs-to-target', 'firing-rates', 'spectrum', 'top-eigenvalue', 'density', 'trace']);
    for (const [id, spec] of Object.entries(specs)) {
      const svg = await renderSvg(spec);
      expect((svg.match(/<path/g) ?? []).length, id).toBeGreaterThan(3);
    }
  });
});

describe.skipIf(!chromium)(`report.html in headless chromium${chromium ? '' : ' (skipped: no chromium on PATH; apt-get install chromium)'}`, () => {
  it('draws every chart with no console output and a screenshot that is not blank', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt12-browser-'));
    const page = join(dir, 'report.html');
    writeFileSync(page, handMadeReport());
    const flags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=15000',
      `--user-data-dir=${join(dir, 'profile')}`];
    const dom = spawnSync(chromium!, [...flags, '--dump-dom', `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
    expect(dom.status, dom.stderr).toBe(0);
    const body = /<body data-charts="(\d+)" data-charts-drawn="(\d+)">/.exec(dom.stdout);
    expect(body, 'the page body').not.toBeNull();
    expect(body![1]).toBe('10');
    expect(body![2]).toBe('10');
    expect(dom.stdout).not.toMatch(/class="error"/);
    expect(dom.stderr.split('\n').filter((l) => l.includes(':CONSOLE'))).toEqual([]);
    const shot = join(dir, 'shot.png');
    const s = spawnSync(chromium!, [...flags, '--window-size=1280,2000', `--screenshot=${shot}`, `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
    expect(s.status, s.stderr).toBe(0);
    const stats = inkStatistics(readPng(shot));
    expect(stats.inked).toBeGreaterThan(0.03); // charts, bars and the table: a blank page has almost no ink
    expect(stats.colours).toBeGreaterThan(20); // several series colours, not one flat fill
    expect(readFileSync(shot).length).toBeGreaterThan(20_000);
  }, 120_000);
});
