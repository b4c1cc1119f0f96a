// commander set up the way every ikun command reports: errors become a CommandUsageError (the CLI prints
// "ikun: <reason>" and exits 2), help is printed on stdout (through console.log, where the tests of the
// commands that run in-process read it) and ends the command with 0.
import { Command, CommanderError, InvalidArgumentError } from 'commander';

export class CommandUsageError extends Error {}

/** Thrown when --help was printed: the command ends with exit code 0. */
export class HelpShown extends Error {}

export function ikunCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .helpOption('--help', 'show this help')
    .configureOutput({ writeOut: (s) => console.log(s.replace(/\n$/, '')), writeErr: () => {}, outputError: () => {} });
}

/** Parses argv (user arguments only) and turns commander's errors into ikun's. */
export function parseWith(cmd: Command, argv: readonly string[]): void {
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help') throw new HelpShown();
      throw new CommandUsageError(error.message.replace(/^error: /, ''));
    }
    throw error;
  }
}

export function integerArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`must be an integer, got '${raw}'.`);
    if (n < min || n > max) throw new InvalidArgumentError(`must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`}, got ${raw}.`);
    return n;
  };
}

export function numberArg(check: (n: number) => string | null) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`must be a number, got '${raw}'.`);
    const problem = check(n);
    if (problem) throw new InvalidArgumentError(problem);
    return n;
  };
}

/** A comma list: 'a,b' -> ['a', 'b'], with empty items refused. */
export function listArg(raw: string): string[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new InvalidArgumentError(`must be a comma list without empty items, got '${raw}'.`);
  return items;
}

/**
 * Splits argv into the arguments of cmd's own options (each with its value) and the rest, which another
 * parser takes (the experiment passes every other flag on to `ikun train`'s parser).
 */
export function splitOwnArgs(cmd: Command, argv: readonly string[]): { own: string[]; rest: string[] } {
  const own: string[] = [], rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    const option = cmd.options.find((o) => o.long === name) ?? (name === '--help' ? { required: false, optional: false } : undefined);
    if (!option) {
      rest.push(arg);
      continue;
    }
    own.push(arg);
    if (!arg.includes('=') && (option.required || option.optional) && i + 1 < argv.length) own.push(argv[++i]!);
  }
  return { own, rest };
}
