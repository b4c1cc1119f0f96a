// `ikun doctor [--json]`: the installation report of lib/cli/doctor-report.ts. Exit codes: 0 everything found
// works (also without a GPU), 1 something found does not, 2 bad flags. The report's modules load the native
// addon, so they are imported only once the flags are good: --help works without it.
import type { Command } from 'commander';
import { CommandUsageError, ikunCommand, parseWith } from './commander-usage.js';
import { checkFlags } from './flags.js';

function doctorProgram(): Command {
  return ikunCommand('ikun doctor', 'Checks this installation: the native binary in use (prebuilt or built here), the CPU, its kernels and ' +
    'the BLAS, the CUDA runtime, driver and GPUs, then runs one small CSNN training step on every device ' +
    "and compares each GPU's with the CPU's (relative error, tolerance 1e-4). " +
    'Exit status 0 when everything found works (also on a machine without a GPU), 1 when something does ' +
    'not (the report says what and how to fix it).')
    .usage('[--json]')
    .option('--json', 'print one JSON object instead of the report');
}

export function parseDoctorArgs(argv: readonly string[]): { json: boolean; help: boolean } {
  const cmd = doctorProgram();
  if (checkFlags(cmd, argv).help) return { json: false, help: true };
  parseWith(cmd, argv);
  return { json: cmd.opts<{ json?: boolean }>().json === true, help: false };
}

export async function doctorCommand(argv: string[]): Promise<number> {
  let args: { json: boolean; help: boolean };
  try {
    args = parseDoctorArgs(argv);
  } catch (error) {
    if (!(error instanceof CommandUsageError)) throw error;
    console.error(`ikun: ${error.message}\nRun 'ikun doctor --help' for the flags.`);
    return 2;
  }
  if (args.help) {
    doctorProgram().outputHelp();
    return 0;
  }
  const { diagnose, formatReport } = await import('./doctor-report.js');
  const report = diagnose();
  console.log(args.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.ok ? 0 : 1;
}
