#!/usr/bin/env node
// The ikun command line: each command lives in its own file under lib/cli/ and is registered here with
// commander, which writes `ikun --help`. A command parses its own flags and returns its exit code: 0 done,
// 1 the run failed, 2 bad flags, 130 / 143 stopped by SIGINT / SIGTERM. Its module is imported only when it
// runs, so that `ikun --help` and `ikun --version` work where the native addon does not load.
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { packageRoot } from './data/mnist.js';

type CommandMain = (argv: string[]) => Promise<number>;

const COMMANDS: ReadonlyArray<{ name: string; summary: string; load: () => Promise<CommandMain> }> = [
  { name: 'train', summary: "train the paper's CSNN (ikun train --help for the flags)", load: async () => (await import('./cli/train.js')).trainCommand },
  { name: 'hessian', summary: 'Hessian spectrum of a checkpoint: top eigenvalues, trace, density (ikun hessian --help)',
    load: async () => (await import('./cli/hessian.js')).hessianCommand },
  { name: 'doctor', summary: 'check the installation: binary, CPU, BLAS, CUDA and GPUs, a training step on each device',
    load: async () => (await import('./cli/doctor.js')).doctorCommand },
  { name: 'experiment', summary: "the paper's grid of inits x optimisers x seeds, aggregated, with report.html (ikun experiment --help)",
    load: async () => (await import('./cli/experiment.js')).experimentCommand },
  { name: 'eval', summary: 'test loss, accuracy, per-class accuracy and confusion matrix of a checkpoint (ikun eval --help)',
    load: async () => (await import('./cli/eval.js')).evalCommand },
];

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The root program; a command's action hands its loader to `chosen`. */
function program(chosen: (load: () => Promise<CommandMain>) => void): Command {
  const root = new Command('ikun')
    .usage('<command> [flags]')
    .helpOption('--help', 'print this help')
    .helpCommand(false)
    .version(packageVersion(), '--version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => console.log(s.replace(/\n$/, '')), writeErr: () => {}, outputError: () => {} })
    // a narrow first column, as the help has always been laid out (the longer names overflow it)
    .configureHelp({ padWidth: () => 8, helpWidth: 120 });
  for (const c of COMMANDS)
    root.command(c.name).description(c.summary).helpOption(false).allowUnknownOption().allowExcessArguments().action(() => chosen(c.load));
  return root;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  let load: (() => Promise<CommandMain>) | null = null;
  const root = program((l) => void (load = l));
  if (name === undefined || name === '--help' || name === 'help') {
    root.outputHelp();
    return name === undefined ? 2 : 0;
  }
  if (name !== '--version' && !COMMANDS.some((c) => c.name === name)) {
    console.error(`ikun: unknown command '${name}'\nRun 'ikun --help' for the flags.`);
    return 2;
  }
  try {
    // commander sees only the command's name (or --version): each command parses its own flags
    root.parse([name], { from: 'user' });
  } catch (error) {
    if ((error as { code?: string }).code === 'commander.version') return 0;
    throw error;
  }
  const chosen = load as (() => Promise<CommandMain>) | null;
  if (chosen === null) throw new Error(`ikun: command '${name}' was not dispatched`);
  let command: CommandMain;
  try {
    command = await chosen();
  } catch (error) {
    // the command's module did not load: most often the native addon, whose message says what to do
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  return await command(rest);
}

// Run when executed as the bin, also through npm's symlink in node_modules/.bin (not when imported).
function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
