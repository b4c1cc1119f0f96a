// Marks the formulas that CPU kernels and CUDA kernels share (one copy of each): __host__ __device__
// under nvcc, plain forced-inline functions for the host compiler (the CPU kernels and the emulated
// CUDA build). Forced inlining lets a CPU kernel compiled for AVX2 inline a formula compiled in the
// baseline part of the file, and lets constant flags fold away inside the CPU's vectorised loops.
#pragma once
#if defined(__CUDACC__)
#define IKUN_HD __host__ __device__ __forceinline__
#else
#define IKUN_HD inline __attribute__((always_inline))
#endif
