// Weight initialisation: IKUN (ikun_v1, ikun_v2) and the PyTorch baselines the paper compares against
// (xavier, kaiming, normal, lecun). Rules: shared/docs/ikun-paper.md, section "IKUN".
//
// beta, the factor IKUN folds into the variance, is 1 / (an average over 1000 evenly spaced points of
// [-1, 1]):
//   'code'          : of 1/(1+x^2)  (the reference script's rule; beta = 1.273703)
//   'mean'          : of g'(x), the surrogate gradient of the neuron that follows the layer
//   'second-moment' : of g'(x)^2
// The grid is float32, built the way torch.linspace(-1, 1, steps=1000) builds it on the CPU (step rounded
// to float32; the first half counts up from -1, the second half down from 1, each point rounded to
// float32). The function values are then evaluated and averaged in float64. The reference evaluates and
// averages in float32 (then 1/mean in float64); the two betas differ by about 3e-8 relative
// (1.27370266 here vs 1.27370262), far below the 6 digits the paper's numbers carry.
import { checkInteger, checkKnownKeys, checkOneOf, checkOptionsObject, checkPositiveNumber, describe, fail } from './errors.js';
import { Module } from './nn/module.js';
import { BatchNorm2d, Conv2d, Linear } from './nn/layers.js';
import { IFNode, LIFNode } from './nn/neuron.js';
import { Generator } from './random.js';
import { Surrogate } from './surrogate.js';
import { BETA_MODES, INIT_METHODS, type BetaMode, type InitMethod } from './init-methods.js';

export { BETA_MODES, INIT_METHODS, type BetaMode, type InitMethod };

/** One initialised layer. */
export interface InitRow {
  /** Module name, e.g. 'conv_fc.0'. */
  name: string;
  kind: 'conv' | 'linear';
  fanIn: number;
  fanOut: number;
  /** IKUN's beta; null for the baselines. */
  beta: number | null;
  /** Standard deviation of a normal init, or the bound b of a Uniform(-b, b) init. */
  std: number;
  distribution: 'normal' | 'uniform';
}

export interface ApplyOptions {
  /** How IKUN's beta is computed (default 'code', the reference script's rule). */
  betaMode?: BetaMode;
  /** Seed of the generator that draws every weight (default 0). */
  seed?: number;
  /** true: print the table with console.log; a function receives the lines; default: no printing. */
  log?: boolean | ((line: string) => void);
}

export interface LayerInitOptions {
  /** IKUN's beta; when given, betaMode and surrogate are not used. */
  beta?: number;
  /** How beta is computed when not given (default 'code'). */
  betaMode?: BetaMode;
  /** The surrogate beta is computed from in modes 'mean' and 'second-moment'. */
  surrogate?: Surrogate;
  /** Draws the weights (default: a new Generator(0)). */
  generator?: Generator;
}

export type InitLayer = Conv2d | Linear;

const GRID_STEPS = 1000;

/** torch.linspace(start, end, steps) in float32 (CPU algorithm), returned as doubles. */
export function linspaceFloat32(start: number, end: number, steps: number): Float64Array {
  checkInteger('linspaceFloat32: steps', steps, 1);
  const f = Math.fround;
  const out = new Float64Array(steps);
  if (steps === 1) {
    out[0] = f(start);
    return out;
  }
  const a = f(start), b = f(end);
  const step = f((b - a) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(a + f(step * i)) : f(b - f(step * (steps - 1 - i)));
  return out;
}

let cachedGrid: Float64Array | null = null;
function grid(): Float64Array {
  return (cachedGrid ??= linspaceFloat32(-1, 1, GRID_STEPS));
}

function meanOver(fn: (x: number) => number): number {
  const xs = grid();
  let sum = 0;
  for (const x of xs) sum += fn(x);
  return sum / xs.length;
}

/**
 * IKUN's beta. 'code' needs no surrogate (1 / mean of 1/(1+x^2) = 1.273703); 'mean' and
 * 'second-moment' use the given surrogate's g'(x) (atan alpha 2: 2.490060 and 4.053265).
 */
export function betaFor(mode: BetaMode = 'code', surrogate?: Surrogate): number {
  checkOneOf('betaFor: mode (betaMode)', mode, BETA_MODES);
  if (mode === 'code') return 1 / meanOver((x) => 1 / (1 + x * x));
  if (!(surrogate instanceof Surrogate))
    fail(`betaFor: betaMode '${mode}' needs a surrogate (e.g. surrogate.atan({ alpha: 2 })), got ${describe(surrogate)}`);
  const mean = mode === 'mean' ? meanOver((x) => surrogate.g1(x)) : meanOver((x) => surrogate.g1(x) ** 2);
  if (!(mean > 0) || !Number.isFinite(mean))
    fail(`betaFor: the ${mode === 'mean' ? 'mean' : 'second moment'} of ${surrogate.toString()}'s gradient over [-1, 1] is ${mean}; beta = 1/${mean} is not usable`);
  return 1 / mean;
}

function isLayer(layer: unknown): layer is InitLayer {
  return layer instanceof Conv2d || layer instanceof Linear;
}

/** fan_in = inFeatures or inChannels*kh*kw; fan_out = outFeatures or outChannels*kh*kw. */
export function fans(layer: InitLayer): { fanIn: number; fanOut: number } {
  if (layer instanceof Linear) return { fanIn: layer.inFeatures, fanOut: layer.outFeatures };
  if (layer instanceof Conv2d) {
    const k = layer.kernelSize[0] * layer.kernelSize[1];
    return { fanIn: layer.inChannels * k, fanOut: layer.outChannels * k };
  }
  return fail(`fans: layer must be a Conv2d or Linear, got ${describe(layer)}`);
}

/** The distribution and std (or uniform bound) a method gives a layer with these fans. */
export function initScale(method: InitMethod, fanIn: number, fanOut: number, beta = 1): { std: number; distribution: 'normal' | 'uniform' } {
  checkOneOf('initScale: method', method, INIT_METHODS);
  switch (method) {
    case 'ikun_v1': return { std: Math.sqrt(beta / fanIn), distribution: 'normal' };
    case 'ikun_v2': return { std: Math.sqrt(beta / (fanIn + fanOut)), distribution: 'normal' };
    case 'xavier': return { std: Math.sqrt(6 / (fanIn + fanOut)), distribution: 'uniform' };
    case 'kaiming': return { std: Math.sqrt(6 / fanIn), distribution: 'uniform' };
    case 'normal': return { std: 0.02, distribution: 'normal' };
    case 'lecun': return { std: Math.sqrt(1 / fanIn), distribution: 'normal' };
  }
}

const isIkun = (method: InitMethod): boolean => method === 'ikun_v1' || method === 'ikun_v2';

/** Fills the layer's weight (row-major order, from generator) and zeroes its bias. */
function fillLayer(layer: InitLayer, scale: { std: number; distribution: 'normal' | 'uniform' }, generator: Generator): void {
  const n = layer.weight.size;
  const values = layer.weight.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  const s = scale.std;
  if (scale.distribution === 'normal') for (let i = 0; i < values.length; i++) values[i] = s * generator.normal();
  else for (let i = 0; i < values.length; i++) values[i] = (2 * generator.uniform() - 1) * s;
  layer.weight.copyFrom(values);
  layer.bias?.fill(0);
}

/**
 * Initialises one Conv2d or Linear layer in place (weight by `method`, bias 0) and returns its row
 * (named 'layer'). For IKUN, beta comes from options.beta, else from betaFor(betaMode, surrogate).
 */
export function initLayer(layer: InitLayer, method: InitMethod, options: LayerInitOptions = {}): InitRow {
  if (!isLayer(layer)) fail(`initLayer: layer must be a Conv2d or Linear, got ${describe(layer)}`);
  checkOneOf('initLayer: method', method, INIT_METHODS);
  const o = checkOptionsObject('initLayer options', options);
  checkKnownKeys('initLayer options', o, ['beta', 'betaMode', 'surrogate', 'generator']);
  const betaMode = o.betaMode === undefined ? 'code' : checkOneOf('initLayer: betaMode', o.betaMode, BETA_MODES);
  if (o.generator !== undefined && !(o.generator instanceof Generator))
    fail(`initLayer: generator must be an ikun Generator, got ${describe(o.generator)}`);
  const generator = (o.generator as Generator | undefined) ?? new Generator(0);
  let beta: number | null = null;
  if (isIkun(method))
    beta = o.beta !== undefined ? checkPositiveNumber('initLayer: beta', o.beta) : betaFor(betaMode, o.surrogate as Surrogate | undefined);
  const { fanIn, fanOut } = fans(layer);
  const scale = initScale(method, fanIn, fanOut, beta ?? 1);
  fillLayer(layer, scale, generator);
  return { name: 'layer', kind: layer instanceof Conv2d ? 'conv' : 'linear', fanIn, fanOut, beta, ...scale };
}

/** IKUN v1 on one layer: Normal(0, sqrt(beta / fan_in)). */
export function ikunV1(layer: InitLayer, options?: LayerInitOptions): InitRow {
  return initLayer(layer, 'ikun_v1', options);
}

/** IKUN v2 on one layer: Normal(0, sqrt(beta / (fan_in + fan_out))), conv layers included. */
export function ikunV2(layer: InitLayer, options?: LayerInitOptions): InitRow {
  return initLayer(layer, 'ikun_v2', options);
}

/** The table as aligned text lines (header first). */
export function formatTable(rows: readonly InitRow[], method?: InitMethod): string[] {
  const header = ['layer', 'kind', 'fan_in', 'fan_out', 'dist', 'std/bound', 'beta'];
  const body = rows.map((r) => [
    r.name, r.kind, String(r.fanIn), String(r.fanOut), r.distribution === 'normal' ? 'normal' : 'uniform±',
    r.std.toFixed(6), r.beta === null ? '-' : r.beta.toFixed(6),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const line = (cells: string[]): string => cells.map((s, c) => (c < 2 || c === 4 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ').trimEnd();
  const lines = [line(header), ...body.map(line)];
  return method ? [`init ${method}:`, ...lines] : lines;
}

/** The spiking neuron after index i in namedModules order, or null. */
function followingNeuron(modules: Array<[string, Module]>, i: number): IFNode | LIFNode | null {
  for (let j = i + 1; j < modules.length; j++) {
    const m = modules[j]![1];
    if (m instanceof IFNode || m instanceof LIFNode) return m;
  }
  return null;
}

/**
 * Initialises every Conv2d and Linear weight of `model` in place (namedModules order, one Generator
 * seeded with `seed` drawing the weights in that order, row-major), zeroes their biases, and resets
 * every BatchNorm2d to weight 1, bias 0 (running statistics are left as they are). Returns the table.
 * In beta modes 'mean' and 'second-moment' each layer's beta comes from the surrogate of the first
 * IFNode/LIFNode after it in namedModules order.
 */
export function apply(model: Module, method: InitMethod, options: ApplyOptions = {}): InitRow[] {
  if (!(model instanceof Module)) fail(`init.apply: model must be an ikun Module, got ${describe(model)}`);
  checkOneOf('init.apply: method', method, INIT_METHODS);
  const o = checkOptionsObject('init.apply options', options);
  checkKnownKeys('init.apply options', o, ['betaMode', 'seed', 'log']);
  const betaMode = o.betaMode === undefined ? 'code' : checkOneOf('init.apply: betaMode', o.betaMode, BETA_MODES);
  const seed = o.seed === undefined ? 0 : checkInteger('init.apply: seed', o.seed, 0, 2 ** 53 - 1);
  if (o.log !== undefined && typeof o.log !== 'boolean' && typeof o.log !== 'function')
    fail(`init.apply: log must be a boolean or a function (line) => void, got ${describe(o.log)}`);

  const modules = model.namedModules();
  // Work out every row (and fail on a missing neuron) before touching any weight.
  const plan: Array<{ layer: InitLayer; row: InitRow }> = [];
  const betaCache = new Map<string, number>();
  modules.forEach(([name, m], i) => {
    if (!isLayer(m)) return;
    let beta: number | null = null;
    if (isIkun(method)) {
      let surrogate: Surrogate | undefined;
      if (betaMode !== 'code') {
        const neuron = followingNeuron(modules, i);
        if (!neuron)
          fail(`init.apply: layer '${name}' has no IFNode/LIFNode after it, so betaMode '${betaMode}' has no surrogate to take beta from; use betaMode 'code'`);
        surrogate = neuron.surrogate;
      }
      const key = surrogate ? `${surrogate.name}:${surrogate.alpha}` : 'code';
      beta = betaCache.get(key) ?? betaFor(betaMode, surrogate);
      betaCache.set(key, beta);
    }
    const { fanIn, fanOut } = fans(m);
    plan.push({ layer: m, row: { name, kind: m instanceof Conv2d ? 'conv' : 'linear', fanIn, fanOut, beta, ...initScale(method, fanIn, fanOut, beta ?? 1) } });
  });

  const generator = new Generator(seed);
  for (const { layer, row } of plan) fillLayer(layer, row, generator);
  for (const [, m] of modules) {
    if (m instanceof BatchNorm2d) {
      m.weight.fill(1);
      m.bias.fill(0);
    }
  }

  const rows = plan.map((p) => p.row);
  if (o.log) {
    const print = typeof o.log === 'function' ? (o.log as (line: string) => void) : (line: string) => console.log(line);
    for (const line of formatTable(rows, method)) print(line);
  }
  return rows;
}
