// Stopping a long command cleanly on SIGINT (Ctrl-C) and SIGTERM: the first signal aborts an
// AbortController, so the run finishes its step, saves that point and stops; a second one ends the
// process at once (what was saved last stays). Exit codes follow the shell's convention, 128 + the
// signal's number: 130 for SIGINT, 143 for SIGTERM.

export type StopSignal = 'SIGINT' | 'SIGTERM';

const EXIT_CODES: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/** The exit status of a process stopped by `signal` (128 + its number). */
export function exitCodeFor(signal: StopSignal): number {
  return EXIT_CODES[signal];
}

export interface StopOnSignals {
  /** Aborted on the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** The signal that arrived first, or null. */
  received(): StopSignal | null;
  /** Removes the handlers (the signals' default behaviour returns). */
  dispose(): void;
}

/**
 * Installs SIGINT and SIGTERM handlers until dispose(). onFirst is told of the first signal (to say that
 * the run stops after its step); a second signal of either kind exits the process with that signal's code.
 */
export function stopOnSignals(onFirst: (signal: StopSignal) => void, onSecond: (signal: StopSignal) => void = () => {}): StopOnSignals {
  const controller = new AbortController();
  let first: StopSignal | null = null;
  const handler = (signal: StopSignal): void => {
    if (first === null) {
      first = signal;
      onFirst(signal);
      controller.abort(new Error(`stopped by ${signal}`));
      return;
    }
    onSecond(signal);
    process.exit(exitCodeFor(signal));
  };
  const onInt = (): void => handler('SIGINT');
  const onTerm = (): void => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    received: () => first,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
