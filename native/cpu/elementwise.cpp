#include <algorithm>
#include <cstring>

#include "../common/metrics_rules.h"
#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {

constexpr int64_t kGrain = 1 << 15;

template <class T>
void fill(int64_t n, T value, T* y) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) { std::fill(y + i0, y + i1, value); });
}

template <class T>
void copy(int64_t n, const T* x, T* y) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) { std::memcpy(y + i0, x + i0, size_t(i1 - i0) * sizeof(T)); });
}

template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] += alpha * x[i];
  });
}

void zeroAll(void* const* buffers, const int64_t* bytes, int count) {
  for (int t = 0; t < count; ++t) {
    char* p = static_cast<char*>(buffers[t]);
    parallelFor(bytes[t], kGrain * 4, [&](int64_t i0, int64_t i1) { std::memset(p + i0, 0, size_t(i1 - i0)); });
  }
}

template <class T>
void addToTotals(int64_t n, const T* step, T* totals, T* finiteSteps) {
  for (int64_t i = 0; i < n; ++i) addToTotal(step[i], totals[i], finiteSteps ? finiteSteps + i : nullptr);
}

template <class T>
void scale(int64_t n, T alpha, T* y) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] *= alpha;
  });
}

template <class T>
void convert(int64_t n, const T* x, float* yf, double* yd) {
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (yf) yf[i] = float(x[i]);
      else yd[i] = double(x[i]);
    }
  });
}

template <class T>
void repeatLeading(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  parallelFor(width, kGrain / 4, [&](int64_t i0, int64_t i1) {
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t i = i0; i < i1; ++i) y[t * width + i] = scale * x[i];
  });
}

template <class T>
void sumLeading(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  parallelFor(width, kGrain / 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T sum = T(0);
      for (int64_t t = 0; t < steps; ++t) sum += x[t * width + i];
      y[i] = scale * sum;
    }
  });
}

template <class T>
void gatherRows(int64_t rowCount, int64_t rowSize, const T* rows, const int32_t* indices, int64_t first, int64_t count, T* out) {
  parallelFor(count, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, rowSize)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      std::memcpy(out + r * rowSize, rows + int64_t(indices[first + r]) * rowSize, size_t(rowSize) * sizeof(T));
  });
}

template void gatherRows<int32_t>(int64_t, int64_t, const int32_t*, const int32_t*, int64_t, int64_t, int32_t*);

#define IKUN_INSTANTIATE(T)                                                    \
  template void gatherRows<T>(int64_t, int64_t, const T*, const int32_t*, int64_t, int64_t, T*); \
  template void fill<T>(int64_t, T, T*);                                       \
  template void copy<T>(int64_t, const T*, T*);                                \
  template void axpy<T>(int64_t, T, const T*, T*);                             \
  template void addToTotals<T>(int64_t, const T*, T*, T*);                     \
  template void scale<T>(int64_t, T, T*);                                      \
  template void convert<T>(int64_t, const T*, float*, double*);                \
  template void repeatLeading<T>(int64_t, int64_t, T, const T*, T*);           \
  template void sumLeading<T>(int64_t, int64_t, T, const T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cpu
