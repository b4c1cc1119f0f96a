// Child processes for tests, awaited without blocking the vitest worker's event loop.
import { spawn } from 'node:child_process';

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string; // stdout and stderr together
}

// Runs a program to its end (killed after 10 minutes) without blocking this worker's event loop: spawnSync did,
// for minutes under ThreadSanitizer, and vitest's RPC to the main process then timed out ("Timeout calling
// onTaskUpdate").
export function spawnToEnd(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${error.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolvePromise({ status, signal, output: `${stdout}${stderr}` });
    });
  });
}
