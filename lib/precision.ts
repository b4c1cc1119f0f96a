// The precisions of CUDA convolutions and matrix products (lib/index.ts's setCudaPrecision), without the
// native addon: the CLI's flags and the run configuration check them before anything loads.

/** How CUDA convolutions and matrix products of float32 tensors run: 'tf32', 'fp32' or 'bf16'. */
export type CudaPrecision = 'tf32' | 'fp32' | 'bf16';

/** The precisions setCudaPrecision takes, the default first. */
export const CUDA_PRECISIONS: readonly CudaPrecision[] = Object.freeze(['tf32', 'fp32', 'bf16'] as const);
