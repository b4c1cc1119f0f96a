// The default learning rates, apart from lib/fit/options.ts (which builds optimisers and so loads the native
// addon): the train config resolves them, and `ikun train --help` reads that config without the addon.

/** The learning rate of a named optimiser when none is given: the paper's 0.1 for SGD, 1e-3 for Adam and AdamW. */
export function defaultLr(kind: 'sgd' | 'adam' | 'adamw'): number {
  return kind === 'sgd' ? 0.1 : 1e-3;
}
