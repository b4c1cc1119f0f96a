// Convolution as implicit GEMM on the tile kernel of gemm.cuh: the loaders below read patches straight
// from the NCHW tensors, so no im2col buffer is formed (the twin of cpu/conv2d.cpp, which forms one for
// the BLAS). Index arithmetic is 32-bit (sizes are checked below), addresses 64-bit.
#include "gemm.cuh"

namespace ikun::cuda {
namespace {

// The geometry the loaders need, in 32-bit integers.
struct ConvGeometry {
  unsigned inChannels, inHeight, inWidth, outChannels, kernelHeight, kernelWidth, outHeight, outWidth, stride;
  int padding;

  explicit ConvGeometry(const Conv2dShape& s) {
    const int64_t limit = int64_t(1) << 31;
    if (s.batch * s.inChannels * s.inHeight * s.inWidth >= limit || s.batch * s.outChannels * s.outHeight() * s.outWidth() >= limit ||
        s.outChannels * s.patchSize() >= limit)
      throw std::invalid_argument("conv2d: tensors of 2^31 elements or more are not supported on CUDA; use a smaller batch");
    inChannels = unsigned(s.inChannels), inHeight = unsigned(s.inHeight), inWidth = unsigned(s.inWidth);
    outChannels = unsigned(s.outChannels), kernelHeight = unsigned(s.kernelHeight), kernelWidth = unsigned(s.kernelWidth);
    outHeight = unsigned(s.outHeight()), outWidth = unsigned(s.outWidth()), stride = unsigned(s.stride);
    padding = int(s.padding);
  }
  __device__ __forceinline__ unsigned outPixels() const { return outHeight * outWidth; }
  __device__ __forceinline__ unsigned inPixels() const { return inHeight * inWidth; }
};

// Patch row k (input channel, kernel row, kernel column) at output column j (sample, output pixel): the
// input pixel it reads, or 0 in the padding. This is im2col's matrix, element by element.
template <class T>
struct PatchLoader {
  const T* x;
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t k, int64_t j) const {
    const unsigned pixels = g.outPixels(), jj = unsigned(j), kk = unsigned(k);
    const unsigned n = jj / pixels, p = jj - n * pixels, oy = p / g.outWidth, ox = p - oy * g.outWidth;
    const unsigned taps = g.kernelHeight * g.kernelWidth, ci = kk / taps, r = kk - ci * taps;
    const unsigned ki = r / g.kernelWidth, kj = r - ki * g.kernelWidth;
    const int iy = int(oy * g.stride + ki) - g.padding, ix = int(ox * g.stride + kj) - g.padding;
    if (iy < 0 || ix < 0 || iy >= int(g.inHeight) || ix >= int(g.inWidth)) return T(0);
    return x[(int64_t(n) * g.inChannels + ci) * g.inPixels() + unsigned(iy) * g.inWidth + unsigned(ix)];
  }
};

// The same matrix read transposed: (j, k).
template <class T>
struct PatchLoaderTransposed {
  PatchLoader<T> patches;
  __device__ __forceinline__ T operator()(int64_t j, int64_t k) const { return patches(k, j); }
};

// y[n, co, p] = value (+ bias[co]) for output row co, column j = (n, p).
template <class T>
struct ConvOutputStore {
  T* y;
  const T* bias;
  ConvGeometry g;
  __device__ __forceinline__ void operator()(int, int64_t co, int64_t j, T value) const {
    const unsigned pixels = g.outPixels(), n = unsigned(j) / pixels, p = unsigned(j) - n * pixels;
    y[(int64_t(n) * g.outChannels + unsigned(co)) * pixels + p] = bias ? value + bias[co] : value;
  }
};

// The input gradient as a GEMM over (output channel, kernel row, kernel column):
// A(ci, k) = w[co, ci, ki, kj]; B(k, j) = dy[n, co, oy, ox] at the output pixel whose patch puts tap
// (ki, kj) on input pixel j = (n, iy, ix), or 0 where there is none (stride, borders).
template <class T>
struct FlippedWeightLoader {
  const T* w;
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t ci, int64_t k) const {
    const unsigned taps = g.kernelHeight * g.kernelWidth, kk = unsigned(k), co = kk / taps, r = kk - co * taps;
    return w[(int64_t(co) * g.inChannels + unsigned(ci)) * taps + r];
  }
};

template <class T>
struct OutputGradientLoader {
  const T* dy;
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t k, int64_t j) const {
    const unsigned taps = g.kernelHeight * g.kernelWidth, kk = unsigned(k), co = kk / taps, r = kk - co * taps;
    const unsigned ki = r / g.kernelWidth, kj = r - ki * g.kernelWidth;
    const unsigned pixels = g.inPixels(), jj = unsigned(j), n = jj / pixels, q = jj - n * pixels;
    const unsigned iy = q / g.inWidth, ix = q - iy * g.inWidth;
    const int ny = int(iy) + g.padding - int(ki), nx = int(ix) + g.padding - int(kj);
    if (ny < 0 || nx < 0) return T(0);
    const unsigned oy = unsigned(ny) / g.stride, ox = unsigned(nx) / g.stride;
    if (oy * g.stride != unsigned(ny) || ox * g.stride != unsigned(nx) || oy >= g.outHeight || ox >= g.outWidth) return T(0);
    return dy[(int64_t(n) * g.outChannels + co) * g.outPixels() + oy * g.outWidth + ox];
  }
};

template <class T>
struct InputGradientStore {
  T* dx;
  ConvGeometry g;
  __device__ __forceinline__ void operator()(int, int64_t ci, int64_t j, T value) const {
    const unsigned pixels = g.inPixels(), n = unsigned(j) / pixels, q = unsigned(j) - n * pixels;
    dx[(int64_t(n) * g.inChannels + unsigned(ci)) * pixels + q] = value;
  }
};

// dy as the A operand of the weight gradient: A(co, j) = dy[n, co, p] for j = (n, p).
template <class T>
struct OutputGradientRows {
  const T* dy;
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t co, int64_t j) const {
    const unsigned pixels = g.outPixels(), n = unsigned(j) / pixels, p = unsigned(j) - n * pixels;
    return dy[(int64_t(n) * g.outChannels + unsigned(co)) * pixels + p];
  }
};

template <class T>
struct AccumulateStore {
  T* c;
  int64_t ldc;
  __device__ __forceinline__ void operator()(int, int64_t m, int64_t n, T value) const { c[m * ldc + n] += value; }
};

// dbias[co] += the sum of dy over samples and pixels (in double, one block per channel, fixed order).
template <class T>
__global__ void biasGradientKernel(int64_t batch, int64_t channels, int64_t pixels, const T* dy, T* dbias) {
  const int64_t co = blockIdx.x, count = batch * pixels;
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const int64_t n = i / pixels, p = i - n * pixels;
    s += double(dy[(n * channels + co) * pixels + p]);
  }
  s = blockSum(s);
  if (threadIdx.x == 0) dbias[co] += T(s);
}

}  // namespace

template <class T>
void conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const ConvGeometry g(s);
  gemmTiles<T>(s.outChannels, s.batch * s.outHeight() * s.outWidth(), s.patchSize(), 1, DenseMatrix<T>{w, s.patchSize(), false},
               PatchLoader<T>{x, g}, ConvOutputStore<T>{y, bias, g});
}

template <class T>
void conv2dBackwardInput(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const ConvGeometry g(s);
  gemmTiles<T>(s.inChannels, s.batch * s.inHeight * s.inWidth, s.outChannels * s.kernelHeight * s.kernelWidth, 1,
               FlippedWeightLoader<T>{w, g}, OutputGradientLoader<T>{dy, g}, InputGradientStore<T>{dx, g});
}

template <class T>
void conv2dBackwardWeight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const ConvGeometry g(s);
  const int64_t pixels = s.outHeight() * s.outWidth();
  gemmSplitK<T>(s.outChannels, s.patchSize(), s.batch * pixels, OutputGradientRows<T>{dy, g},
                PatchLoaderTransposed<T>{PatchLoader<T>{x, g}}, AccumulateStore<T>{dw, s.patchSize()});
  if (dbias)
    launch(biasGradientKernel<T>, dim3(unsigned(s.outChannels)), dim3(kThreads), 0, currentStream(), s.batch, s.outChannels,
           pixels, dy, dbias);
}

#define IKUN_INSTANTIATE(T)                                                                         \
  template void conv2dForward<T>(const Conv2dShape&, const T*, const T*, const T*, T*);              \
  template void conv2dBackwardInput<T>(const Conv2dShape&, const T*, const T*, T*);                  \
  template void conv2dBackwardWeight<T>(const Conv2dShape&, const T*, const T*, T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
