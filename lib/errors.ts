// Argument checks shared by the public API. Every message names the argument and what was expected.

export function fail(message: string): never {
  throw new Error(`ikun: ${message}`);
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  return (value as object).constructor?.name ?? 'object';
}

export function checkFiniteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${name} must be a finite number, got ${describe(value)}`);
  return value;
}

export function checkPositiveNumber(name: string, value: unknown): number {
  const v = checkFiniteNumber(name, value);
  if (v <= 0) fail(`${name} must be a positive number, got ${v}`);
  return v;
}

export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    fail(`${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T))
    fail(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  return value as T;
}

export function checkKnownKeys(name: string, options: object, allowed: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) fail(`${name}: unknown option '${key}' (known: ${allowed.join(', ')})`);
  }
}

export function checkOptionsObject(name: string, options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    fail(`${name} must be an options object, got ${describe(options)}`);
  return options as Record<string, unknown>;
}

/** The facts behind an IkunError, for callers that phrase it their own way. */
export type ErrorDetails = Record<string, string | number>;

/**
 * An error with a stable code ('RUN_EXISTS', 'DATA_NOT_FOUND', ...) and the facts behind it. The message
 * speaks of the API's arguments; the command line rephrases it in its flags (lib/cli-errors.ts).
 */
export class IkunError extends Error {
  readonly code: string;
  readonly details: Readonly<ErrorDetails>;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message.startsWith('ikun: ') ? message : `ikun: ${message}`);
    this.name = 'IkunError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function failWith(code: string, details: ErrorDetails, message: string): never {
  throw new IkunError(code, message, details);
}

/** Phrasings of coded errors for one audience: code -> message from the details. */
export type Wording = Readonly<Record<string, (details: Readonly<ErrorDetails>) => string>>;

/** The error with its message rephrased when wording knows its code; any other error as it is. */
export function rephrase(error: unknown, wording: Wording): unknown {
  if (!(error instanceof IkunError)) return error;
  const phrase = wording[error.code];
  return phrase ? new IkunError(error.code, phrase(error.details), { ...error.details }) : error;
}
