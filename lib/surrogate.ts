// Surrogate spike functions (formulas: shared/docs/ikun-paper.md, "Surrogates"). The native kernels
// evaluate them; the JS versions here (g, g1, g2) serve the IKUN beta computation and tests.
import { checkBoolean, checkKnownKeys, checkOptionsObject, checkPositiveNumber, describe, fail } from './errors.js';

export type SurrogateName =
  | 'atan'
  | 'sigmoid'
  | 'piecewiseQuadratic'
  | 'softSign'
  | 'superSpike'
  | 'erf'
  | 'piecewiseExp'
  | 'rect';

export interface SurrogateOptions {
  /** Sharpness; each surrogate has its own default. */
  alpha?: number;
  /** true (default): Heaviside forward, surrogate backward. false: forward through the smooth primitive g. */
  spiking?: boolean;
}

interface Formula {
  code: number;
  defaultAlpha: number;
  g(x: number, a: number): number;
  g1(x: number, a: number): number;
  g2(x: number, a: number): number;
}

const sign = (x: number): number => (x > 0 ? 1 : x < 0 ? -1 : 0);
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

// Abramowitz-Stegun 7.1.26 is too coarse for tests; use a series/continued-fraction erf.
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return (sign(x) * 2 * sum) / Math.sqrt(Math.PI);
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return sign(x) * (1 - erfc);
}

const FORMULAS: Record<SurrogateName, Formula> = {
  atan: {
    code: 0, defaultAlpha: 2,
    g: (x, a) => Math.atan((Math.PI / 2) * a * x) / Math.PI + 0.5,
    g1: (x, a) => a / 2 / (1 + ((Math.PI / 2) * a * x) ** 2),
    g2: (x, a) => { const c = (Math.PI / 2) * a; const d = 1 + (c * x) ** 2; return (-a * c * c * x) / (d * d); },
  },
  sigmoid: {
    code: 1, defaultAlpha: 4,
    g: (x, a) => sigmoid(a * x),
    g1: (x, a) => { const s = sigmoid(a * x); return a * s * (1 - s); },
    g2: (x, a) => { const s = sigmoid(a * x); return a * a * s * (1 - s) * (1 - 2 * s); },
  },
  piecewiseQuadratic: {
    code: 2, defaultAlpha: 1,
    g: (x, a) => (x < -1 / a ? 0 : x > 1 / a ? 1 : (-a * a * x * Math.abs(x)) / 2 + a * x + 0.5),
    g1: (x, a) => (Math.abs(x) <= 1 / a ? -a * a * Math.abs(x) + a : 0),
    g2: (x, a) => (Math.abs(x) <= 1 / a ? -a * a * sign(x) : 0),
  },
  softSign: {
    code: 3, defaultAlpha: 2,
    g: (x, a) => 0.5 * ((a * x) / (1 + Math.abs(a * x)) + 1),
    g1: (x, a) => a / (2 * (1 + Math.abs(a * x)) ** 2),
    g2: (x, a) => (-a * a * sign(x)) / (1 + Math.abs(a * x)) ** 3,
  },
  superSpike: {
    code: 4, defaultAlpha: 1,
    g: (x, a) => 0.5 + (a * x) / (1 + Math.abs(x)),
    g1: (x, a) => a / (1 + Math.abs(x)) ** 2,
    g2: (x, a) => (-2 * a * sign(x)) / (1 + Math.abs(x)) ** 3,
  },
  erf: {
    code: 5, defaultAlpha: 2,
    g: (x, a) => 0.5 * (1 + erf(a * x)),
    g1: (x, a) => (a / Math.sqrt(Math.PI)) * Math.exp(-a * a * x * x),
    g2: (x, a) => -2 * a * a * x * (a / Math.sqrt(Math.PI)) * Math.exp(-a * a * x * x),
  },
  piecewiseExp: {
    code: 6, defaultAlpha: 1,
    g: (x, a) => (x < 0 ? 0.5 * Math.exp(a * x) : 1 - 0.5 * Math.exp(-a * x)),
    g1: (x, a) => (a / 2) * Math.exp(-a * Math.abs(x)),
    g2: (x, a) => -a * sign(x) * (a / 2) * Math.exp(-a * Math.abs(x)),
  },
  rect: {
    code: 7, defaultAlpha: 1,
    g: (x, a) => Math.min(1, Math.max(0, a * x + 0.5)),
    g1: (x, a) => (Math.abs(x) < 0.5 / a ? a : 0),
    g2: () => 0,
  },
};

export const SURROGATE_NAMES = Object.keys(FORMULAS) as SurrogateName[];

/** A surrogate spike function with its sharpness and forward mode. Immutable. */
export class Surrogate {
  readonly name: SurrogateName;
  readonly alpha: number;
  readonly spiking: boolean;

  constructor(name: SurrogateName, options: SurrogateOptions = {}) {
    if (!(name in FORMULAS)) fail(`unknown surrogate ${describe(name)}; known: ${SURROGATE_NAMES.join(', ')}`);
    const o = checkOptionsObject(`surrogate.${name} options`, options);
    checkKnownKeys(`surrogate.${name} options`, o, ['alpha', 'spiking']);
    this.name = name;
    this.alpha = o.alpha === undefined ? FORMULAS[name].defaultAlpha : checkPositiveNumber(`surrogate.${name}: alpha`, o.alpha);
    this.spiking = o.spiking === undefined ? true : checkBoolean(`surrogate.${name}: spiking`, o.spiking);
    Object.freeze(this);
  }

  /** @internal the kernel's surrogate id */
  get code(): number {
    return FORMULAS[this.name].code;
  }

  /** The smooth primitive (the forward in smooth mode). */
  g(x: number): number {
    return FORMULAS[this.name].g(x, this.alpha);
  }
  /** The surrogate gradient g'(x) used in place of the Heaviside derivative. */
  g1(x: number): number {
    return FORMULAS[this.name].g1(x, this.alpha);
  }
  /** Its derivative g''(x), used by Hessian-vector products. */
  g2(x: number): number {
    return FORMULAS[this.name].g2(x, this.alpha);
  }
  /** The forward value of a spike at x = h - v_threshold. */
  spike(x: number): number {
    return this.spiking ? (x >= 0 ? 1 : 0) : this.g(x);
  }

  with(options: SurrogateOptions): Surrogate {
    return new Surrogate(this.name, { alpha: this.alpha, spiking: this.spiking, ...options });
  }

  toString(): string {
    return `${this.name}(alpha=${this.alpha}${this.spiking ? '' : ', smooth'})`;
  }
}

export const atan = (o?: SurrogateOptions): Surrogate => new Surrogate('atan', o);
export const sigmoidSurrogate = (o?: SurrogateOptions): Surrogate => new Surrogate('sigmoid', o);
export const piecewiseQuadratic = (o?: SurrogateOptions): Surrogate => new Surrogate('piecewiseQuadratic', o);
export const softSign = (o?: SurrogateOptions): Surrogate => new Surrogate('softSign', o);
export const superSpike = (o?: SurrogateOptions): Surrogate => new Surrogate('superSpike', o);
export const erfSurrogate = (o?: SurrogateOptions): Surrogate => new Surrogate('erf', o);
export const piecewiseExp = (o?: SurrogateOptions): Surrogate => new Surrogate('piecewiseExp', o);
export const rect = (o?: SurrogateOptions): Surrogate => new Surrogate('rect', o);

/** By name, e.g. create('atan', {alpha: 2}) or parse('atan:2'). */
export function create(name: string, options?: SurrogateOptions): Surrogate {
  return new Surrogate(name as SurrogateName, options);
}

/** Parses 'name' or 'name:alpha' (the CLI form). */
export function parse(spec: string): Surrogate {
  if (typeof spec !== 'string') fail(`surrogate spec must be a string like 'atan:2', got ${describe(spec)}`);
  const [name, alphaText, ...rest] = spec.split(':');
  if (rest.length > 0) fail(`surrogate spec must look like 'atan' or 'atan:2', got '${spec}'`);
  if (alphaText === undefined) return create(name!);
  const alpha = Number(alphaText);
  if (alphaText.trim() === '' || !Number.isFinite(alpha)) fail(`surrogate spec '${spec}': alpha must be a finite number`);
  return create(name!, { alpha });
}

export { sigmoidSurrogate as sigmoid, erfSurrogate as erf };
