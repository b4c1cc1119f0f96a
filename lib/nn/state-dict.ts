// State dicts as PyTorch has them: every parameter and buffer by its dotted name, module by module
// (a module's parameters, then its buffers, then its children), sharing the model's memory.
import { describe, fail } from '../errors.js';
import { Tensor, formatShape } from '../tensor.js';
import type { Module } from './module.js';

/** Tensors by PyTorch state-dict name ('conv_fc.0.weight', 'conv_fc.1.running_mean', ...). */
export type StateDict = Record<string, Tensor>;

export interface LoadStateDictOptions {
  /** Refuse missing and unexpected keys (default true). Shape mismatches are refused either way, as in PyTorch. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /**
   * How the state dict's keys were matched to the model's: 'name' (the same keys); 'prefix' (the same
   * keys once one leading module name is taken off, put on or swapped, e.g. 'conv_fc.0.weight' for
   * '0.weight'); 'order' (the same tensors in the same order, with the same attribute names and shapes:
   * the same layers under other module names, e.g. models.csnn's into a hand-built nn.Sequential).
   */
  matched: 'name' | 'prefix' | 'order';
}

function sameKeys(keys: Iterable<string>, wanted: Set<string>): boolean {
  let n = 0;
  for (const k of keys) {
    if (!wanted.has(k)) return false;
    n++;
  }
  return n === wanted.size;
}

/** Leading whole segments ('conv_fc.', 'a.b.') shared by every key, longest first, and '' (none). */
function sharedPrefixes(keys: string[]): string[] {
  const out: string[] = [];
  const segments = keys[0]?.split('.') ?? [];
  for (let n = segments.length - 1; n >= 1; n--) {
    const prefix = segments.slice(0, n).join('.') + '.';
    if (keys.every((k) => k.startsWith(prefix))) out.push(prefix);
  }
  return [...out, ''];
}

/** The attribute a key names ('weight', 'running_mean', ...): its last segment. */
const attribute = (key: string): string => key.slice(key.lastIndexOf('.') + 1);

/**
 * The state dict under the model's keys (see LoadStateDictResult.matched), or as given when nothing
 * matches; the caller then reports missing and unexpected keys by name.
 */
function alignKeys(given: Array<[string, Tensor]>, target: Array<[string, Tensor]>): { renamed: Map<string, Tensor>; matched: LoadStateDictResult['matched'] } {
  const wanted = new Set(target.map(([k]) => k));
  const byName = new Map(given);
  if (sameKeys(byName.keys(), wanted)) return { renamed: byName, matched: 'name' };
  const keys = given.map(([k]) => k);
  for (const from of sharedPrefixes(keys)) {
    for (const to of sharedPrefixes([...wanted])) {
      if (from === to) continue;
      const moved = keys.map((k) => to + k.slice(from.length));
      if (sameKeys(moved, wanted)) return { renamed: new Map(given.map(([, t], i) => [moved[i]!, t])), matched: 'prefix' };
    }
  }
  const sameLayers = given.length === target.length && given.every(([k, t], i) => {
    const [wk, wt] = target[i]!;
    return attribute(k) === attribute(wk) && sameShape(t.shape, wt.shape);
  });
  if (sameLayers) return { renamed: new Map(target.map(([k], i) => [k, given[i]![1]])), matched: 'order' };
  return { renamed: byName, matched: 'name' };
}

/** The module's own tensors and its children's, in PyTorch's order. */
export function collectState(module: Module, own: (m: Module) => { parameters: Map<string, Tensor>; buffers: Map<string, Tensor>; modules: Map<string, Module> },
  prefix = '', into: Array<[string, Tensor]> = []): Array<[string, Tensor]> {
  const { parameters, buffers, modules } = own(module);
  for (const [name, p] of parameters) into.push([prefix + name, p]);
  for (const [name, b] of buffers) into.push([prefix + name, b]);
  for (const [name, m] of modules) collectState(m, own, `${prefix}${name}.`, into);
  return into;
}

/** A view of t: the same memory, shape and dtype, as a plain Tensor (not a Parameter). */
export function shareOf(t: Tensor): Tensor {
  return new Tensor(t.storage, t.shape, t.dtype, t.device);
}

/** The entries of a state dict given as an object or a Map, each checked to be a live Tensor. */
export function stateDictEntries(stateDict: unknown, who: string): Array<[string, Tensor]> {
  const entries: Array<[string, unknown]> = stateDict instanceof Map
    ? [...stateDict.entries()]
    : stateDict !== null && typeof stateDict === 'object' && !Array.isArray(stateDict) && !(stateDict instanceof Tensor)
      ? Object.entries(stateDict)
      : fail(`${who}: stateDict must be an object (or Map) of Tensors by name, as model.stateDict() or load(path) give, got ${describe(stateDict)}`);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) fail(`${who}: stateDict['${name}'] must be a Tensor, got ${describe(t)}`);
    t.checkAlive(`${who}: stateDict['${name}']`);
  }
  return entries as Array<[string, Tensor]>;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Copies every tensor of stateDict into the model's tensor of the same name (dtypes convert; see
 * LoadStateDictResult.matched for state dicts of the same layers under other names). All keys and shapes are checked first; on a problem nothing is copied
 * and the error lists every bad key.
 */
export function loadInto(modelName: string, target: Array<[string, Tensor]>, stateDict: unknown, options: unknown): LoadStateDictResult {
  const who = `${modelName}.loadStateDict`;
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options)))
    fail(`${who}: options must be an object like { strict: false }, got ${describe(options)}`);
  const o = (options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== 'strict') fail(`${who}: unknown option '${key}' (known: strict)`);
  if (o.strict !== undefined && typeof o.strict !== 'boolean') fail(`${who}: strict must be a boolean, got ${describe(o.strict)}`);
  const strict = o.strict ?? true;
  const wanted = new Map(target);
  const { renamed: given, matched } = alignKeys(stateDictEntries(stateDict, who), target);
  const missingKeys = [...wanted.keys()].filter((k) => !given.has(k));
  const unexpectedKeys = [...given.keys()].filter((k) => !wanted.has(k));
  const mismatched = [...wanted].filter(([k, t]) => given.has(k) && !sameShape(given.get(k)!.shape, t.shape));
  const problems: string[] = [];
  if (strict && missingKeys.length > 0) problems.push(`missing keys: ${missingKeys.map((k) => `'${k}'`).join(', ')}`);
  if (strict && unexpectedKeys.length > 0) problems.push(`unexpected keys: ${unexpectedKeys.map((k) => `'${k}'`).join(', ')}`);
  for (const [k, t] of mismatched)
    problems.push(`shape mismatch for '${k}': the state dict has ${formatShape(given.get(k)!.shape)}, the model ${formatShape(t.shape)}`);
  if (problems.length > 0) {
    const hint = !strict || mismatched.length > 0 ? '' : ' (pass { strict: false } to load the keys that match)';
    fail(`${who}: the state dict does not fit the model, nothing was loaded. ${problems.join('; ')}${hint}`);
  }
  for (const [k, t] of target) {
    const source = given.get(k);
    if (source && source.storage !== t.storage) t.copyFrom(source);
  }
  return { missingKeys, unexpectedKeys, matched };
}
