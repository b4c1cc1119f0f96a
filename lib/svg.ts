// Minimal SVG line plots without dependencies: the Hessian eigenvalues by rank (several checkpoints
// overlaid, with a legend) and the spectral density on a log-scale axis. Plain SVG 1.1 text that browsers
// and image viewers open as it is.
import { fail } from './errors.js';

const WIDTH = 720, HEIGHT = 450;
const MARGIN = { left: 80, right: 24, top: 40, bottom: 60 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** The floor of the density axis: smaller values (and zeros) are drawn at 1e-8. */
export const DENSITY_FLOOR = 1e-8;

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const fmt = (x: number): string => (Math.round(x * 100) / 100).toString();

/** Evenly spaced "nice" tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, target);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

function tickLabel(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(1).replace('e+', 'e');
  return Number(x.toPrecision(6)).toString();
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
}

function scaler(axis: Axis, from: number, to: number): (v: number) => number {
  const f = axis.log ? Math.log10 : (v: number) => v;
  const a = f(axis.lo), b = f(axis.hi);
  return (v) => from + ((f(v) - a) / (b - a || 1)) * (to - from);
}

function padded(lo: number, hi: number): [number, number] {
  if (hi > lo) {
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  const pad = Math.abs(lo) * 0.1 || 1;
  return [lo - pad, hi + pad];
}

/**
 * Long lines (a 10,000-bin density) keep, per pixel column, the first, lowest, highest and last point: the
 * drawing looks the same and the file stays small.
 */
function decimate(points: Array<[number, number]>): Array<[number, number]> {
  if (points.length <= 2 * (WIDTH - MARGIN.left - MARGIN.right)) return points;
  const out: Array<[number, number]> = [];
  let bucket: Array<[number, number]> = [];
  const flush = (): void => {
    if (bucket.length === 0) return;
    const lo = bucket.reduce((a, b) => (b[1] < a[1] ? b : a)), hi = bucket.reduce((a, b) => (b[1] > a[1] ? b : a));
    const keep = [bucket[0]!, lo, hi, bucket[bucket.length - 1]!].sort((a, b) => bucket.indexOf(a) - bucket.indexOf(b));
    for (const p of keep) if (out[out.length - 1] !== p) out.push(p);
    bucket = [];
  };
  let column = Number.NaN;
  for (const p of points) {
    const c = Math.round(p[0]);
    if (c !== column) {
      flush();
      column = c;
    }
    bucket.push(p);
  }
  flush();
  return out;
}

interface Series {
  label: string;
  points: Array<[number, number]>;
  markers: boolean;
}

function plot(title: string, xLabel: string, yLabel: string, x: Axis, y: Axis, series: Series[], xTicks: number[], yTicks: number[]): string {
  // The legend sits in rows between the title and the plot area, so it never hides data.
  const showLegend = series.length > 1 || (series.length === 1 && series[0]!.label !== '');
  const entries: Array<{ label: string; colour: string; x: number; row: number }> = [];
  if (showLegend) {
    let x0 = MARGIN.left, row = 0;
    series.forEach((s, i) => {
      const width = 34 + 7 * s.label.length;
      if (x0 > MARGIN.left && x0 + width > WIDTH - MARGIN.right) {
        row++;
        x0 = MARGIN.left;
      }
      entries.push({ label: s.label, colour: COLOURS[i % COLOURS.length]!, x: x0, row });
      x0 += width;
    });
  }
  const legendHeight = entries.length ? 18 * (entries[entries.length - 1]!.row + 1) + 4 : 0;
  const height = HEIGHT + legendHeight;
  const left = MARGIN.left, right = WIDTH - MARGIN.right, top = MARGIN.top + legendHeight, bottom = height - MARGIN.bottom;
  const sx = scaler(x, left, right), sy = scaler(y, bottom, top);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="white"/>`);
  out.push(`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`);
  // grid and ticks
  out.push('<g stroke="#e5e5e5" stroke-width="1">');
  for (const t of xTicks) out.push(`<line x1="${fmt(sx(t))}" y1="${top}" x2="${fmt(sx(t))}" y2="${bottom}"/>`);
  for (const t of yTicks) out.push(`<line x1="${left}" y1="${fmt(sy(t))}" x2="${right}" y2="${fmt(sy(t))}"/>`);
  out.push('</g>');
  out.push(`<g stroke="black" stroke-width="1"><line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`);
  for (const t of xTicks) out.push(`<line x1="${fmt(sx(t))}" y1="${bottom}" x2="${fmt(sx(t))}" y2="${bottom + 5}"/>`);
  for (const t of yTicks) out.push(`<line x1="${left - 5}" y1="${fmt(sy(t))}" x2="${left}" y2="${fmt(sy(t))}"/>`);
  out.push('</g>');
  out.push('<g fill="black">');
  for (const t of xTicks) out.push(`<text x="${fmt(sx(t))}" y="${bottom + 18}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  for (const t of yTicks) out.push(`<text x="${left - 8}" y="${fmt(sy(t) + 4)}" text-anchor="end">${escapeXml(y.log ? `1e${Math.round(Math.log10(t))}` : tickLabel(t))}</text>`);
  out.push('</g>');
  out.push(`<text x="${(left + right) / 2}" y="${height - 16}" text-anchor="middle" font-size="13">${escapeXml(xLabel)}</text>`);
  out.push(`<text x="18" y="${(top + bottom) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${(top + bottom) / 2})">${escapeXml(yLabel)}</text>`);
  // data, clipped to the plot area
  out.push(`<defs><clipPath id="plot-area"><rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}"/></clipPath></defs>`);
  out.push('<g clip-path="url(#plot-area)" fill="none" stroke-width="1.5">');
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    if (s.points.length === 0) return;
    const d = decimate(s.points.map(([px, py]) => [sx(px), sy(py)] as [number, number]))
      .map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${fmt(px)},${fmt(py)}`).join('');
    out.push(`<path d="${d}" stroke="${colour}"/>`);
    if (s.markers) for (const [px, py] of s.points) out.push(`<circle cx="${fmt(sx(px))}" cy="${fmt(sy(py))}" r="2.5" fill="${colour}" stroke="none"/>`);
  });
  out.push('</g>');
  if (entries.length) {
    out.push('<g>');
    for (const e of entries) {
      const y0 = MARGIN.top - 6 + e.row * 18;
      out.push(`<line x1="${e.x}" y1="${y0}" x2="${e.x + 20}" y2="${y0}" stroke="${e.colour}" stroke-width="2"/>`);
      out.push(`<text x="${e.x + 26}" y="${y0 + 4}">${escapeXml(e.label)}</text>`);
    }
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function finiteArray(name: string, values: unknown): number[] {
  if (!Array.isArray(values) && !(values instanceof Float64Array) && !(values instanceof Float32Array)) fail(`${name} must be an array of numbers`);
  const arr = Array.from(values as ArrayLike<number>);
  for (const v of arr) if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${name} must hold finite numbers, got ${String(v)}`);
  return arr;
}

/** Top eigenvalues against their rank (1 = largest), one line with markers per series, with a legend. */
export function eigenvaluePlot(series: ReadonlyArray<{ label: string; eigenvalues: readonly number[] }>, title = 'Top Hessian eigenvalues'): string {
  if (!Array.isArray(series) || series.length === 0) fail('eigenvaluePlot: series must be a non-empty array of { label, eigenvalues }');
  const data = series.map((s, i) => ({ label: String(s.label ?? ''), values: finiteArray(`eigenvaluePlot: series[${i}].eigenvalues`, s.eigenvalues) }));
  const all = data.flatMap((d) => d.values);
  if (all.length === 0) fail('eigenvaluePlot: no eigenvalues to draw');
  const k = Math.max(...data.map((d) => d.values.length));
  const [ylo, yhi] = padded(Math.min(...all, 0), Math.max(...all, 0));
  const x: Axis = { lo: 0.5, hi: k + 0.5, log: false }, y: Axis = { lo: ylo, hi: yhi, log: false };
  const xTicks = niceTicks(1, k, Math.min(10, k)).filter((t) => Number.isInteger(t) && t >= 1);
  return plot(title, 'Rank', 'Eigenvalue', x, y, data.map((d) => ({ label: d.label, points: d.values.map((v, i) => [i + 1, v] as [number, number]), markers: true })),
    xTicks, niceTicks(ylo, yhi));
}

/**
 * Spectral densities against the eigenvalue on a log-scale density axis; densities below 1e-8 (and zeros) are
 * clipped to 1e-8, like PyHessian's plot (which adds 1e-7). Several series are overlaid with a legend.
 */
export function densitiesPlot(series: ReadonlyArray<{ label: string; grid: readonly number[]; density: readonly number[] }>, title = 'Hessian eigenvalue density'): string {
  if (!Array.isArray(series) || series.length === 0) fail('densitiesPlot: series must be a non-empty array of { label, grid, density }');
  const data = series.map((s, i) => {
    const grid = finiteArray(`densityPlot: series[${i}].grid`, s.grid), density = finiteArray(`densityPlot: series[${i}].density`, s.density);
    if (grid.length !== density.length || grid.length === 0) fail(`densityPlot: series[${i}] needs as many density values as grid points (at least one), got ${grid.length} and ${density.length}`);
    return { label: String(s.label ?? ''), points: grid.map((g, j) => [g, Math.max(DENSITY_FLOOR, density[j]!)] as [number, number]) };
  });
  const xs = data.flatMap((d) => d.points.map((p) => p[0])), ys = data.flatMap((d) => d.points.map((p) => p[1]));
  const [xlo, xhi] = padded(Math.min(...xs), Math.max(...xs));
  const ylo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  let yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  if (!(yhi > ylo)) yhi = ylo * 10;
  const decades = Math.round(Math.log10(yhi / ylo));
  const every = Math.max(1, Math.ceil(decades / 8));
  const yTicks: number[] = [];
  for (let e = Math.round(Math.log10(ylo)); e <= Math.round(Math.log10(yhi)); e += every) yTicks.push(10 ** e);
  return plot(title, 'Eigenvalue', 'Density (log scale)', { lo: xlo, hi: xhi, log: false }, { lo: ylo, hi: yhi, log: true },
    data.map((d) => ({ ...d, markers: false })), niceTicks(xlo, xhi), yTicks);
}

/** One spectral density on a log-scale axis (see densitiesPlot). */
export function densityPlot(grid: readonly number[], density: readonly number[], title?: string): string {
  return densitiesPlot([{ label: '', grid, density }], title);
}
