// The help and the flag checks of every command work where the native addon does not load (a missing or
// broken binary): they are what a user reads to find out what to do. The compiled CLI runs from a copy of the
// package that has no build/ and no prebuilds/.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../..');
let bin = '';
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

beforeAll(() => {
  const copy = mkdtempSync(join(tmpdir(), 'ikun-no-native-'));
  for (const f of ['package.json', 'sources.json']) cpSync(join(root, f), join(copy, f));
  cpSync(join(root, 'dist', 'lib'), join(copy, 'dist', 'lib'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  bin = join(copy, 'dist', 'lib', 'cli.js');
});

describe('ikun without its native addon', () => {
  it('cannot train there: the copy really has no addon, and the message says so', () => {
    const r = run(['train', '--sample', '--epochs', '1', '--out', join(tmpdir(), 'ikun-no-native-run')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ikun: no native addon found/);
  });

  it('prints ikun --help, --version and the help of train, hessian, doctor and eval', () => {
    const top = run(['--help']);
    expect(top.status, top.stderr).toBe(0);
    for (const command of ['train', 'hessian', 'doctor', 'experiment', 'eval']) expect(top.stdout).toContain(`  ${command} `);
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const [command, flag] of [['train', '--epochs'], ['hessian', '--checkpoint'], ['doctor', '--json'], ['eval', '--checkpoint']]) {
      const help = run([command!, '--help']);
      expect(help.status, `${command}: ${help.stderr}`).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: ikun ${command} `));
      expect(help.stdout).toContain(flag);
    }
  });

  it('refuses bad flags with exit 2 before it needs the addon', () => {
    for (const args of [['train', '--epochs', 'ten'], ['train', '--sample', '--epochs', '0'], ['hessian', '--top', '3'], ['doctor', '--gpu'], ['eval', '--batch', '1']]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^ikun: /);
      expect(r.stderr).not.toMatch(/native addon/);
    }
  });
});
