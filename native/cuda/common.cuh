// Pieces every CUDA kernel file shares: launch sizes, grid-stride loops, the deterministic block sum and
// the delivery of a computed number to a DeviceResult.
#pragma once
#include <cstdint>
#include <stdexcept>

#include "device.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "stream.cuh"

namespace ikun::cuda {

constexpr int kThreads = 256;  // threads per block of the elementwise and reduction kernels
constexpr int64_t kMaxBlocks = 4096;

// Blocks for n items at one item per thread, capped (grid-stride loops take the rest).
inline dim3 blocksFor(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  return dim3(unsigned(blocks));
}

__device__ __forceinline__ int64_t globalThreadIndex() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t globalThreadCount() { return int64_t(gridDim.x) * blockDim.x; }

// The sum of `value` over the threads of the block, in a fixed tree (the same bits every run), returned
// to thread 0 (the other threads get an unspecified value). blockDim.x must be a multiple of 32 and at
// most 1024; every thread of the block must call it.
template <class T>
__device__ T blockSum(T value) {
  IKUN_SHARED_ARRAY(T, warpSums, 32);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (lane == 0) warpSums[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? warpSums[lane] : T(0);
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();  // warpSums may be reused by a following call
  return value;
}

__device__ __forceinline__ void deliver(const DeviceResult& r, double value) {
  if (r.accumulate) *r.target += value * r.scale;
  else *r.target = value * r.scale;
}

__device__ __forceinline__ int64_t minIndex(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t maxIndex(int64_t a, int64_t b) { return a > b ? a : b; }

}  // namespace ikun::cuda
