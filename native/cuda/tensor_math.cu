// The tensor basics (argmax, sums, arithmetic, comparison, casts): the twin of cpu/tensor_math.cpp, for
// float, double and int32_t. Every output element is computed by one thread or, for long reductions, one
// block in a fixed order, so results are the same every run.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "common.cuh"

namespace ikun::cuda {
namespace {

// Integer arithmetic in uint32 wraps around like int32 in PyTorch (signed overflow would be undefined).
template <class T>
__device__ __forceinline__ T arithmetic(BinaryOp op, T a, T b) {
  if constexpr (std::is_same_v<T, int32_t>) {
    const uint32_t x = uint32_t(a), y = uint32_t(b);
    switch (op) {
      case BinaryOp::Add: return int32_t(x + y);
      case BinaryOp::Sub: return int32_t(x - y);
      case BinaryOp::Mul: return int32_t(x * y);
      default: return 0;  // not reached: the binding refuses integer division
    }
  } else {
    switch (op) {
      case BinaryOp::Add: return a + b;
      case BinaryOp::Sub: return a - b;
      case BinaryOp::Mul: return a * b;
      default: return a / b;
    }
  }
}

// The offsets into a and b of output element i.
__device__ __forceinline__ void operandOffsets(const BroadcastShape& s, int64_t i, int64_t& a, int64_t& b) {
  a = 0, b = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t index = i % s.shape[d];
    i /= s.shape[d];
    a += index * s.aStride[d];
    b += index * s.bStride[d];
  }
}

__device__ __forceinline__ int64_t broadcastCount(const BroadcastShape& s) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= s.shape[d];
  return n;
}

template <class T>
__global__ void binaryBroadcastKernel(BinaryOp op, BroadcastShape s, const T* a, const T* b, T* out) {
  const int64_t n = broadcastCount(s);
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) {
    int64_t ia, ib;
    operandOffsets(s, i, ia, ib);
    out[i] = arithmetic(op, a[ia], b[ib]);
  }
}

template <class T>
__global__ void binaryScalarKernel(BinaryOp op, int64_t n, const T* a, T scalar, T* out) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) out[i] = arithmetic(op, a[i], scalar);
}

template <class T>
__global__ void equalBroadcastKernel(BroadcastShape s, const T* a, const T* b, int32_t* out) {
  const int64_t n = broadcastCount(s);
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) {
    int64_t ia, ib;
    operandOffsets(s, i, ia, ib);
    out[i] = a[ia] == b[ib] ? 1 : 0;
  }
}

template <class T>
__global__ void equalScalarKernel(int64_t n, const T* a, T scalar, int32_t* out) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) out[i] = a[i] == scalar ? 1 : 0;
}

template <class T>
__device__ __forceinline__ bool isNan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

// The first maximum along the axis; the first NaN counts as the maximum (as PyTorch).
template <class T>
__global__ void argmaxKernel(AxisShape s, const T* x, int32_t* out) {
  const int64_t results = s.outer * s.inner;
  for (int64_t r = globalThreadIndex(); r < results; r += globalThreadCount()) {
    const int64_t o = r / s.inner, i = r - o * s.inner;
    const T* column = x + o * s.axis * s.inner + i;
    int64_t best = 0;
    T bestValue = column[0];
    for (int64_t k = 1; k < s.axis && !isNan(bestValue); ++k) {
      const T v = column[k * s.inner];
      if (v > bestValue || isNan(v)) bestValue = v, best = k;
    }
    out[r] = int32_t(best);
  }
}

template <class T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, long long>;

template <class T>
__device__ __forceinline__ T finishSum(Accumulator<T> total, double scale) {
  if constexpr (std::is_floating_point_v<T>) return T(scale * total);
  else return T(uint32_t((unsigned long long)total));  // int32 wrap-around, as the arithmetic ops
}

// Short axes: one thread per result, the axis in index order.
template <class T>
__global__ void sumAxisByThreadKernel(AxisShape s, double scale, const T* x, T* out) {
  const int64_t results = s.outer * s.inner;
  for (int64_t r = globalThreadIndex(); r < results; r += globalThreadCount()) {
    const int64_t o = r / s.inner, i = r - o * s.inner;
    const T* column = x + o * s.axis * s.inner + i;
    Accumulator<T> total = 0;
    for (int64_t k = 0; k < s.axis; ++k) total += Accumulator<T>(column[k * s.inner]);
    out[r] = finishSum<T>(total, scale);
  }
}

// Long axes: one block per result, each thread a fixed strided part, then the block's fixed tree.
template <class T>
__global__ void sumAxisByBlockKernel(AxisShape s, double scale, const T* x, T* out) {
  const int64_t r = blockIdx.x, o = r / s.inner, i = r - o * s.inner;
  const T* column = x + o * s.axis * s.inner + i;
  Accumulator<T> total = 0;
  for (int64_t k = threadIdx.x; k < s.axis; k += blockDim.x) total += Accumulator<T>(column[k * s.inner]);
  total = blockSum(total);
  if (threadIdx.x == 0) out[r] = finishSum<T>(total, scale);
}

template <class From, class To>
__global__ void castKernel(int64_t n, const From* x, To* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) {
    if constexpr (std::is_same_v<To, int32_t> && std::is_floating_point_v<From>) {
      // truncation toward zero, saturated at the int32 range, NaN as 0 (the CPU's rule)
      const double v = double(x[i]);
      const double lo = -2147483648.0, hi = 2147483647.0;
      y[i] = v != v ? 0 : v <= lo ? int32_t(-2147483647 - 1) : v >= hi ? int32_t(2147483647) : int32_t(v);
    } else {
      y[i] = To(x[i]);
    }
  }
}

}  // namespace

template <class T>
void binaryBroadcast(BinaryOp op, const BroadcastShape& s, const T* a, const T* b, T* out) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= s.shape[d];
  launch(binaryBroadcastKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), op, s, a, b, out);
}

template <class T>
void binaryScalar(BinaryOp op, int64_t n, const T* a, T scalar, T* out) {
  launch(binaryScalarKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), op, n, a, scalar, out);
}

template <class T>
void equalBroadcast(const BroadcastShape& s, const T* a, const T* b, int32_t* out) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= s.shape[d];
  launch(equalBroadcastKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), s, a, b, out);
}

template <class T>
void equalScalar(int64_t n, const T* a, T scalar, int32_t* out) {
  launch(equalScalarKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, a, scalar, out);
}

template <class T>
void argmaxAxis(const AxisShape& s, const T* x, int32_t* out) {
  if (s.axis == 0) return;  // refused by the TypeScript layer (argmax of an empty axis)
  launch(argmaxKernel<T>, blocksFor(s.outer * s.inner), dim3(kThreads), 0, currentStream(), s, x, out);
}

template <class T>
void sumAxis(const AxisShape& s, double scale, const T* x, T* out) {
  const int64_t results = s.outer * s.inner;
  if (results == 0) return;
  if (s.axis <= 256 || results > 65535)
    launch(sumAxisByThreadKernel<T>, blocksFor(results), dim3(kThreads), 0, currentStream(), s, scale, x, out);
  else
    launch(sumAxisByBlockKernel<T>, dim3(unsigned(results)), dim3(kThreads), 0, currentStream(), s, scale, x, out);
}

template <class From, class To>
void cast(int64_t n, const From* x, To* y) {
  launch(castKernel<From, To>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, x, y);
}

#define IKUN_INSTANTIATE(T)                                                                  \
  template void binaryBroadcast<T>(BinaryOp, const BroadcastShape&, const T*, const T*, T*); \
  template void binaryScalar<T>(BinaryOp, int64_t, const T*, T, T*);                         \
  template void equalBroadcast<T>(const BroadcastShape&, const T*, const T*, int32_t*);      \
  template void equalScalar<T>(int64_t, const T*, T, int32_t*);                              \
  template void argmaxAxis<T>(const AxisShape&, const T*, int32_t*);                         \
  template void sumAxis<T>(const AxisShape&, double, const T*, T*);                          \
  template void cast<T, float>(int64_t, const T*, float*);                                   \
  template void cast<T, double>(int64_t, const T*, double*);                                 \
  template void cast<T, int32_t>(int64_t, const T*, int32_t*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
IKUN_INSTANTIATE(int32_t)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
