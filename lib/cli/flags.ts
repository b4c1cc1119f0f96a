// The flag rules of `ikun train`, `ikun hessian` and `ikun doctor` that commander does not enforce itself, and
// their typed values, worded as these commands always have ('--top must be at least 1, got 0'). commander
// accepts a flag twice (the last wins), reads `--out --trace` as --out's value and calls `--trace=yes` an
// unknown option; checkFlags refuses each of these before commander parses.
import type { Command } from 'commander';
import { CommandUsageError } from './commander-usage.js';

export interface FlagRules {
  /** Flags that may be given more than once (each value is collected). */
  repeatable?: readonly string[];
  /** The reason given for a word that is not a flag (default: unexpected argument 'WORD'). */
  strayArgument?: (arg: string) => string;
}

/** Checks argv against cmd's options; returns whether --help was asked for (commander then need not parse). */
export function checkFlags(cmd: Command, argv: readonly string[], rules: FlagRules = {}): { help: boolean } {
  const seen = new Set<string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [name, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const option = name === '--help' ? null : cmd.options.find((o) => o.long === name);
    if (option === undefined)
      throw new CommandUsageError(arg.startsWith('-') ? `unknown flag ${name}` : rules.strayArgument?.(arg) ?? `unexpected argument '${arg}'`);
    if (seen.has(name) && !rules.repeatable?.includes(name)) throw new CommandUsageError(`${name} given twice`);
    seen.add(name);
    if (option === null || !(option.required || option.optional)) {
      if (inline !== undefined) throw new CommandUsageError(`${name} takes no value`);
      if (option === null) help = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new CommandUsageError(`${name} needs a value`);
  }
  return { help };
}

// Value parsers for commander's options. They throw CommandUsageError, not commander's InvalidArgumentError,
// which commander would prefix with its own "option '--top <n>' argument '0' is invalid."

export function integerFlag(name: string, range: { min?: number; max?: number } = {}) {
  return (raw: string): number => {
    const n = numberFlag(name)(raw);
    if (!Number.isSafeInteger(n)) throw new CommandUsageError(`${name} must be an integer, got '${raw}'`);
    if (range.min !== undefined && range.max !== undefined && (n < range.min || n > range.max))
      throw new CommandUsageError(`${name} must be between ${range.min} and ${range.max}, got ${raw}`);
    if (range.min !== undefined && n < range.min) throw new CommandUsageError(`${name} must be at least ${range.min}, got ${raw}`);
    if (range.max !== undefined && n > range.max) throw new CommandUsageError(`${name} must be at most ${range.max}, got ${raw}`);
    return n;
  };
}

export function numberFlag(name: string, check?: { positive: true }) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new CommandUsageError(`${name} must be a number, got '${raw}'`);
    if (check?.positive && !(n > 0)) throw new CommandUsageError(`${name} must be a number > 0, got '${raw}'`);
    return n;
  };
}

export function choiceFlag<T extends string>(name: string, choices: readonly T[]) {
  return (raw: string): T => {
    if (!(choices as readonly string[]).includes(raw)) throw new CommandUsageError(`${name} must be one of ${choices.join(', ')}, got '${raw}'`);
    return raw as T;
  };
}

/** A text value that must not be empty (`--checkpoint=`). */
export function textFlag(name: string) {
  return (raw: string): string => {
    if (raw === '') throw new CommandUsageError(`${name} needs a non-empty value`);
    return raw;
  };
}
