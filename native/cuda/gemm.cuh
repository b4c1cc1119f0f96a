// The one GEMM of the CUDA kernels: C[m, n] = sum_k A(m, k) B(k, n) in output tiles, k staged in shared
// memory slice by slice: the exact SIMT tiles (fp32/fp64 FMAs, 64x64 tiles, a 4x4 block of outputs per
// thread) and their tensor-core twin (TF32, below). The operands are read through loaders and the result
// written through a store functor, so that one kernel serves dense matrices (linear layers, gemm()) and
// convolutions (implicit GEMM: the loaders gather patches from NCHW tensors, no im2col buffer).
//
// A loader is read along k only: `a.row(m)` gives a reader of A(m, k) over k, `b.column(n)` a reader of
// B(k, n). Each thread of both kernels loads the same row of A and the same column of B for a whole
// launch, so it asks for them once, and whatever a loader derives from m or n (a sample's base address,
// an output pixel's position) is computed once per thread rather than once per element.
//
// Each output's products are added in increasing k, so the same inputs give the same bits every run.
// Split-K (splits > 1) gives split z the k range [z * kChunk, (z + 1) * kChunk) and passes z to the
// store, which writes partial sums that a second pass adds in split order (still deterministic).
#pragma once
#include <type_traits>

#include "common.cuh"
#include "mma.cuh"
#include "precision.h"

namespace ikun::cuda {

constexpr int kGemmTileM = 64, kGemmTileN = 64, kGemmTileK = 16, kGemmThreads = 256;

// Reads p[k * stride] over k: a row or a column of a dense matrix.
template <class T>
struct StridedReader {
  const T* p;
  int64_t stride;
  __device__ __forceinline__ T operator()(int64_t k) const { return p[k * stride]; }
};

// A row-major matrix, read as op(P) (transposed when trans): element (r, c).
template <class T>
struct DenseMatrix {
  const T* p;
  int64_t ld;
  bool trans;
  __device__ __forceinline__ StridedReader<T> row(int64_t r) const { return trans ? StridedReader<T>{p + r, ld} : StridedReader<T>{p + r * ld, 1}; }
  __device__ __forceinline__ StridedReader<T> column(int64_t c) const { return trans ? StridedReader<T>{p + c * ld, 1} : StridedReader<T>{p + c, ld}; }
};

template <class T, class ALoad, class BLoad, class Store>
__global__ void __launch_bounds__(kGemmThreads) gemmTileKernel(int64_t M, int64_t N, int64_t K, int64_t kChunk,
                                                               ALoad a, BLoad b, Store store) {
  IKUN_SHARED_ARRAY2(T, tileA, kGemmTileK, kGemmTileM);
  IKUN_SHARED_ARRAY2(T, tileB, kGemmTileK, kGemmTileN);
  const int tid = int(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kGemmTileM, n0 = int64_t(blockIdx.x) * kGemmTileN;
  const int64_t kBegin = int64_t(blockIdx.z) * kChunk, kEnd = minIndex(K, kBegin + kChunk);
  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

  // Element e = tid + 256 r of a tile is (k = e / 64, m or n = e % 64): one row of A and one column of B
  // per thread for the whole launch.
  static_assert(kGemmTileM == kGemmTileN && kGemmThreads % kGemmTileM == 0, "one row and one column per thread");
  const int mn = tid % kGemmTileM, kFirst = tid / kGemmTileM, kStep = kGemmThreads / kGemmTileM;
  const bool rowInside = m0 + mn < M, columnInside = n0 + mn < N;
  const auto aRow = a.row(rowInside ? m0 + mn : 0);
  const auto bColumn = b.column(columnInside ? n0 + mn : 0);

  for (int64_t k0 = kBegin; k0 < kEnd; k0 += kGemmTileK) {
    // A tile (64 x 16) and B tile (16 x 64): four elements per thread each, zero outside the matrices.
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int kk = kFirst + kStep * r;
      const int64_t gk = k0 + kk;
      tileA[kk][mn] = rowInside && gk < kEnd ? aRow(gk) : T(0);
      tileB[kk][mn] = columnInside && gk < kEnd ? bColumn(gk) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kGemmTileK; ++k) {
      T fa[4], fb[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) fa[i] = tileA[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) fb[j] = tileB[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += fa[i] * fb[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t gm = m0 + ty + 16 * i, gn = n0 + tx + 16 * j;
      if (gm < M && gn < N) store(int(blockIdx.z), gm, gn, acc[i][j]);
    }
}

// ---- the tensor-core twin: TF32 inputs, fp32 accumulation -------------------------------------------------
// 128x128 output tiles, 16-deep k slices staged in shared memory as TF32 (rounded once, when stored), 8 warps
// of 64x32 each: per k8 step a warp issues 4 x 4 mma.m16n8k8 (mma.cuh). The next slice is loaded into
// registers while the current one is multiplied. Same loaders, stores and k order per output as above.
constexpr int kTf32TileM = 128, kTf32TileN = 128, kTf32TileK = 16, kTf32Threads = 256;
constexpr int kTf32Pad = 8;  // row stride 136 floats: the lanes of a fragment load hit 32 different banks

template <class ALoad, class BLoad, class Store>
__global__ void __launch_bounds__(kTf32Threads) gemmTf32Kernel(int64_t M, int64_t N, int64_t K, int64_t kChunk, ALoad a,
                                                               BLoad b, Store store) {
  IKUN_SHARED_ARRAY2(uint32_t, tileA, kTf32TileK, kTf32TileM + kTf32Pad);  // [k][m], TF32 bits
  IKUN_SHARED_ARRAY2(uint32_t, tileB, kTf32TileK, kTf32TileN + kTf32Pad);  // [k][n]
  const int tid = int(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int warpM = (warp / 4) * 64, warpN = (warp % 4) * 32;  // 2 x 4 warps
  const int g = lane / 4, t = lane % 4;
  const int64_t m0 = int64_t(blockIdx.y) * kTf32TileM, n0 = int64_t(blockIdx.x) * kTf32TileN;
  const int64_t kBegin = int64_t(blockIdx.z) * kChunk, kEnd = minIndex(K, kBegin + kChunk);

  float acc[4][4][4];  // [m16 tile][n8 tile][fragment register]
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

  // Each thread loads 8 elements of each tile: element e = tid + 256 r is (k = e / 128, m or n = e % 128),
  // so one row of A and one column of B per thread for the whole launch.
  static_assert(kTf32TileM == kTf32TileN && kTf32Threads % kTf32TileM == 0, "one row and one column per thread");
  const int mn = tid % kTf32TileM, kFirst = tid / kTf32TileM, kStep = kTf32Threads / kTf32TileM;
  const bool rowInside = m0 + mn < M, columnInside = n0 + mn < N;
  const auto aRow = a.row(rowInside ? m0 + mn : 0);
  const auto bColumn = b.column(columnInside ? n0 + mn : 0);
  float nextA[8], nextB[8];
  auto loadSlice = [&](int64_t k0) {
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      const int64_t gk = k0 + kFirst + kStep * r;
      nextA[r] = rowInside && gk < kEnd ? float(aRow(gk)) : 0.0f;
      nextB[r] = columnInside && gk < kEnd ? float(bColumn(gk)) : 0.0f;
    }
  };
  auto storeSlice = [&]() {
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      const int kk = kFirst + kStep * r;
      tileA[kk][mn] = toTf32(nextA[r]);
      tileB[kk][mn] = toTf32(nextB[r]);
    }
  };

  if (kBegin < kEnd) loadSlice(kBegin);
  for (int64_t k0 = kBegin; k0 < kEnd; k0 += kTf32TileK) {
    storeSlice();
    __syncthreads();
    if (k0 + kTf32TileK < kEnd) loadSlice(k0 + kTf32TileK);  // global loads in flight during the mma below
#pragma unroll
    for (int ks = 0; ks < kTf32TileK; ks += 8) {
      uint32_t fa[4][4], fb[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = warpM + 16 * i + g;
        fa[i][0] = tileA[ks + t][row];
        fa[i][1] = tileA[ks + t][row + 8];
        fa[i][2] = tileA[ks + t + 4][row];
        fa[i][3] = tileA[ks + t + 4][row + 8];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int col = warpN + 8 * j + g;
        fb[j][0] = tileB[ks + t][col];
        fb[j][1] = tileB[ks + t + 4][col];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mmaTf32(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t gm = m0 + warpM + 16 * i + g + (r >= 2 ? 8 : 0), gn = n0 + warpN + 8 * j + 2 * t + (r & 1);
        if (gm < M && gn < N) store(int(blockIdx.z), gm, gn, acc[i][j][r]);
      }
}

// Launches the tile kernel over an M x N output with `splits` k-splits (1: no split): on tensor cores for
// float under the TF32 precision (the default on CUDA), the exact SIMT tiles otherwise.
template <class T, class ALoad, class BLoad, class Store>
void gemmTiles(int64_t M, int64_t N, int64_t K, int splits, ALoad a, BLoad b, Store store) {
  if (M <= 0 || N <= 0) return;
  if (splits < 1) splits = 1;
  const int64_t kChunk = K > 0 ? (K + splits - 1) / splits : 0;
  // if constexpr: the tensor-core kernel is compiled for float only (double always takes the exact tiles)
  if constexpr (std::is_same_v<T, float>) {
    if (cudaPrecision() == CudaPrecision::Tf32) {
      const int64_t tilesN = (N + kTf32TileN - 1) / kTf32TileN, tilesM = (M + kTf32TileM - 1) / kTf32TileM;
      if (tilesN > 0x7fffffff || tilesM > 65535) throw std::invalid_argument("gemm: matrix too large for the CUDA tiles");
      launch(gemmTf32Kernel<ALoad, BLoad, Store>, dim3(unsigned(tilesN), unsigned(tilesM), unsigned(splits)), dim3(kTf32Threads), 0,
             currentStream(), M, N, K, kChunk, a, b, store);
      return;
    }
  }
  const int64_t tilesN = (N + kGemmTileN - 1) / kGemmTileN, tilesM = (M + kGemmTileM - 1) / kGemmTileM;
  if (tilesN > 0x7fffffff || tilesM > 65535) throw std::invalid_argument("gemm: matrix too large for the CUDA tiles");
  launch(gemmTileKernel<T, ALoad, BLoad, Store>, dim3(unsigned(tilesN), unsigned(tilesM), unsigned(splits)),
         dim3(kGemmThreads), 0, currentStream(), M, N, K, kChunk, a, b, store);
}

// C = alpha * value + beta * C (C not read when beta is 0, as BLAS).
template <class T>
struct MatrixStore {
  T* c;
  int64_t ldc;
  T alpha, beta;
  __device__ __forceinline__ void operator()(int, int64_t m, int64_t n, T value) const {
    T* out = c + m * ldc + n;
    *out = beta == T(0) ? alpha * value : alpha * value + beta * *out;
  }
};

// Split-K partial sums: partials[z][m][n].
template <class T>
struct PartialStore {
  T* partials;
  int64_t M, N;
  __device__ __forceinline__ void operator()(int z, int64_t m, int64_t n, T value) const {
    partials[(int64_t(z) * M + m) * N + n] = value;
  }
};

// Adds the split partials of an M x N result in split order and hands each total to `store` (split 0).
template <class T, class Store>
__global__ void sumSplitsKernel(int64_t M, int64_t N, int splits, const T* partials, Store store) {
  const int64_t count = M * N;
  for (int64_t i = globalThreadIndex(); i < count; i += globalThreadCount()) {
    T total = partials[i];
    for (int z = 1; z < splits; ++z) total += partials[int64_t(z) * count + i];
    store(0, i / N, i % N, total);
  }
}

// The k-splits of an M x N x K GEMM: enough blocks for about four per SM on a large GPU (a 128x128 TF32
// tile per block, or a 64x64 exact one), each split at least 256 deep. Shapes and precision only, not the
// device, so a result has the same bits on every GPU. Weight gradients (k over every sample and pixel)
// and the linear layers' forward (a few hundred rows by a few thousand columns) are the GEMMs that split.
template <class T>
int gemmSplits(int64_t M, int64_t N, int64_t K) {
  const bool tensorCores = std::is_same_v<T, float> && cudaPrecision() == CudaPrecision::Tf32;
  const int64_t tileM = tensorCores ? kTf32TileM : kGemmTileM, tileN = tensorCores ? kTf32TileN : kGemmTileN;
  const int64_t tiles = ((M + tileM - 1) / tileM) * ((N + tileN - 1) / tileN);
  int64_t splits = 1;
  while (splits < 64 && tiles * splits < 512 && K / (splits * 2) >= 256) splits *= 2;
  return int(splits);
}

// Every GEMM of the kernels runs here: the tiles over the output, split along k where gemmSplits says so
// (partial sums in scratch, added in split order, then handed to `store` once per element).
template <class T, class ALoad, class BLoad, class Store>
void gemmLaunch(int64_t M, int64_t N, int64_t K, ALoad a, BLoad b, Store store) {
  if (M <= 0 || N <= 0) return;
  const int splits = gemmSplits<T>(M, N, K);
  if (splits == 1) return gemmTiles<T>(M, N, K, 1, a, b, store);
  Scratch<T> partials(size_t(splits * M * N));
  gemmTiles<T>(M, N, K, splits, a, b, PartialStore<T>{partials.get(), M, N});
  launch(sumSplitsKernel<T, Store>, blocksFor(M * N), dim3(kThreads), 0, currentStream(), M, N, splits, partials.get(), store);
}

}  // namespace ikun::cuda
