// Convolution as implicit GEMM on the tile kernel of gemm.cuh: the loaders below read patches straight
// from the NCHW tensors, so no im2col buffer is formed (the twin of cpu/conv2d.cpp, which forms one for
// the BLAS). Index arithmetic is 32-bit (sizes are checked below), addresses 64-bit. What a loader
// derives from its fixed row or column is computed once per thread (gemm.cuh); the index splits along k
// divide by launch constants through FastDivisor.
#include "fast_divide.cuh"
#include "gemm.cuh"

namespace ikun::cuda {
namespace {

// The geometry the loaders need, in 32-bit integers, with the divisors of the index splits.
struct ConvGeometry {
  unsigned inChannels, inHeight, inWidth, outChannels, kernelHeight, kernelWidth, outHeight, outWidth, stride;
  int padding;
  bool smallKernel;       // at most 32 taps: the masked taps below (gemm.cuh, ColumnTaps)
  uint32_t tapRowStarts;  // small kernels: bit ki * kernelWidth of every kernel row ki
  FastDivisor byOutPixels, byOutWidth, byInPixels, byInWidth, byTaps, byKernelWidth, byStride;

  explicit ConvGeometry(const Conv2dShape& s) {
    const int64_t limit = int64_t(1) << 31;
    if (s.batch * s.inChannels * s.inHeight * s.inWidth >= limit || s.batch * s.outChannels * s.outHeight() * s.outWidth() >= limit ||
        s.outChannels * s.patchSize() >= limit)
      throw std::invalid_argument("conv2d: tensors of 2^31 elements or more are not supported on CUDA; use a smaller batch");
    // the tap tables hold rows and columns in 16 bits (ConvTap)
    if (s.inHeight + 2 * s.padding >= 32768 || s.inWidth + 2 * s.padding >= 32768 || s.kernelHeight >= 32768 || s.kernelWidth >= 32768)
      throw std::invalid_argument("conv2d: images (with their padding) or kernels of 32768 pixels or more per side are not supported on CUDA");
    inChannels = unsigned(s.inChannels), inHeight = unsigned(s.inHeight), inWidth = unsigned(s.inWidth);
    outChannels = unsigned(s.outChannels), kernelHeight = unsigned(s.kernelHeight), kernelWidth = unsigned(s.kernelWidth);
    outHeight = unsigned(s.outHeight()), outWidth = unsigned(s.outWidth()), stride = unsigned(s.stride);
    padding = int(s.padding);
    smallKernel = s.kernelHeight * s.kernelWidth <= 32;
    tapRowStarts = 0;
    if (smallKernel)
      for (int64_t ki = 0; ki < s.kernelHeight; ++ki) tapRowStarts |= 1u << (ki * s.kernelWidth);
    byOutPixels = FastDivisor(outHeight * outWidth), byOutWidth = FastDivisor(outWidth);
    byInPixels = FastDivisor(inHeight * inWidth), byInWidth = FastDivisor(inWidth);
    byTaps = FastDivisor(kernelHeight * kernelWidth), byKernelWidth = FastDivisor(kernelWidth), byStride = FastDivisor(stride);
  }
  __device__ __forceinline__ unsigned outPixels() const { return outHeight * outWidth; }
  __device__ __forceinline__ unsigned inPixels() const { return inHeight * inWidth; }
  __device__ __forceinline__ unsigned taps() const { return kernelHeight * kernelWidth; }
};

// What an element's read needs of its k (gemm.cuh, ColumnTaps): an offset into the tensor and the row and
// column the bounds test adds (kernel taps, or an output pixel's input position); 16 bits suffice for
// those (ConvGeometry refuses padded sides of 32768 and more).
struct ConvTap {
  int offset;
  int16_t row, column;
};

// The masked taps of kernels of at most 32 taps (ConvGeometry::smallKernel), sets of taps as bits
// ki * kernelWidth + kj: `bits` is either one tap's bit, tested against the column's set of taps that fall
// inside the image, or the set of taps that fall inside for one output pixel, tested against the column's
// own tap bit. One AND and a test per element.
struct ConvMaskedTap {
  int offset;
  uint32_t bits;
};

// Bits [0, n) of a word, n in [0, 32].
__device__ __forceinline__ uint32_t lowBits(int n) { return n >= 32 ? ~0u : (1u << n) - 1u; }

// The set {ki * kernelWidth + kj : ki in [rowBegin, rowEnd), kj in [columnBegin, columnEnd)} of a kernel of
// at most 32 taps as bits (ranges within the kernel; empty ones give 0): one kernel row's columns, copied to
// every row by the product with the rows' first bits, then the rows kept.
__device__ __forceinline__ uint32_t tapBox(int rowBegin, int rowEnd, int columnBegin, int columnEnd, const ConvGeometry& g) {
  const int width = int(g.kernelWidth);
  const uint32_t columns = lowBits(columnEnd) & ~lowBits(columnBegin), rows = lowBits(rowEnd * width) & ~lowBits(rowBegin * width);
  return columns * g.tapRowStarts & rows;
}

// The element `offset` elements from the address `origin` (an integer: an origin such as a patch's first tap
// may lie before the tensor, where a pointer may not point): one widening multiply-add per read. Through
// the read-only path (__ldg: a global load, which an integer address would not tell the compiler; the
// GEMM's operands are not written while it runs).
template <class T>
__device__ __forceinline__ T readAt(uintptr_t origin, int offset) {
  return __ldg(reinterpret_cast<const T*>(origin + uintptr_t(intptr_t(offset) * intptr_t(sizeof(T)))));
}
template <class T>
__device__ __forceinline__ uintptr_t addressOf(const T* base, int offset) {
  return reinterpret_cast<uintptr_t>(base) + uintptr_t(intptr_t(offset) * intptr_t(sizeof(T)));
}

// i clamped to [0, size] (sizes and positions are below 2^15 here: ConvGeometry).
__device__ __forceinline__ int clampedTo(int i, unsigned size) { return i < 0 ? 0 : i > int(size) ? int(size) : i; }
// The kernel rows (columns) ki with 0 <= first + ki < size form [firstInside, endInside), clamped to the kernel.
__device__ __forceinline__ int firstInside(int first, unsigned kernelSize) { return clampedTo(-first, kernelSize); }
__device__ __forceinline__ int endInside(int first, unsigned size, unsigned kernelSize) { return clampedTo(int(size) - first, kernelSize); }

// im2col's matrix, element by element: patch row k = (input channel, kernel row, kernel column), column
// j = (sample, output pixel); the input pixel the tap reads, or 0 in the padding.
//
// One output column (the forward's B operand, read along the patch rows).
template <class T>
struct PatchColumn {
  const T* sample;  // x at (n, 0, 0, 0)
  int top, left;    // the input position of the patch's first tap
  int corner;       // top * inWidth + left: the patch's first tap relative to the sample (may be negative)
  uint32_t inside;  // small kernels: the taps of this patch inside the image
  uintptr_t origin;  // small kernels: the address of the patch's first tap (sample + corner)
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t k) const {
    uint32_t r, kj;
    const uint32_t ci = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    const int iy = top + int(ki), ix = left + int(kj);
    if (unsigned(iy) >= g.inHeight || unsigned(ix) >= g.inWidth) return T(0);  // negative wraps above the bounds
    return sample[ci * g.inPixels() + unsigned(iy) * g.inWidth + unsigned(ix)];
  }
  __device__ __forceinline__ T at(const ConvTap& t) const {
    const int iy = top + t.row, ix = left + t.column;
    if (unsigned(iy) >= g.inHeight || unsigned(ix) >= g.inWidth) return T(0);
    return sample[corner + t.offset];
  }
  __device__ __forceinline__ T at(const ConvMaskedTap& t) const { return inside & t.bits ? readAt<T>(origin, t.offset) : T(0); }
};

// One patch row (the weight gradient's B operand, read along the columns j).
template <class T>
struct PatchRow {
  const T* channel;  // x at (0, ci, 0, 0)
  int tapY, tapX;    // the kernel row and column minus the padding
  int tapOffset;     // tapY * inWidth + tapX (may be negative)
  uint32_t tapBit;   // small kernels: bit ki * kernelWidth + kj
  uintptr_t origin;  // small kernels: the address of channel + tapOffset
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t j) const {
    uint32_t p, ox;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p), oy = g.byOutWidth.split(p, ox);
    const int iy = int(oy * g.stride) + tapY, ix = int(ox * g.stride) + tapX;
    if (unsigned(iy) >= g.inHeight || unsigned(ix) >= g.inWidth) return T(0);
    return channel[int64_t(n) * g.inChannels * g.inPixels() + unsigned(iy) * g.inWidth + unsigned(ix)];
  }
  // t: output pixel j's sample offset plus its input position (oy * stride, ox * stride)
  __device__ __forceinline__ T at(const ConvTap& t) const {
    const int iy = t.row + tapY, ix = t.column + tapX;
    if (unsigned(iy) >= g.inHeight || unsigned(ix) >= g.inWidth) return T(0);
    return channel[t.offset + tapOffset];
  }
  // t.bits: the taps inside the image for output pixel j
  __device__ __forceinline__ T at(const ConvMaskedTap& t) const { return t.bits & tapBit ? readAt<T>(origin, t.offset) : T(0); }
};

// The patch matrix as the forward's B (k, j) ...
template <class T>
struct PatchLoader {
  static constexpr bool kColumnTaps = true;
  using Tap = ConvTap;
  using MaskedTap = ConvMaskedTap;
  const T* x;
  ConvGeometry g;
  __host__ __device__ __forceinline__ bool tapMasks() const { return g.smallKernel; }
  __device__ __forceinline__ PatchColumn<T> column(int64_t j) const {
    uint32_t p, ox;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p), oy = g.byOutWidth.split(p, ox);
    const int top = int(oy * g.stride) - g.padding, left = int(ox * g.stride) - g.padding;
    const uint32_t inside = g.smallKernel ? tapBox(firstInside(top, g.kernelHeight), endInside(top, g.inHeight, g.kernelHeight), firstInside(left, g.kernelWidth),
                                                   endInside(left, g.inWidth, g.kernelWidth), g)
                                          : 0u;
    const T* sample = x + int64_t(n) * g.inChannels * g.inPixels();
    const int corner = top * int(g.inWidth) + left;
    return {sample, top, left, corner, inside, addressOf(sample, corner), g};
  }
  __device__ __forceinline__ ConvMaskedTap maskedTap(int k) const {
    uint32_t r, kj;
    const uint32_t ci = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    return {int(ci * g.inPixels() + ki * g.inWidth + kj), 1u << r};
  }
  // k = (ci, ki, kj): the tap's offset from the patch's first tap
  __device__ __forceinline__ ConvTap tap(int k) const {
    uint32_t r, kj;
    const uint32_t ci = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    return {int(ci * g.inPixels() + ki * g.inWidth + kj), int16_t(ki), int16_t(kj)};
  }
};

// ... and transposed, as the weight gradient's B (j, k).
template <class T>
struct PatchLoaderTransposed {
  static constexpr bool kColumnTaps = true;
  using Tap = ConvTap;
  using MaskedTap = ConvMaskedTap;
  const T* x;
  ConvGeometry g;
  __host__ __device__ __forceinline__ bool tapMasks() const { return g.smallKernel; }
  __device__ __forceinline__ PatchRow<T> column(int64_t k) const {
    uint32_t r, kj;
    const uint32_t ci = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    const int tapY = int(ki) - g.padding, tapX = int(kj) - g.padding;
    const T* channel = x + int64_t(ci) * g.inPixels();
    const int tapOffset = tapY * int(g.inWidth) + tapX;
    return {channel, tapY, tapX, tapOffset, g.smallKernel ? 1u << r : 0u, addressOf(channel, tapOffset), g};
  }
  // j = (n, oy, ox): its offset as tap() gives it, and the taps whose input pixel lies inside the image
  __device__ __forceinline__ ConvMaskedTap maskedTap(int j) const {
    uint32_t p, ox;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p), oy = g.byOutWidth.split(p, ox);
    const int top = int(oy * g.stride) - g.padding, left = int(ox * g.stride) - g.padding;
    const uint32_t inside = tapBox(firstInside(top, g.kernelHeight), endInside(top, g.inHeight, g.kernelHeight), firstInside(left, g.kernelWidth),
                                   endInside(left, g.inWidth, g.kernelWidth), g);
    return {int(n * g.inChannels * g.inPixels() + oy * g.stride * g.inWidth + ox * g.stride), inside};
  }
  // j = (n, oy, ox) along the GEMM's k: the sample's offset plus the pixel's input position (below 2^31 elements and 32768 per side)
  __device__ __forceinline__ ConvTap tap(int j) const {
    uint32_t p, ox;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p), oy = g.byOutWidth.split(p, ox);
    const uint32_t iy = oy * g.stride, ix = ox * g.stride;
    return {int(n * g.inChannels * g.inPixels() + iy * g.inWidth + ix), int16_t(iy), int16_t(ix)};
  }
};

// y[n, co, p] = value (+ bias[co]) for output row co, column j = (n, p).
template <class T>
struct ConvOutputStore {
  T* y;
  const T* bias;
  ConvGeometry g;
  __device__ __forceinline__ void operator()(int, int64_t co, int64_t j, T value) const {
    uint32_t p;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p);
    y[(int64_t(n) * g.outChannels + unsigned(co)) * g.outPixels() + p] = bias ? value + bias[co] : value;
  }
};

// The input gradient as a GEMM over k = (output channel, kernel row, kernel column):
// A(ci, k) = w[co, ci, ki, kj], which is row ci of the weights with their two leading axes swapped
// (swapLeadingAxesKernel: a dense, row-major A, staged 16 bytes at a time like the forward's weights);
// B(k, j) = dy[n, co, oy, ox] at the output pixel whose patch puts tap (ki, kj) on input pixel
// j = (n, iy, ix), or 0 where there is none (stride, borders).
//
// w [outer][inner][run] -> out [inner][outer][run]: a weight-sized copy per backward, so that the GEMM's
// A loader reads rows instead of splitting every element's k (a few instructions each, per slice and block).
template <class T>
__global__ void swapLeadingAxesKernel(int64_t outer, int64_t inner, int64_t run, const T* w, T* out) {
  const int64_t count = outer * inner * run;
  for (int64_t i = globalThreadIndex(); i < count; i += globalThreadCount()) {
    const int64_t r = i % run, rest = i / run, o = rest % outer, n = rest / outer;  // i = (n, o, r) in out
    out[i] = w[(o * inner + n) * run + r];
  }
}

// UnitStride: the output pixel is (ny, nx) itself, no division by the stride (the CSNN's convolutions; two
// of the four index splits of an element).
template <class T, bool UnitStride>
struct OutputGradientColumn {
  const T* sample;  // dy at (n, 0, 0, 0)
  int y, x;         // the input pixel plus the padding
  int corner;       // y * outWidth + x (unit stride: the output pixel of tap (0, 0))
  uint32_t inside;  // unit stride, small kernels: the taps whose output pixel lies inside dy's planes
  uintptr_t origin;  // unit stride, small kernels: the address of sample + corner
  ConvGeometry g;
  // unit stride: t.offset = co * outPixels - ki * outWidth - kj, (t.row, t.column) = (ki, kj)
  __device__ __forceinline__ T at(const ConvTap& t) const {
    static_assert(UnitStride, "taps for unit strides only");
    const int ny = y - t.row, nx = x - t.column;
    if (unsigned(ny) >= g.outHeight || unsigned(nx) >= g.outWidth) return T(0);
    return sample[corner + t.offset];
  }
  __device__ __forceinline__ T at(const ConvMaskedTap& t) const {
    static_assert(UnitStride, "taps for unit strides only");
    return inside & t.bits ? readAt<T>(origin, t.offset) : T(0);
  }
  __device__ __forceinline__ T operator()(int64_t k) const {
    uint32_t r, kj;
    const uint32_t co = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    const int ny = y - int(ki), nx = x - int(kj);
    if constexpr (UnitStride) {
      if (unsigned(ny) >= g.outHeight || unsigned(nx) >= g.outWidth) return T(0);  // negative wraps above the bounds
      return sample[co * g.outPixels() + unsigned(ny) * g.outWidth + unsigned(nx)];
    } else {
      if (ny < 0 || nx < 0) return T(0);
      uint32_t restY, restX;
      const uint32_t oy = g.byStride.split(unsigned(ny), restY), ox = g.byStride.split(unsigned(nx), restX);
      if (restY != 0 || restX != 0 || oy >= g.outHeight || ox >= g.outWidth) return T(0);
      return sample[co * g.outPixels() + oy * g.outWidth + ox];
    }
  }
};

template <class T, bool UnitStride>
struct OutputGradientLoader {
  static constexpr bool kColumnTaps = UnitStride;
  using Tap = ConvTap;
  using MaskedTap = ConvMaskedTap;
  const T* dy;
  ConvGeometry g;
  __host__ __device__ __forceinline__ bool tapMasks() const { return g.smallKernel; }
  __device__ __forceinline__ OutputGradientColumn<T, UnitStride> column(int64_t j) const {
    uint32_t q, ix;
    const uint32_t n = g.byInPixels.split(uint32_t(j), q), iy = g.byInWidth.split(q, ix);
    const int y = int(iy) + g.padding, x = int(ix) + g.padding;
    // tap (ki, kj) reads dy at (y - ki, x - kj): inside for ki in (y - outHeight, y] and kj in (x - outWidth, x]
    uint32_t inside = 0;
    if (UnitStride && g.smallKernel)
      inside = tapBox(clampedTo(y - int(g.outHeight) + 1, g.kernelHeight), clampedTo(y + 1, g.kernelHeight),
                      clampedTo(x - int(g.outWidth) + 1, g.kernelWidth), clampedTo(x + 1, g.kernelWidth), g);
    const T* sample = dy + int64_t(n) * g.outChannels * g.outPixels();
    const int corner = y * int(g.outWidth) + x;
    return {sample, y, x, corner, inside, addressOf(sample, corner), g};
  }
  __device__ __forceinline__ ConvMaskedTap maskedTap(int k) const {
    uint32_t r, kj;
    const uint32_t co = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    return {int(co * g.outPixels()) - int(ki * g.outWidth + kj), 1u << r};
  }
  // k = (co, ki, kj)
  __device__ __forceinline__ ConvTap tap(int k) const {
    uint32_t r, kj;
    const uint32_t co = g.byTaps.split(uint32_t(k), r), ki = g.byKernelWidth.split(r, kj);
    return {int(co * g.outPixels()) - int(ki * g.outWidth + kj), int16_t(ki), int16_t(kj)};
  }
};

template <class T>
struct InputGradientStore {
  T* dx;
  ConvGeometry g;
  __device__ __forceinline__ void operator()(int, int64_t ci, int64_t j, T value) const {
    uint32_t q;
    const uint32_t n = g.byInPixels.split(uint32_t(j), q);
    dx[(int64_t(n) * g.inChannels + unsigned(ci)) * g.inPixels() + q] = value;
  }
};

// dy as the A operand of the weight gradient: A(co, j) = dy[n, co, p] for j = (n, p).
template <class T>
struct OutputGradientRow {
  const T* channel;  // dy at (0, co, 0, 0)
  ConvGeometry g;
  __device__ __forceinline__ T operator()(int64_t j) const {
    uint32_t p;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p);
    return channel[int64_t(n) * g.outChannels * g.outPixels() + p];
  }
};

template <class T>
struct OutputGradientRows {
  static constexpr bool kRowAlongK = true;  // a plane of dy is contiguous (gemm.cuh)
  static constexpr bool kRowSegments = true;
  const T* dy;
  ConvGeometry g;
  __device__ __forceinline__ OutputGradientRow<T> row(int64_t co) const { return {dy + co * int64_t(g.outPixels()), g}; }
  // dy[n, co, p] for j = (n, p); with planes of a multiple of 4 pixels, 4 values from a j that is a multiple
  // of 4 lie in one plane, one after the other
  __device__ __forceinline__ const T* segment(int co, int j) const {
    uint32_t p;
    const uint32_t n = g.byOutPixels.split(uint32_t(j), p);
    return dy + (int64_t(n) * g.outChannels + unsigned(co)) * g.outPixels() + p;
  }
  __device__ __forceinline__ bool segmentsAligned() const { return g.outPixels() % 4 == 0 && (reinterpret_cast<uintptr_t>(dy) & 15) == 0; }
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
  gemmLaunch<T>(s.outChannels, s.batch * s.outHeight() * s.outWidth(), s.patchSize(), DenseMatrix<T, false>{w, s.patchSize()},
                PatchLoader<T>{x, g}, ConvOutputStore<T>{y, bias, g});
}

template <class T>
void conv2dBackwardInput(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const ConvGeometry g(s);
  const int64_t taps = s.kernelHeight * s.kernelWidth;
  const int64_t M = s.inChannels, N = s.batch * s.inHeight * s.inWidth, K = s.outChannels * taps;
  Scratch<T> rows(size_t(M * K));  // A: w with (co, ci) swapped, [ci][co][tap]
  launch(swapLeadingAxesKernel<T>, blocksFor(M * K), dim3(kThreads), 0, currentStream(), int64_t(s.outChannels), M, taps, w,
         rows.get());
  const DenseMatrix<T, false> a{rows.get(), K};
  if (s.stride == 1)
    gemmLaunch<T>(M, N, K, a, OutputGradientLoader<T, true>{dy, g}, InputGradientStore<T>{dx, g});
  else
    gemmLaunch<T>(M, N, K, a, OutputGradientLoader<T, false>{dy, g}, InputGradientStore<T>{dx, g});
}

template <class T>
void conv2dBackwardWeight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const ConvGeometry g(s);
  const int64_t pixels = s.outHeight() * s.outWidth();
  gemmLaunch<T>(s.outChannels, s.patchSize(), s.batch * pixels, OutputGradientRows<T>{dy, g},
                PatchLoaderTransposed<T>{x, g}, AccumulateStore<T>{dw, s.patchSize()});
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
