// The names of the initialisations and IKUN beta modes, apart from lib/init.ts (which builds layers and so
// loads the native addon): the CLI lists them in its --help, which works without the addon.
export type InitMethod = 'ikun_v1' | 'ikun_v2' | 'xavier' | 'kaiming' | 'normal' | 'lecun';
export type BetaMode = 'code' | 'mean' | 'second-moment';

export const INIT_METHODS: readonly InitMethod[] = Object.freeze(['ikun_v1', 'ikun_v2', 'xavier', 'kaiming', 'normal', 'lecun'] as const);
export const BETA_MODES: readonly BetaMode[] = Object.freeze(['code', 'mean', 'second-moment'] as const);
