// Vega-Lite specs of ikun's reports, built from plain rows. Each builder says what it draws; the pages
// decide which to show. A band or error bar spans mean ± sd (mean alone when there is one seed).

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json'; // an identifier only: nothing is fetched

export interface BandRow {
  series: string;
  epoch: number;
  metric: string;
  mean: number;
  lo: number;
  hi: number;
}

export interface BarRow {
  label: string;
  /** Colour key (the init, so a colour means one init across optimisers). */
  colour: string;
  mean: number;
  lo: number;
  hi: number;
}

/** mean ± sd bounds; sd null (one seed) gives the mean alone. */
export function band(mean: number, sd: number | null): { mean: number; lo: number; hi: number } {
  const s = sd ?? 0;
  return { mean, lo: mean - s, hi: mean + s };
}

const epochAxis = { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } };

/** One small chart per metric (wrapped two a row), a line per series with its ±sd band. */
export function curvesChart(rows: readonly BandRow[], options: { columns?: number; yTitle?: string } = {}): Record<string, unknown> {
  const colour = { field: 'series', type: 'nominal', title: 'group' };
  return {
    $schema: SCHEMA,
    data: { values: rows },
    facet: { field: 'metric', type: 'nominal', title: null, sort: null },
    columns: options.columns ?? 2,
    spec: {
      width: 300, height: 190,
      layer: [
        { mark: { type: 'area', opacity: 0.18 }, encoding: { x: epochAxis, y: { field: 'lo', type: 'quantitative', title: options.yTitle ?? null, scale: { zero: false } }, y2: { field: 'hi' }, color: colour } },
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: epochAxis, y: { field: 'mean', type: 'quantitative', scale: { zero: false } }, color: colour,
            tooltip: [{ field: 'series', title: 'group' }, { field: 'metric' }, { field: 'epoch' }, { field: 'mean', format: '.4f' }, { field: 'lo', format: '.4f' }, { field: 'hi', format: '.4f' }],
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Bars of the mean with a rule from mean - sd to mean + sd. */
export function barsChart(rows: readonly BarRow[], yTitle: string, options: { zero?: boolean } = {}): Record<string, unknown> {
  const x = { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelAngle: -40 } };
  return {
    $schema: SCHEMA,
    data: { values: rows },
    width: Math.max(240, 44 * rows.length), height: 220,
    layer: [
      {
        mark: 'bar',
        encoding: {
          x, y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: options.zero ?? true } }, color: { field: 'colour', type: 'nominal', title: 'init' },
          tooltip: [{ field: 'label', title: 'group' }, { field: 'mean', format: '.4f' }, { field: 'lo', format: '.4f' }, { field: 'hi', format: '.4f' }],
        },
      },
      { mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: { value: '#222' } } },
    ],
  };
}

/** One chart per spiking layer: the mean firing rate over epochs, a line per series. */
export function firingRatesChart(rows: ReadonlyArray<{ series: string; layer: string; epoch: number; rate: number }>): Record<string, unknown> {
  return {
    $schema: SCHEMA,
    data: { values: rows },
    facet: { field: 'layer', type: 'nominal', title: 'spiking layer', sort: null },
    columns: 2,
    spec: {
      width: 300, height: 170, mark: { type: 'line', point: true },
      encoding: {
        x: epochAxis, y: { field: 'rate', type: 'quantitative', title: 'mean firing rate' }, color: { field: 'series', type: 'nominal', title: 'group' },
        tooltip: [{ field: 'series', title: 'group' }, { field: 'layer' }, { field: 'epoch' }, { field: 'rate', format: '.4f' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Spectral densities on a log axis (floored at `floor`, as PyHessian plots them), a line per series. */
export function densityChart(rows: ReadonlyArray<{ series: string; eigenvalue: number; density: number }>, floor: number): Record<string, unknown> {
  return {
    $schema: SCHEMA,
    data: { values: rows.map((r) => ({ ...r, density: Math.max(floor, r.density) })) },
    width: 560, height: 280,
    mark: { type: 'line', strokeWidth: 1.2 },
    encoding: {
      x: { field: 'eigenvalue', type: 'quantitative', title: 'eigenvalue' },
      y: { field: 'density', type: 'quantitative', title: 'density (log)', scale: { type: 'log' } },
      color: { field: 'series', type: 'nominal', title: 'group' },
      tooltip: [{ field: 'series', title: 'group' }, { field: 'eigenvalue', format: '.4g' }, { field: 'density', format: '.3g' }],
    },
  };
}

/** The top-k Hessian eigenvalues by rank: a point per seed, a line through the mean per series. */
export function spectrumChart(rows: ReadonlyArray<{ series: string; seed: number; rank: number; eigenvalue: number; converged: boolean }>): Record<string, unknown> {
  const x = { field: 'rank', type: 'quantitative', title: 'rank (power iteration order)', axis: { tickMinStep: 1, format: 'd' } };
  const colour = { field: 'series', type: 'nominal', title: 'group' };
  return {
    $schema: SCHEMA,
    data: { values: rows },
    width: 560, height: 280,
    layer: [
      { mark: { type: 'line' }, encoding: { x, y: { aggregate: 'mean', field: 'eigenvalue', type: 'quantitative', title: 'eigenvalue' }, color: colour } },
      {
        mark: { type: 'point', filled: true },
        encoding: {
          x, y: { field: 'eigenvalue', type: 'quantitative' }, color: colour,
          shape: { field: 'converged', type: 'nominal', title: 'converged' },
          tooltip: [{ field: 'series', title: 'group' }, { field: 'seed' }, { field: 'rank' }, { field: 'eigenvalue', format: '.5g' }, { field: 'converged' }],
        },
      },
    ],
  };
}
