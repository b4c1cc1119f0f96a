// Max-pool without padding (the twin of cpu/pool.cpp): argmax holds the winning offset inside each input
// plane, the first maximum in row-major window order on ties, as PyTorch.
#include <cmath>

#include "common.cuh"

namespace ikun::cuda {
namespace {

struct PoolGeometry {
  int64_t planes;
  int inHeight, inWidth, outHeight, outWidth, kernel, stride;
  explicit PoolGeometry(const Pool2dShape& s)
      : planes(s.planes), inHeight(int(s.inHeight)), inWidth(int(s.inWidth)), outHeight(int(s.outHeight())),
        outWidth(int(s.outWidth())), kernel(int(s.kernel)), stride(int(s.stride)) {
    if (s.inHeight * s.inWidth >= (int64_t(1) << 31)) throw std::invalid_argument("maxpool2d: planes of 2^31 pixels or more are not supported on CUDA");
  }
};

template <class T>
__global__ void forwardKernel(PoolGeometry g, const T* x, T* y, int32_t* argmax) {
  const int64_t outPlane = int64_t(g.outHeight) * g.outWidth, total = g.planes * outPlane, inPlane = int64_t(g.inHeight) * g.inWidth;
  for (int64_t o = globalThreadIndex(); o < total; o += globalThreadCount()) {
    const int64_t q = o / outPlane;
    const int r = int(o - q * outPlane), oy = r / g.outWidth, ox = r - oy * g.outWidth;
    const T* in = x + q * inPlane;
    int best = oy * g.stride * g.inWidth + ox * g.stride;
    T bestValue = in[best];
    for (int ki = 0; ki < g.kernel; ++ki)
      for (int kj = 0; kj < g.kernel; ++kj) {
        const int at = (oy * g.stride + ki) * g.inWidth + ox * g.stride + kj;
        if (in[at] > bestValue) bestValue = in[at], best = at;  // strict '>': the first maximum wins
      }
    y[o] = bestValue;
    argmax[o] = best;
  }
}

// Each input element gathers the gradients of the windows whose maximum it is, in window order (the order
// in which the CPU adds them), so no atomics and the same bits every run.
template <class T>
__global__ void backwardKernel(PoolGeometry g, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t inPlane = int64_t(g.inHeight) * g.inWidth, total = g.planes * inPlane, outPlane = int64_t(g.outHeight) * g.outWidth;
  for (int64_t i = globalThreadIndex(); i < total; i += globalThreadCount()) {
    const int64_t q = i / inPlane;
    const int offset = int(i - q * inPlane), iy = offset / g.inWidth, ix = offset - iy * g.inWidth;
    // windows (oy, ox) with oy * stride <= iy < oy * stride + kernel
    const int oy0 = iy >= g.kernel ? (iy - g.kernel) / g.stride + 1 : 0, oy1 = iy / g.stride;
    const int ox0 = ix >= g.kernel ? (ix - g.kernel) / g.stride + 1 : 0, ox1 = ix / g.stride;
    T sum = T(0);
    for (int oy = oy0; oy <= oy1 && oy < g.outHeight; ++oy)
      for (int ox = ox0; ox <= ox1 && ox < g.outWidth; ++ox) {
        const int64_t o = q * outPlane + int64_t(oy) * g.outWidth + ox;
        if (argmax[o] == offset) sum += dy[o];
      }
    dx[i] = sum;
  }
}

// y[o] = x[argmax[o]] in each plane (max-pool's forward tangent); NaN for an offset outside the plane.
template <class T>
__global__ void gatherKernel(PoolGeometry g, const T* x, const int32_t* argmax, T* y) {
  const int64_t outPlane = int64_t(g.outHeight) * g.outWidth, total = g.planes * outPlane, inPlane = int64_t(g.inHeight) * g.inWidth;
  for (int64_t o = globalThreadIndex(); o < total; o += globalThreadCount()) {
    const int64_t q = o / outPlane;
    const int32_t at = argmax[o];
    y[o] = at >= 0 && at < inPlane ? x[q * inPlane + at] : T(NAN);
  }
}

}  // namespace

template <class T>
void maxPool2dForward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  const PoolGeometry g(s);
  launch(forwardKernel<T>, blocksFor(s.planes * s.outHeight() * s.outWidth()), dim3(kThreads), 0, currentStream(), g, x, y, argmax);
}

template <class T>
void maxPool2dBackward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx) {
  const PoolGeometry g(s);
  launch(backwardKernel<T>, blocksFor(s.planes * s.inHeight * s.inWidth), dim3(kThreads), 0, currentStream(), g, dy, argmax, dx);
}

template <class T>
void maxPool2dGather(const Pool2dShape& s, const T* x, const int32_t* argmax, T* y) {
  const PoolGeometry g(s);
  launch(gatherKernel<T>, blocksFor(s.planes * s.outHeight() * s.outWidth()), dim3(kThreads), 0, currentStream(), g, x, argmax, y);
}

#define IKUN_INSTANTIATE(T)                                                                        \
  template void maxPool2dForward<T>(const Pool2dShape&, const T*, T*, int32_t*);                    \
  template void maxPool2dBackward<T>(const Pool2dShape&, const T*, const int32_t*, T*);             \
  template void maxPool2dGather<T>(const Pool2dShape&, const T*, const int32_t*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
