// The tensor basics (argmax, sums, arithmetic, comparison, casts) behind Tensor's methods. Every output
// element is written by one thread with a fixed summation order, so results never depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

// Integer arithmetic in uint32 wraps around (signed overflow would be undefined behaviour).
template <class T, class Fn>
T integerSafe(T a, T b, Fn&& fn) {
  if constexpr (std::is_same_v<T, int32_t>) return int32_t(fn(uint32_t(a), uint32_t(b)));
  else return fn(a, b);
}

template <class T>
struct Arith {
  BinaryOp op;
  T operator()(T a, T b) const {
    switch (op) {
      case BinaryOp::Add: return integerSafe(a, b, [](auto x, auto y) { return x + y; });
      case BinaryOp::Sub: return integerSafe(a, b, [](auto x, auto y) { return x - y; });
      case BinaryOp::Mul: return integerSafe(a, b, [](auto x, auto y) { return x * y; });
      default:
        if constexpr (std::is_floating_point_v<T>) return a / b;
        else return T(0);  // not reached: the binding refuses integer division
    }
  }
};

// Runs fn(aRow, bRow, outRow, count, aStep, bStep) over the rows of the last dimension.
template <class T, class Out, class RowFn>
void forEachRow(const BroadcastShape& s, const T* a, const T* b, Out* out, RowFn&& rowFn) {
  const int last = s.rank - 1;
  const int64_t inner = s.shape[last];
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= s.shape[d];
  if (inner == 0 || rows == 0) return;
  parallelFor(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rest = r, aOffset = 0, bOffset = 0;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t index = rest % s.shape[d];
        rest /= s.shape[d];
        aOffset += index * s.aStride[d];
        bOffset += index * s.bStride[d];
      }
      rowFn(a + aOffset, b + bOffset, out + r * inner, inner, s.aStride[last], s.bStride[last]);
    }
  });
}

// The inner loop, specialised for the common contiguous and broadcast-scalar cases so they vectorise.
template <class T, class Out, class Fn>
void rowLoop(const T* a, const T* b, Out* out, int64_t n, int64_t aStep, int64_t bStep, Fn&& fn) {
  if (aStep == 1 && bStep == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = Out(fn(a[i], b[i]));
  } else if (aStep == 1 && bStep == 0) {
    const T bv = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = Out(fn(a[i], bv));
  } else if (aStep == 0 && bStep == 1) {
    const T av = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = Out(fn(av, b[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = Out(fn(a[i * aStep], b[i * bStep]));
  }
}

// Sums one output element's axis in double (int64 for integers), in index order.
template <class T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

}  // namespace

template <class T>
void binaryBroadcast(BinaryOp op, const BroadcastShape& s, const T* a, const T* b, T* out) {
  forEachRow(s, a, b, out, [&](const T* ar, const T* br, T* o, int64_t n, int64_t as, int64_t bs) {
    switch (op) {  // one loop per op, so the loop body has no branch
      case BinaryOp::Add: rowLoop(ar, br, o, n, as, bs, [](T x, T y) { return Arith<T>{BinaryOp::Add}(x, y); }); break;
      case BinaryOp::Sub: rowLoop(ar, br, o, n, as, bs, [](T x, T y) { return Arith<T>{BinaryOp::Sub}(x, y); }); break;
      case BinaryOp::Mul: rowLoop(ar, br, o, n, as, bs, [](T x, T y) { return Arith<T>{BinaryOp::Mul}(x, y); }); break;
      case BinaryOp::Div: rowLoop(ar, br, o, n, as, bs, [](T x, T y) { return Arith<T>{BinaryOp::Div}(x, y); }); break;
    }
  });
}

template <class T>
void binaryScalar(BinaryOp op, int64_t n, const T* a, T scalar, T* out) {
  const Arith<T> fn{op};
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = fn(a[i], scalar);
  });
}

template <class T>
void equalBroadcast(const BroadcastShape& s, const T* a, const T* b, int32_t* out) {
  forEachRow(s, a, b, out, [&](const T* ar, const T* br, int32_t* o, int64_t n, int64_t as, int64_t bs) {
    rowLoop(ar, br, o, n, as, bs, [](T x, T y) { return x == y ? 1 : 0; });
  });
}

template <class T>
void equalScalar(int64_t n, const T* a, T scalar, int32_t* out) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] == scalar ? 1 : 0;
  });
}

template <class T>
void argmaxAxis(const AxisShape& s, const T* x, int32_t* out) {
  const int64_t results = s.outer * s.inner;
  if (s.axis == 0) return;  // refused by the TypeScript layer (argmax of an empty axis)
  parallelFor(results, std::max<int64_t>(1, kGrain / s.axis), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / s.inner, i = r % s.inner;
      const T* column = x + o * s.axis * s.inner + i;
      int64_t best = 0;
      T bestValue = column[0];
      for (int64_t k = 1; k < s.axis; ++k) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(bestValue)) break;  // the first NaN is the maximum
          const T v = column[k * s.inner];
          if (v > bestValue || std::isnan(v)) bestValue = v, best = k;
        } else {
          const T v = column[k * s.inner];
          if (v > bestValue) bestValue = v, best = k;  // strict: the first maximum wins ties
        }
      }
      out[r] = int32_t(best);
    }
  });
}

template <class T>
void sumAxis(const AxisShape& s, double scale, const T* x, T* out) {
  using Acc = Accumulator<T>;
  const auto finish = [scale](Acc total) -> T {
    if constexpr (std::is_floating_point_v<T>) return T(scale * total);
    else return T(uint32_t(uint64_t(total)));  // int32 wrap-around, as the arithmetic ops
  };
  if (s.outer * s.inner == 1) {
    // One result: partial sums over fixed chunks, added in chunk order.
    const int64_t chunks = std::max<int64_t>(1, (s.axis + kGrain - 1) / kGrain);
    std::vector<Acc> partial(size_t(chunks), Acc(0));
    parallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        Acc sum = 0;
        for (int64_t k = c * kGrain, end = std::min(s.axis, (c + 1) * kGrain); k < end; ++k) sum += Acc(x[k]);
        partial[size_t(c)] = sum;
      }
    });
    Acc total = 0;
    for (Acc v : partial) total += v;
    out[0] = finish(total);
    return;
  }
  // Blocks of up to 256 neighbouring results along the inner dimension, so the reads stay contiguous.
  constexpr int64_t kBlock = 256;
  const int64_t blocksPerRow = (s.inner + kBlock - 1) / kBlock;
  parallelFor(s.outer * blocksPerRow, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s.axis * kBlock)), [&](int64_t b0, int64_t b1) {
    Acc acc[kBlock];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o = b / blocksPerRow, i0 = (b % blocksPerRow) * kBlock, width = std::min(kBlock, s.inner - i0);
      std::fill(acc, acc + width, Acc(0));
      const T* base = x + o * s.axis * s.inner + i0;
      for (int64_t k = 0; k < s.axis; ++k)
        for (int64_t i = 0; i < width; ++i) acc[i] += Acc(base[k * s.inner + i]);
      for (int64_t i = 0; i < width; ++i) out[o * s.inner + i0 + i] = finish(acc[i]);
    }
  });
}

template <class From, class To>
void cast(int64_t n, const From* x, To* y) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if constexpr (std::is_same_v<To, int32_t> && std::is_floating_point_v<From>) {
        const double v = double(x[i]);
        constexpr double lo = double(std::numeric_limits<int32_t>::min()), hi = double(std::numeric_limits<int32_t>::max());
        y[i] = std::isnan(v) ? 0 : v <= lo ? std::numeric_limits<int32_t>::min() : v >= hi ? std::numeric_limits<int32_t>::max() : int32_t(v);
      } else {
        y[i] = To(x[i]);
      }
    }
  });
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

}  // namespace ikun::cpu
