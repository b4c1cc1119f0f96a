#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {

template <class T>
void linearForward(const LinearShape& s, const T* x, const T* w, const T* bias, T* y) {
  T beta = T(0);
  if (bias) {
    parallelFor(s.batch, 64, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) copy(s.outFeatures, bias, y + b * s.outFeatures);
    });
    beta = T(1);
  }
  // y[batch, out] = x[batch, in] * w[out, in]^T
  gemm<T>(false, true, s.batch, s.outFeatures, s.inFeatures, T(1), x, s.inFeatures, w, s.inFeatures, beta, y,
          s.outFeatures);
}

template <class T>
void linearBackwardInput(const LinearShape& s, const T* dy, const T* w, T* dx) {
  gemm<T>(false, false, s.batch, s.inFeatures, s.outFeatures, T(1), dy, s.outFeatures, w, s.inFeatures, T(0), dx,
          s.inFeatures);
}

template <class T>
void linearBackwardWeight(const LinearShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  gemm<T>(true, false, s.outFeatures, s.inFeatures, s.batch, T(1), dy, s.outFeatures, x, s.inFeatures, T(1), dw,
          s.inFeatures);
  if (dbias) {
    parallelFor(s.outFeatures, 16, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double sum = 0;
        for (int64_t b = 0; b < s.batch; ++b) sum += dy[b * s.outFeatures + o];
        dbias[o] += T(sum);
      }
    });
  }
}

#define IKUN_INSTANTIATE(T)                                                                        \
  template void linearForward<T>(const LinearShape&, const T*, const T*, const T*, T*);             \
  template void linearBackwardInput<T>(const LinearShape&, const T*, const T*, T*);                 \
  template void linearBackwardWeight<T>(const LinearShape&, const T*, const T*, T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cpu
