// Seed statistics of the experiment tables: mean and sample standard deviation (n - 1, as a spread of
// independent seeds is reported), and the first epoch a curve reaches a target.

export interface MeanSd {
  mean: number;
  /** Sample standard deviation (n - 1); null for a single value, which has no spread to report. */
  sd: number | null;
  n: number;
}

export function meanSd(values: readonly number[]): MeanSd {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, sd: null, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, sd: null, n };
  return { mean, sd: Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)), n };
}

/** The 1-based epoch of the first value >= target, or null when none reaches it. */
export function firstEpochReaching(curve: readonly number[], target: number): number | null {
  const i = curve.findIndex((v) => v >= target);
  return i < 0 ? null : i + 1;
}
