// Included first by every .cu file. Under nvcc it is the CUDA runtime; in the emulated test build
// (IKUN_CUDA_EMULATED, the same .cu sources compiled by the host compiler) it is the project's own host
// emulation of the runtime and of the device built-ins (native/cuda/emulator/emulator.h).
//
// Kernels write shared memory and launches through the spellings below so that both builds compile them:
//   IKUN_SHARED_ARRAY(float, tile, 256);          // __shared__ float tile[256]  (a float (&)[256])
//   IKUN_SHARED_ARRAY2(float, tile, 32, 33);      // __shared__ float tile[32][33]
//   float* buffer = ikun::cuda::dynamicShared<float>();   // extern __shared__ (the launch's dynamic bytes)
//   ikun::cuda::launch(kernel, grid, block, dynamicSharedBytes, stream, args...);   // launch.cuh
// Everything else is plain CUDA C++: threadIdx/blockIdx/blockDim/gridDim, __syncthreads, __syncwarp,
// full-mask warp shuffles and votes, atomics, __threadfence. Kernels avoid the bare min/max overloads of
// device code (use the helpers of common/ or fminf/fmaxf) and fast intrinsics (__expf, __fdividef).
#pragma once
#include <cstddef>

#if defined(IKUN_CUDA_EMULATED)
#include "emulator/emulator.h"
#define IKUN_SHARED_ARRAY(T, name, n) IKUN_EMU_SHARED_ARRAY(T, name, n)
#define IKUN_SHARED_ARRAY2(T, name, n, m) IKUN_EMU_SHARED_ARRAY2(T, name, n, m)
#else
#include <cuda_runtime.h>
#define IKUN_SHARED_ARRAY(T, name, n) __shared__ T name[n]
#define IKUN_SHARED_ARRAY2(T, name, n, m) __shared__ __align__(16) T name[n][m]  // 16 bytes: vector accesses of rows
#endif

namespace ikun::cuda {

// The dynamic shared memory of the running block (the bytes given at launch), 16-byte aligned.
template <class T>
__device__ __forceinline__ T* dynamicShared() {
#if defined(IKUN_CUDA_EMULATED)
  return static_cast<T*>(::ikun::emu::dynamicShared());
#else
  extern __shared__ __align__(16) unsigned char ikunDynamicShared[];
  return reinterpret_cast<T*>(ikunDynamicShared);
#endif
}

}  // namespace ikun::cuda
