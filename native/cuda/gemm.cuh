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
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.cuh"
#include "mma.cuh"
#include "precision.h"

namespace ikun::cuda {

constexpr int kGemmTileM = 64, kGemmTileN = 64, kGemmTileK = 16, kGemmThreads = 256;

// Reads p[k * stride] over k: a column of a row-major matrix (a row of a transposed one).
template <class T>
struct StridedReader {
  const T* p;
  int64_t stride;
  __device__ __forceinline__ T operator()(int64_t k) const { return p[k * stride]; }
};

// Reads p[k] over k: a row of a row-major matrix. Contiguous at compile time, so the loads of one slice
// share one address and immediate offsets (a runtime stride of 1 costs a 64-bit product and registers
// per load, enough to push the 64x64-warp tensor-core kernel past 255 registers).
template <class T>
struct ContiguousReader {
  const T* p;
  __device__ __forceinline__ T operator()(int64_t k) const { return p[k]; }
};

// Whether a loader's rows (A) or columns (B) run contiguously along k in memory, with a reader cheap
// enough to ask for each element (static constexpr bool kRowAlongK / kColumnAlongK; false when absent):
// the tensor-core kernel then stages that operand along k, which coalesces its loads.
template <class L, class = void>
struct RowAlongK : std::false_type {};
template <class L>
struct RowAlongK<L, std::void_t<decltype(L::kRowAlongK)>> : std::bool_constant<L::kRowAlongK> {};
template <class L, class = void>
struct ColumnAlongK : std::false_type {};
template <class L>
struct ColumnAlongK<L, std::void_t<decltype(L::kColumnAlongK)>> : std::bool_constant<L::kColumnAlongK> {};

// Whether a B loader staged across k splits k the same way for every column (the convolutions' patches: k
// is a channel and a kernel tap). It then declares `static constexpr bool kColumnTaps = true`, a small
// trivially copyable `Tap` (what an element's read needs of k), `Tap tap(int k) const`, and its column
// readers `T at(const Tap&) const`. The tensor-core kernel splits each k of a slice once per block into a shared
// table instead of once per element in every thread (each split is a few instructions, and the warps
// issuing the loaders' arithmetic, not the tensor cores, bound those kernels).
//
// Such a loader also offers a cheaper bounds test where its kernels are small (taps ≤ 32): `bool
// tapMasks() const` (host and device) says whether this launch may use it, and then `MaskedTap
// maskedTap(int k) const` and `T at(const MaskedTap&) const` replace the pair above. A masked tap and
// its column each hold one side of the test as a 32-bit set of kernel taps (one tap's bit, or the taps
// that fall inside), so an element's bounds test is one AND instead of two adds and two compares.
template <class L, class = void>
struct ColumnTaps : std::false_type {};
template <class L>
struct ColumnTaps<L, std::void_t<decltype(L::kColumnTaps)>> : std::bool_constant<L::kColumnTaps> {};
template <class L, bool Masked, bool = ColumnTaps<L>::value>
struct TapOf {
  using type = int;  // unused
};
template <class L, bool Masked>
struct TapOf<L, Masked, true> {
  using type = std::conditional_t<Masked, typename L::MaskedTap, typename L::Tap>;
};

// A row-major matrix, read as op(P) (transposed when Trans): element (r, c). The transposition is a
// template parameter so that each reader knows whether it walks memory contiguously.
template <class T, bool Trans>
struct DenseMatrix {
  static constexpr bool kRowAlongK = !Trans, kColumnAlongK = Trans;  // the contiguous reader (gemmTensorCoreKernel)
  static constexpr bool kRowSegments = !Trans, kColumnSegments = Trans;  // ... as pointers (16-byte loads)
  static constexpr bool kLineSegments = true;  // staged across k, lines are contiguous at each k
  const T* p;
  int64_t ld;
  // element k of the contiguous row (column when Trans) r, and whether every such line starts on 16 bytes
  __device__ __forceinline__ const T* segment(int r, int k) const { return p + r * ld + k; }
  // line `line` at k of the operand staged across k: a transposed A's (m, k) or a row-major B's (k, n)
  __device__ __forceinline__ const T* lineSegment(int line, int k) const { return p + k * ld + line; }
  __device__ __forceinline__ bool segmentsAligned() const { return ((reinterpret_cast<uintptr_t>(p) | uintptr_t(ld * int64_t(sizeof(T)))) & 15) == 0; }
  __device__ __forceinline__ auto row(int64_t r) const {
    if constexpr (Trans) return StridedReader<T>{p + r, ld};
    else return ContiguousReader<T>{p + r * ld};
  }
  __device__ __forceinline__ auto column(int64_t c) const {
    if constexpr (Trans) return ContiguousReader<T>{p + c * ld};
    else return StridedReader<T>{p + c, ld};
  }
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

// Loaders whose along-k rows (A: kRowSegments) or columns (B: kColumnSegments) are float memory in runs of
// 4 from every k that is a multiple of 4: `segment(line, k)` the address of element (line, k), and
// `segmentsAligned()` whether those runs are contiguous and start on 16 bytes (a row-major matrix whose rows
// start on 16 bytes, dy's planes of a multiple of 4 pixels). The tensor-core kernel then stages them with 16-byte
// loads: a quarter of the load instructions and of their address and bounds arithmetic.
template <class L, class = void>
struct RowSegments : std::false_type {};
template <class L>
struct RowSegments<L, std::void_t<decltype(L::kRowSegments)>> : std::bool_constant<L::kRowSegments> {};
template <class L, class = void>
struct ColumnSegments : std::false_type {};
template <class L>
struct ColumnSegments<L, std::void_t<decltype(L::kColumnSegments)>> : std::bool_constant<L::kColumnSegments> {};
// The other way round, for an operand staged across k (kLineSegments): 4 consecutive lines at one k are
// float memory one after the other from every line that is a multiple of 4, `lineSegment(line, k)` the
// address of element (line, k), under the same `segmentsAligned()` (a column of a row-major B, a row of a
// transposed A). Each thread then stages 4 lines of one k with one 16-byte load and one 16-byte shared store.
template <class L, class = void>
struct LineSegments : std::false_type {};
template <class L>
struct LineSegments<L, std::void_t<decltype(L::kLineSegments)>> : std::bool_constant<L::kLineSegments> {};

// Four words to a 16-byte aligned shared address in one store (st.shared.v4 on the GPU).
__device__ __forceinline__ void storeShared4(uint32_t* p, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint4*>(p) = make_uint4(a, b, c, d);
#else
  p[0] = a, p[1] = b, p[2] = c, p[3] = d;  // the emulated build: no access through another type
#endif
}

// Four floats from a 16-byte aligned address in one load (ld.global.v4 on the GPU).
struct alignas(16) Float4 {
  float v[4];
};
__device__ __forceinline__ Float4 loadFloat4(const float* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Float4*>(p);
#else
  Float4 f;  // the emulated build: no access through another type
  std::memcpy(f.v, p, sizeof f.v);
  return f;
#endif
}

// ---- the tensor-core twins: TF32 or bf16 inputs, fp32 accumulation ---------------------------------------
// 128x128 output tiles, 16-deep k slices staged in shared memory as TF32 (rounded once, when stored; bf16
// pairs with Bf16, below), 4 warps of 64x64 each: per k8 step a warp issues 4 x 8 mma.m16n8k8 (mma.cuh) from 16 + 16 fragment values,
// a third less shared-memory traffic per mma than 64x32 warps (shared-memory bandwidth, not the tensor
// cores, bounds a kernel that stages both operands there). Two blocks fit on an SM (at most 255 registers
// per thread for 128 threads). The shared tiles are double-buffered: slice s + 1 is loaded into registers
// while slice s is multiplied and stored into the other buffer, so one barrier per slice suffices.
// Same loaders and stores as the exact tiles above; the tensor cores' own order of the sums within a k8 (k16)
// step is theirs, but fixed, so a result has the same bits every run.
//
// With Bf16 (the 'bf16' precision) the same kernel stages each slice as bf16 pairs, two consecutive k in one
// word (a thread packs the pair it holds, or swaps half with the lane holding the other k), and a warp issues
// 4 x 8 mma.m16n8k16 per slice, half of them in each k8 step's turn (A's fragments loaded in the first and
// kept): half the mma instructions, the shared-memory words staged and the fragment loads of TF32 for the
// same products.
constexpr int kTf32TileM = 128, kTf32TileN = 128, kTf32TileK = 16, kTf32Threads = 128, kTf32BlocksPerSm = 2;
constexpr int kTf32WarpM = 64, kTf32WarpN = 64;
constexpr int kTf32Pad = 8;  // row stride 136 words: the lanes of a fragment load hit 32 different banks

// MaskedTaps: B's taps are its masked ones (ColumnTaps above). Bf16: bf16 inputs (above), else TF32.
template <class ALoad, class BLoad, class Store, bool MaskedTaps, bool Bf16>
__global__ void __launch_bounds__(kTf32Threads, kTf32BlocksPerSm)
    gemmTensorCoreKernel(int64_t M, int64_t N, int64_t K, int64_t kChunk, ALoad a, BLoad b, Store store) {
  // [buffer * 16 + k][m or n], TF32 bits: two buffers of one k slice each; with Bf16 [buffer * 8 + k / 2][m or n],
  // the bf16 pair of k and k + 1 (k even), k in the low half
  constexpr int sliceRows = Bf16 ? kTf32TileK / 2 : kTf32TileK;
  IKUN_SHARED_ARRAY2(uint32_t, tileA, 2 * sliceRows, kTf32TileM + kTf32Pad);
  IKUN_SHARED_ARRAY2(uint32_t, tileB, 2 * sliceRows, kTf32TileN + kTf32Pad);
  constexpr int tilesM16 = kTf32WarpM / 16, tilesN8 = kTf32WarpN / 8;
  static_assert((kTf32TileM / kTf32WarpM) * (kTf32TileN / kTf32WarpN) * 32 == kTf32Threads, "one warp per warp tile");
  const int tid = int(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int warpM = (warp / (kTf32TileN / kTf32WarpN)) * kTf32WarpM, warpN = (warp % (kTf32TileN / kTf32WarpN)) * kTf32WarpN;
  const int g = lane / 4, t = lane % 4;
  // 32-bit indices (gemmTiles checks that M, N and K fit): a 64-bit add or compare is two instructions,
  // and every element staged pays for its k and its row or column.
  const int m0 = int(blockIdx.y) * kTf32TileM, n0 = int(blockIdx.x) * kTf32TileN, rows = int(M), columns = int(N);
  const int64_t splitBegin = int64_t(blockIdx.z) * kChunk;  // past K for an empty trailing split
  const int kBegin = int(minIndex(K, splitBegin)), kEnd = int(minIndex(K, splitBegin + kChunk));

  float acc[tilesM16][tilesN8][4];  // [m16 tile][n8 tile][fragment register]
#pragma unroll
  for (int i = 0; i < tilesM16; ++i)
#pragma unroll
    for (int j = 0; j < tilesN8; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

  // Two ways to stage an operand's share of a k8 step (8 values per thread):
  //  - across k (the default): thread tid holds row (column) tid of the tile for the whole launch and reads
  //    its 8 k; the lanes of a warp read 32 rows at one k, which coalesces when consecutive rows are
  //    adjacent in memory (a patch column of the forward, a column of a row-major B);
  //  - along k (loaders that say their rows run contiguously along k: a row-major A, the weights, dy's
  //    planes): thread tid reads k = tid % 8 of rows tid / 8 + 16 r, so a warp reads 8 consecutive k of
  //    4 rows, 4 sectors where reading across would touch 32 lines. The row's reader is asked for each
  //    element, which those loaders make cheap (a pointer).
  static_assert(kTf32TileM == kTf32TileN && kTf32Threads == kTf32TileM, "one row and one column per thread");
  constexpr int steps = kTf32TileK / 8, perStep = 8, rowsPerPass = kTf32Threads / 8;
  static_assert(rowsPerPass * perStep == kTf32TileM, "the along-k staging covers the tile's rows");
  constexpr bool aAlongK = RowAlongK<ALoad>::value, bAlongK = ColumnAlongK<BLoad>::value;
  // B's taps (ColumnTaps) of three slices: the one being loaded, the next, and the one after, which
  // threads 0..15 fill while the block multiplies (read one barrier after they were written).
  constexpr bool bTaps = ColumnTaps<BLoad>::value && !bAlongK;
  static_assert(!MaskedTaps || bTaps, "masked taps are B's taps");
  using BTap = typename TapOf<BLoad, MaskedTaps>::type;
  IKUN_SHARED_ARRAY2(BTap, tapTable, bTaps ? 3 : 1, kTf32TileK);
  auto fillTaps = [&](int k0, int slot) {  // past kEnd too: a tap only splits k
    if constexpr (bTaps)
      if (tid < kTf32TileK) {
        if constexpr (MaskedTaps) tapTable[slot][tid] = b.maskedTap(k0 + tid);
        else tapTable[slot][tid] = b.tap(k0 + tid);
      }
  };
  int tapSlot = 0;  // the slot of the slice loadShare reads
  // 16-byte staging of float runs (RowSegments / ColumnSegments), when they are aligned (uniform over the
  // launch): per k8 step, thread tid loads k = 4 (tid % 2) .. + 3 of lines tid / 2 and tid / 2 + 64.
  constexpr bool aVectorable = aAlongK && RowSegments<ALoad>::value, bVectorable = bAlongK && ColumnSegments<BLoad>::value;
  // ... and across k (LineSegments): per k8 step, thread tid loads lines 4 (tid % 32) .. + 3 at k = tid / 32
  // and tid / 32 + 4 (bf16: the pair 2 (tid / 32) and 2 (tid / 32) + 1), a warp 512 contiguous bytes per load.
  constexpr bool aLinesVectorable = !aAlongK && LineSegments<ALoad>::value;
  constexpr bool bLinesVectorable = !bAlongK && !bTaps && LineSegments<BLoad>::value;
  bool aVector = false, bVector = false;
  if constexpr (aVectorable || aLinesVectorable) aVector = a.segmentsAligned();
  if constexpr (bVectorable || bLinesVectorable) bVector = b.segmentsAligned();
#if defined(IKUN_TF32_HOT_PATH_ONLY)  // scripts/tf32-loop-stats.cjs: aligned lines, the scalar staging left out
  aVector = aVectorable || aLinesVectorable, bVector = bVectorable || bLinesVectorable;
#endif
  const int vectorHalf = tid % 2, vectorLine = tid / 2;
  const int lineQuad = 4 * (tid % 32), lineK = tid / 32;
  const int mn = tid, kAlong = tid % 8, firstAlong = tid / 8;
  const bool rowInside = m0 + mn < rows, columnInside = n0 + mn < columns;
  const auto aRow = a.row(rowInside ? m0 + mn : 0);  // used when staging across k only
  const auto bColumn = b.column(columnInside ? n0 + mn : 0);
  // The next slice is staged in registers one k8 step's share at a time (loaded before a step's mma, stored
  // into the free buffer after them): half the staging registers of a whole slice, which keeps the dense
  // loaders under 255 registers on sm_80.
  float nextA[perStep], nextB[perStep];
  // A line's 4 values at k .. k + 3 (zeros past kEnd or past the last line) into out[0..3].
  auto loadLine4 = [&](const auto& loader, int line, int lines, int k, bool whole, float* out) {
    if (line < lines && (whole || k + 3 < kEnd)) {
      const Float4 f = loadFloat4(loader.segment(line, k));
#pragma unroll
      for (int e = 0; e < 4; ++e) out[e] = f.v[e];
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) out[e] = line < lines && k + e < kEnd ? float(*loader.segment(line, k + e)) : 0.0f;
    }
  };
  // 4 lines from line (a multiple of 4) at k into out[0..3] (zeros past kEnd or past the last line).
  auto loadLines4 = [&](const auto& loader, int line, int lines, int k, bool whole, float* out) {
    if ((whole || k < kEnd) && line + 3 < lines) {
      const Float4 f = loadFloat4(loader.lineSegment(line, k));
#pragma unroll
      for (int e = 0; e < 4; ++e) out[e] = f.v[e];
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) out[e] = (whole || k < kEnd) && line + e < lines ? float(*loader.lineSegment(line + e, k)) : 0.0f;
    }
  };
  // inSlice: std::true_type when the whole slice lies below kEnd (every slice of a split but maybe its last),
  // which drops the per-element k test, a few instructions of each element's load.
  auto loadShare = [&](int k0, int step, auto inSlice) {
    constexpr bool whole = decltype(inSlice)::value;
    [[maybe_unused]] const BTap* taps = tapTable[bTaps ? tapSlot : 0] + 8 * step;
    [[maybe_unused]] const int vectorK = k0 + 8 * step + 4 * vectorHalf;
    if constexpr (aVectorable)
      if (aVector) {
        loadLine4(a, m0 + vectorLine, rows, vectorK, whole, nextA);
        loadLine4(a, m0 + vectorLine + 64, rows, vectorK, whole, nextA + 4);
      }
    if constexpr (bVectorable)
      if (bVector) {
        loadLine4(b, n0 + vectorLine, columns, vectorK, whole, nextB);
        loadLine4(b, n0 + vectorLine + 64, columns, vectorK, whole, nextB + 4);
      }
    [[maybe_unused]] const int linesK = k0 + 8 * step + (Bf16 ? 2 * lineK : lineK), linesK2 = linesK + (Bf16 ? 1 : 4);
    if constexpr (aLinesVectorable)
      if (aVector) {
        loadLines4(a, m0 + lineQuad, rows, linesK, whole, nextA);
        loadLines4(a, m0 + lineQuad, rows, linesK2, whole, nextA + 4);
      }
    if constexpr (bLinesVectorable)
      if (bVector) {
        loadLines4(b, n0 + lineQuad, columns, linesK, whole, nextB);
        loadLines4(b, n0 + lineQuad, columns, linesK2, whole, nextB + 4);
      }
#pragma unroll
    for (int r = 0; r < perStep; ++r) {
      if constexpr (aVectorable || aLinesVectorable)
        if (aVector) continue;
      if constexpr (aAlongK) {
        const int gm = m0 + firstAlong + rowsPerPass * r, gk = k0 + 8 * step + kAlong;
        nextA[r] = gm < rows && (whole || gk < kEnd) ? float(a.row(gm)(gk)) : 0.0f;
      } else {
        const int gk = k0 + 8 * step + r;
        nextA[r] = rowInside && (whole || gk < kEnd) ? float(aRow(gk)) : 0.0f;
      }
    }
#pragma unroll
    for (int r = 0; r < perStep; ++r) {
      if constexpr (bVectorable || bLinesVectorable)
        if (bVector) continue;
      if constexpr (bAlongK) {
        const int gn = n0 + firstAlong + rowsPerPass * r, gk = k0 + 8 * step + kAlong;
        nextB[r] = gn < columns && (whole || gk < kEnd) ? float(b.column(gn)(gk)) : 0.0f;
      } else {
        const int gk = k0 + 8 * step + r;
        if constexpr (bTaps) nextB[r] = columnInside && (whole || gk < kEnd) ? float(bColumn.at(taps[r])) : 0.0f;
        else nextB[r] = columnInside && (whole || gk < kEnd) ? float(bColumn(gk)) : 0.0f;
      }
    }
  };
  auto storeShare = [&](int buffer, int step) {
    const int kBase = buffer * kTf32TileK + 8 * step;
    if constexpr (aLinesVectorable)
      if (aVector) {
#pragma unroll
        for (int h = 0; h < 2; ++h)
          storeShared4(&tileA[kBase + lineK + 4 * h][lineQuad], toTf32(nextA[4 * h]), toTf32(nextA[4 * h + 1]), toTf32(nextA[4 * h + 2]),
                       toTf32(nextA[4 * h + 3]));
      }
    if constexpr (bLinesVectorable)
      if (bVector) {
#pragma unroll
        for (int h = 0; h < 2; ++h)
          storeShared4(&tileB[kBase + lineK + 4 * h][lineQuad], toTf32(nextB[4 * h]), toTf32(nextB[4 * h + 1]), toTf32(nextB[4 * h + 2]),
                       toTf32(nextB[4 * h + 3]));
      }
#pragma unroll
    for (int r = 0; r < perStep; ++r) {
      if (aVectorable && aVector) tileA[kBase + 4 * vectorHalf + r % 4][vectorLine + 64 * (r / 4)] = toTf32(nextA[r]);
      else if constexpr (aAlongK) tileA[kBase + kAlong][firstAlong + rowsPerPass * r] = toTf32(nextA[r]);
      else if (!aLinesVectorable || !aVector) tileA[kBase + r][mn] = toTf32(nextA[r]);
      if (bVectorable && bVector) tileB[kBase + 4 * vectorHalf + r % 4][vectorLine + 64 * (r / 4)] = toTf32(nextB[r]);
      else if constexpr (bAlongK) tileB[kBase + kAlong][firstAlong + rowsPerPass * r] = toTf32(nextB[r]);
      else if (!bLinesVectorable || !bVector) tileB[kBase + r][mn] = toTf32(nextB[r]);
    }
  };
  // The bf16 pairs of a step's share: the step's 8 k are pair rows pairBase .. + 3. Each staging variant holds
  // its values differently (see loadShare), so each packs its pairs its own way.
  auto storeShareBf16 = [&](int buffer, int step) {
    const int pairBase = buffer * sliceRows + 4 * step;
    auto storeOperand = [&](auto& tile, const float* next, bool vector, auto alongK, auto vectorable, auto linesVectorable) {
      if (decltype(linesVectorable)::value && vector) {  // lines 4q .. 4q + 3 at k = 2 lineK (0..3), then at + 1
        storeShared4(&tile[pairBase + lineK][lineQuad], packBf16x2(next[0], next[4]), packBf16x2(next[1], next[5]),
                     packBf16x2(next[2], next[6]), packBf16x2(next[3], next[7]));
      } else if (decltype(vectorable)::value && vector) {  // k = 4 vectorHalf .. + 3 of lines vectorLine and + 64
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int p = 0; p < 2; ++p)
            tile[pairBase + 2 * vectorHalf + p][vectorLine + 64 * h] = packBf16x2(next[4 * h + 2 * p], next[4 * h + 2 * p + 1]);
      } else if constexpr (decltype(alongK)::value) {
        // k = kAlong of rows firstAlong + 16 r: the lane with k ^ 1 (lane ^ 1) holds the other half of each
        // pair. The even lane stores the pairs of rows 2q, the odd lane those of rows 2q + 1, each sending the
        // value the other one needs: 4 shuffles per step (selects, not a register index that varies by lane)
        const bool odd = (kAlong & 1) != 0;
#pragma unroll
        for (int q = 0; q < perStep / 2; ++q) {
          const float mine = odd ? next[2 * q + 1] : next[2 * q], theirs = odd ? next[2 * q] : next[2 * q + 1];
          const float other = __shfl_xor_sync(0xffffffffu, theirs, 1);
          tile[pairBase + kAlong / 2][firstAlong + rowsPerPass * (2 * q + int(odd))] = odd ? packBf16x2(other, mine) : packBf16x2(mine, other);
        }
      } else {  // k = 0 .. 7 of row (column) mn
#pragma unroll
        for (int p = 0; p < perStep / 2; ++p) tile[pairBase + p][mn] = packBf16x2(next[2 * p], next[2 * p + 1]);
      }
    };
    storeOperand(tileA, nextA, aVector, std::bool_constant<aAlongK>{}, std::bool_constant<aVectorable>{},
                 std::bool_constant<aLinesVectorable>{});
    storeOperand(tileB, nextB, bVector, std::bool_constant<bAlongK>{}, std::bool_constant<bVectorable>{},
                 std::bool_constant<bLinesVectorable>{});
  };
  // Bf16: n8 tiles 4 step .. 4 step + 3 over the whole slice (k pairs t and t + 4 of each k16 half: the
  // fragment layout of m16n8k16), so that each k8 step's turn still has mma to cover its loads; A's fragments
  // of the slice are loaded in step 0's turn and kept for step 1's (16 registers, under 255 on every target).
  // A's fragments of the warp's m16 tiles from tile row k (TF32: k and k + 4; bf16: the pairs at k and k + 4),
  // rows g and g + 8: the same addressing for both layouts
  auto loadFragmentsA = [&](int k, uint32_t (&fa)[tilesM16][4]) {
#pragma unroll
    for (int i = 0; i < tilesM16; ++i) {
      const int row = warpM + 16 * i + g;
      fa[i][0] = tileA[k][row];
      fa[i][1] = tileA[k][row + 8];
      fa[i][2] = tileA[k + 4][row];
      fa[i][3] = tileA[k + 4][row + 8];
    }
  };
  uint32_t sliceFragmentsA[tilesM16][4];  // bf16: A's fragments of the slice, loaded in step 0's turn, used in both
  auto multiplyStepBf16 = [&](int buffer, int step) {
    const int kp = buffer * sliceRows + t;
    if (step == 0) loadFragmentsA(kp, sliceFragmentsA);
    static_assert(tilesN8 % steps == 0, "each step's turn multiplies as many n8 tiles");
#pragma unroll
    for (int jj = 0; jj < tilesN8 / steps; ++jj) {
      const int j = step * (tilesN8 / steps) + jj;
      const int col = warpN + 8 * j + g;
      const uint32_t fb[2] = {tileB[kp][col], tileB[kp + 4][col]};
#pragma unroll
      for (int i = 0; i < tilesM16; ++i) mmaBf16(acc[i][j], sliceFragmentsA[i], fb, acc[i][j]);
    }
  };
  auto multiplyStep = [&](int buffer, int step) {
    const int k = buffer * kTf32TileK + 8 * step + t;
    uint32_t fa[tilesM16][4];
    loadFragmentsA(k, fa);
    // B's fragments one n8 tile at a time: two registers live instead of sixteen
#pragma unroll
    for (int j = 0; j < tilesN8; ++j) {
      const int col = warpN + 8 * j + g;
      const uint32_t fb[2] = {tileB[k][col], tileB[k + 4][col]};
#pragma unroll
      for (int i = 0; i < tilesM16; ++i) mmaTf32(acc[i][j], fa[i], fb, acc[i][j]);
    }
  };

  // Buffer b is written in the iteration after the one that last read it, and that iteration ended at a
  // barrier every warp passed: one __syncthreads per slice keeps writers and readers apart.
  if constexpr (bTaps) {
    fillTaps(kBegin, 0);
    fillTaps(kBegin + kTf32TileK, 1);
    __syncthreads();  // once per launch: the first two slices' taps
  }
  auto stageShare = [&](int buffer, int step) {
    if constexpr (Bf16) storeShareBf16(buffer, step);
    else storeShare(buffer, step);
  };
  auto multiplyShare = [&](int buffer, int step) {
    if constexpr (Bf16) multiplyStepBf16(buffer, step);
    else multiplyStep(buffer, step);
  };
  if (kBegin < kEnd) {
#pragma unroll
    for (int step = 0; step < steps; ++step) {
      loadShare(kBegin, step, std::false_type{});
      stageShare(0, step);
    }
  }
  __syncthreads();
  int buffer = 0;
  for (int k0 = kBegin; k0 < kEnd; k0 += kTf32TileK) {
    const bool more = k0 + kTf32TileK < kEnd, nextWhole = k0 + 2 * kTf32TileK <= kEnd;
    if constexpr (bTaps) {
      // slot s % 3 is slice s's: this iteration (slice s) loads slice s + 1 and fills slice s + 2's slot,
      // which slice s - 1 used, loaded in iteration s - 2, a barrier ago
      tapSlot = tapSlot == 2 ? 0 : tapSlot + 1;
      fillTaps(k0 + 2 * kTf32TileK, tapSlot == 2 ? 0 : tapSlot + 1);
    }
#pragma unroll
    for (int step = 0; step < steps; ++step) {
      // global loads in flight during this step's mma
      if (nextWhole) loadShare(k0 + kTf32TileK, step, std::true_type{});
#if !defined(IKUN_TF32_HOT_PATH_ONLY)  // defined only by scripts/tf32-loop-stats.cjs, to count the hot path alone
      else if (more) loadShare(k0 + kTf32TileK, step, std::false_type{});
#endif
      multiplyShare(buffer, step);
      if (more) stageShare(buffer ^ 1, step);
    }
    __syncthreads();
    buffer ^= 1;
  }
  // Row by row (a lane's fragment rows g and g + 8 of each m16 tile), the row's bounds checked once.
#pragma unroll
  for (int i = 0; i < tilesM16; ++i)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int gm = m0 + warpM + 16 * i + g + 8 * half;
      if (gm >= rows) continue;
#pragma unroll
      for (int j = 0; j < tilesN8; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int gn = n0 + warpN + 8 * j + 2 * t + c;
          if (gn < columns) store(int(blockIdx.z), gm, gn, acc[i][j][2 * half + c]);
        }
    }
}

// Launches the tile kernel over an M x N output with `splits` k-splits (1: no split): on tensor cores for
// float under the TF32 (the default on CUDA) and bf16 precisions, the exact SIMT tiles otherwise.
template <class T, class ALoad, class BLoad, class Store>
void gemmTiles(int64_t M, int64_t N, int64_t K, int splits, ALoad a, BLoad b, Store store) {
  if (M <= 0 || N <= 0) return;
  if (splits < 1) splits = 1;
  // Split boundaries on whole 16-deep slices: every slice of a split starts 64 bytes into a contiguous row,
  // so the along-k loads of a warp touch whole sectors (a trailing split may then be empty: zero partials).
  static_assert(kGemmTileK == 16 && kTf32TileK == 16, "splits on whole slices of both kernels");
  const int64_t kChunk = K > 0 ? ((K + splits - 1) / splits + 15) / 16 * 16 : 0;
  // if constexpr: the tensor-core kernels are compiled for float only (double always takes the exact tiles)
  if constexpr (std::is_same_v<T, float>) {
    const CudaPrecision precision = cudaPrecision();
    if (precision != CudaPrecision::Fp32) {
      const int64_t tilesN = (N + kTf32TileN - 1) / kTf32TileN, tilesM = (M + kTf32TileM - 1) / kTf32TileM;
      // the kernel's indices are 32-bit: every m, n and k (plus a slice and a tile) below 2^31
      const int64_t limit = (int64_t(1) << 31) - kTf32TileM - kTf32TileK;
      if (tilesM > 65535 || M > limit || N > limit || K > limit)
        throw std::invalid_argument("gemm: a matrix of 2^31 rows, columns or products per output or more is too large for the CUDA "
                                    "tensor-core tiles; use a smaller batch or setCudaPrecision('fp32')");
      const dim3 grid{unsigned(tilesN), unsigned(tilesM), unsigned(splits)};
      const bool bf16 = precision == CudaPrecision::Bf16;
      using Kernel = void (*)(int64_t, int64_t, int64_t, int64_t, ALoad, BLoad, Store);
      Kernel kernel = bf16 ? Kernel(gemmTensorCoreKernel<ALoad, BLoad, Store, false, true>)
                           : Kernel(gemmTensorCoreKernel<ALoad, BLoad, Store, false, false>);
      if constexpr (ColumnTaps<BLoad>::value && !ColumnAlongK<BLoad>::value)
        if (b.tapMasks())
          kernel = bf16 ? Kernel(gemmTensorCoreKernel<ALoad, BLoad, Store, true, true>)
                        : Kernel(gemmTensorCoreKernel<ALoad, BLoad, Store, true, false>);
      launch(kernel, grid, dim3(kTf32Threads), 0, currentStream(), M, N, K, kChunk, a, b, store);
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
  const bool tensorCores = std::is_same_v<T, float> && cudaPrecision() != CudaPrecision::Fp32;
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
