// Marks functions usable from both host (CPU kernels) and device (CUDA kernels).
#pragma once
#if defined(__CUDACC__)
#define IKUN_HD __host__ __device__ __forceinline__
#else
#define IKUN_HD inline
#endif
