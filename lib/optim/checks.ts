// The argument checks of the optimisers and schedulers, and the parameter lists they take.
import { describe, fail } from '../errors.js';
import { Parameter, type Device } from '../tensor.js';
import type { NamedParameters } from './optimizer.js';
export function checkNonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(`${name} must be a finite non-negative number, got ${describe(value)}`);
  return value;
}
export function checkPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail(`${name} must be a finite positive number, got ${describe(value)}`);
  return value;
}

export function checkFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${name} must be a finite number, got ${describe(value)}`);
  return value;
}

export function checkUnitInterval(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1)
    fail(`${name} must be a number in [0, 1), got ${describe(value)}`);
  return value;
}

export function checkBool(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkInt(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    fail(`${name} must be an integer >= ${min}, got ${describe(value)}`);
  return value;
}

/** 'a', 'b', 'c', 'd', 'e' and 3 more */
export function listNames(names: readonly string[], shown = 5): string {
  const head = names.slice(0, shown).map((n) => `'${n}'`).join(', ');
  return names.length > shown ? `${head} and ${names.length - shown} more` : head;
}

/** options with undefined entries replaced by the defaults */
export function withDefaults(options: Record<string, unknown>, defaults: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) result[key] = value;
  return result;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Normalises Parameter[] or [name, Parameter][] into named pairs, checking types, duplicates and devices. */
export function namedParameterList(where: string, params: unknown): NamedParameters {
  if (!Array.isArray(params) || params.length === 0)
    fail(`${where}: params must be a non-empty array of Parameter (or of [name, Parameter] pairs), got ${describe(params)}`);
  const named = Array.isArray(params[0]);
  const result: NamedParameters = [];
  params.forEach((entry: unknown, i: number) => {
    if (named) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !(entry[1] instanceof Parameter))
        fail(`${where}: params[${i}] must be a [name, Parameter] pair like the others, got ${describe(entry)}`);
      if (entry[0] === '') fail(`${where}: params[${i}] has an empty name`);
      result.push([entry[0], entry[1]]);
    } else {
      if (!(entry instanceof Parameter)) fail(`${where}: params[${i}] must be a Parameter, got ${describe(entry)}`);
      result.push([`param.${i}`, entry]);
    }
  });
  const names = new Set<string>();
  const seen = new Set<Parameter>();
  let device: Device | undefined;
  for (const [name, p] of result) {
    if (names.has(name)) fail(`${where}: parameter name '${name}' appears more than once`);
    if (seen.has(p)) fail(`${where}: parameter '${name}' appears more than once (as another name)`);
    names.add(name);
    seen.add(p);
    if (device === undefined) device = p.device;
    else if (p.device !== device)
      fail(`${where}: all parameters must be on one device; '${result[0]![0]}' is on ${device}, '${name}' is on ${p.device}`);
  }
  return result;
}

/** A state dict's `hyper` object: an object with exactly the keys of `current` (the values are checked by whoever applies them). */
export function checkHyperKeys(where: string, hyper: unknown, current: Record<string, unknown>): Record<string, unknown> {
  if (hyper === null || typeof hyper !== 'object' || Array.isArray(hyper)) fail(`${where}: hyper must be an object, got ${describe(hyper)}`);
  for (const key of Object.keys(current))
    if (!(key in hyper)) fail(`${where}: hyper is missing '${key}'`);
  for (const key of Object.keys(hyper))
    if (!(key in current)) fail(`${where}: hyper has unknown key '${key}' (known: ${Object.keys(current).join(', ')})`);
  return hyper as Record<string, unknown>;
}
