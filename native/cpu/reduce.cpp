// Whole-tensor reductions in double (metrics: firing rates, gradient norms). Partial sums are taken over
// fixed-size chunks and added in order, so the result does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {
namespace {

constexpr int64_t kChunk = 1 << 14;

template <class T, class Fn>
double reduceChunks(int64_t n, const T* x, Fn&& term) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(size_t(std::max<int64_t>(1, chunks)), 0.0);
  parallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sum = 0;
      for (int64_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) sum += term(double(x[i]));
      partial[size_t(c)] = sum;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

}  // namespace

template <class T>
double sum(int64_t n, const T* x) {
  return reduceChunks(n, x, [](double v) { return v; });
}

template <class T>
double sumOfSquares(int64_t n, const T* x) {
  return reduceChunks(n, x, [](double v) { return v * v; });
}

template <class T>
double dot(int64_t n, const T* x, const T* y) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(size_t(std::max<int64_t>(1, chunks)), 0.0);
  parallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double acc = 0;
      for (int64_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) acc += double(x[i]) * double(y[i]);
      partial[size_t(c)] = acc;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

template double dot<float>(int64_t, const float*, const float*);
template double dot<double>(int64_t, const double*, const double*);
template double sum<float>(int64_t, const float*);
template double sum<double>(int64_t, const double*);
template double sumOfSquares<float>(int64_t, const float*);
template double sumOfSquares<double>(int64_t, const double*);

}  // namespace ikun::cpu
