// The flag rules that lib/cli/flags.ts adds to commander for train, hessian and doctor, on a small command.
import { Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { ikunCommand } from '../../lib/cli/commander-usage.js';
import { checkFlags, choiceFlag, integerFlag, numberFlag, textFlag } from '../../lib/cli/flags.js';

const cmd = () => ikunCommand('ikun test', 'a command to check the rules on')
  .option('--out <dir>', 'a value')
  .option('--trace', 'a switch')
  .option('--no-progress', 'a negated switch')
  .addOption(new Option('--checkpoint <file>', 'repeatable').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]));

describe('checkFlags', () => {
  it('accepts values, inline values, negated switches, repeatable flags, and tells --help apart', () => {
    expect(checkFlags(cmd(), ['--out', 'x', '--trace', '--no-progress', '--checkpoint=a', '--checkpoint', 'b'], { repeatable: ['--checkpoint'] })).toEqual({ help: false });
    expect(checkFlags(cmd(), ['--out', '-1'])).toEqual({ help: false }); // a negative number is a value, not a flag
    expect(checkFlags(cmd(), ['--trace', '--help'])).toEqual({ help: true });
  });

  it('refuses what commander would let through or word otherwise', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /^unknown flag --bogus$/],
      [['--bogus=1'], /^unknown flag --bogus$/],
      [['--'], /^unknown flag --$/],
      [['stray'], /^unexpected argument 'stray'$/],
      [['--out', 'a', '--out', 'b'], /^--out given twice$/],
      [['--checkpoint', 'a', '--checkpoint', 'b'], /^--checkpoint given twice$/],
      [['--trace=yes'], /^--trace takes no value$/],
      [['--help=1'], /^--help takes no value$/],
      [['--out'], /^--out needs a value$/],
      [['--out', '--trace'], /^--out needs a value$/],
      [['--trace', '--bogus', '--help'], /^unknown flag --bogus$/],
    ];
    for (const [argv, reason] of cases) expect(() => checkFlags(cmd(), argv), argv.join(' ')).toThrow(reason);
    expect(() => checkFlags(cmd(), ['x'], { strayArgument: (a) => `no words here: '${a}'` })).toThrow(/^no words here: 'x'$/);
  });
});

describe('typed values', () => {
  it('parse and refuse in the words of the flag', () => {
    expect(integerFlag('--n', { min: 1 })('3')).toBe(3);
    expect(() => integerFlag('--n', { min: 1 })('0')).toThrow(/^--n must be at least 1, got 0$/);
    expect(() => integerFlag('--n', { max: 4 })('5')).toThrow(/^--n must be at most 4, got 5$/);
    expect(() => integerFlag('--n', { min: 1, max: 4 })('9')).toThrow(/^--n must be between 1 and 4, got 9$/);
    expect(() => integerFlag('--n')('1.5')).toThrow(/^--n must be an integer, got '1.5'$/);
    expect(() => integerFlag('--n')(' ')).toThrow(/^--n must be a number, got ' '$/);
    expect(numberFlag('--x')('-2.5')).toBe(-2.5);
    expect(() => numberFlag('--x', { positive: true })('0')).toThrow(/^--x must be a number > 0, got '0'$/);
    expect(() => numberFlag('--x')('Infinity')).toThrow(/must be a number/);
    expect(choiceFlag('--opt', ['sgd', 'adam'])('adam')).toBe('adam');
    expect(() => choiceFlag('--opt', ['sgd', 'adam'])('rmsprop')).toThrow(/^--opt must be one of sgd, adam, got 'rmsprop'$/);
    expect(() => textFlag('--out')('')).toThrow(/^--out needs a non-empty value$/);
  });
});
