#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {

template <class T>
void maxPool2dForward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  const int64_t oh = s.outHeight(), ow = s.outWidth(), planeIn = s.inHeight * s.inWidth;
  parallelFor(s.planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* in = x + p * planeIn;
      T* out = y + p * oh * ow;
      int32_t* arg = argmax + p * oh * ow;
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          int64_t best = (i * s.stride) * s.inWidth + j * s.stride;
          T bestValue = in[best];
          // Strict '>' keeps the first maximum in row-major window order, as PyTorch does.
          for (int64_t ki = 0; ki < s.kernel; ++ki) {
            for (int64_t kj = 0; kj < s.kernel; ++kj) {
              const int64_t at = (i * s.stride + ki) * s.inWidth + j * s.stride + kj;
              if (in[at] > bestValue) {
                bestValue = in[at];
                best = at;
              }
            }
          }
          out[i * ow + j] = bestValue;
          arg[i * ow + j] = int32_t(best);
        }
      }
    }
  });
}

template <class T>
void maxPool2dBackward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t outPlane = s.outHeight() * s.outWidth(), planeIn = s.inHeight * s.inWidth;
  parallelFor(s.planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* grad = dx + p * planeIn;
      fill(planeIn, T(0), grad);
      for (int64_t o = 0; o < outPlane; ++o) grad[argmax[p * outPlane + o]] += dy[p * outPlane + o];
    }
  });
}

template <class T>
void maxPool2dGather(const Pool2dShape& s, const T* x, const int32_t* argmax, T* y) {
  const int64_t outPlane = s.outHeight() * s.outWidth(), planeIn = s.inHeight * s.inWidth;
  parallelFor(s.planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t o = 0; o < outPlane; ++o) y[p * outPlane + o] = x[p * planeIn + argmax[p * outPlane + o]];
  });
}

template void maxPool2dGather<float>(const Pool2dShape&, const float*, const int32_t*, float*);
template void maxPool2dGather<double>(const Pool2dShape&, const double*, const int32_t*, double*);
template void maxPool2dForward<float>(const Pool2dShape&, const float*, float*, int32_t*);
template void maxPool2dForward<double>(const Pool2dShape&, const double*, double*, int32_t*);
template void maxPool2dBackward<float>(const Pool2dShape&, const float*, const int32_t*, float*);
template void maxPool2dBackward<double>(const Pool2dShape&, const double*, const int32_t*, double*);

}  // namespace ikun::cpu
