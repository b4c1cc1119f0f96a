// Fill, copy, convert, axpy, scale, zeroAll, addToTotals and the time-axis helpers: the twin of
// cpu/elementwise.cpp.
#include "../common/metrics_rules.h"
#include "common.cuh"
#include "tensor_table.cuh"

namespace ikun::cuda {
namespace {

template <class T>
__global__ void fillKernel(int64_t n, T value, T* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) y[i] = value;
}

template <class T>
__global__ void axpyKernel(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) y[i] += alpha * x[i];
}

// A buffer of zeroAll, as 32-bit words (every dtype's size is a multiple of 4 bytes).
struct ZeroEntry {
  uint32_t* words;
  int64_t count;
};
constexpr int64_t kZeroChunk = 1 << 14;  // words per block

__global__ void zeroAllKernel(const TensorTable<ZeroEntry> table) {
  int64_t chunk;
  const ZeroEntry& e = table.entries[tableEntryOfBlock(table, chunk)];
  const int64_t begin = chunk * kZeroChunk, end = minIndex(e.count, begin + kZeroChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) e.words[i] = 0u;
}

template <class T>
__global__ void addToTotalsKernel(int64_t n, const T* step, T* totals, T* finiteSteps) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount())
    addToTotal(step[i], totals[i], finiteSteps ? finiteSteps + i : nullptr);
}

template <class T>
__global__ void scaleKernel(int64_t n, T alpha, T* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) y[i] *= alpha;
}

template <class From, class To>
__global__ void convertKernel(int64_t n, const From* x, To* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) y[i] = To(x[i]);
}

template <class T>
__global__ void repeatLeadingKernel(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  for (int64_t i = globalThreadIndex(); i < width; i += globalThreadCount()) {
    const T v = scale * x[i];
    for (int64_t t = 0; t < steps; ++t) y[t * width + i] = v;
  }
}

// The sum over t in order, as the CPU adds it.
template <class T>
__global__ void sumLeadingKernel(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  for (int64_t i = globalThreadIndex(); i < width; i += globalThreadCount()) {
    T s = T(0);
    for (int64_t t = 0; t < steps; ++t) s += x[t * width + i];
    y[i] = scale * s;
  }
}

template <class T>
__global__ void gatherRowsKernel(int64_t rowCount, int64_t rowSize, const T* rows, const int32_t* indices, int64_t first,
                                 int64_t count, T* out) {
  const int64_t n = rowSize * count;
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) {
    const int64_t r = i / rowSize, j = i - r * rowSize, source = indices[first + r];
    out[i] = source >= 0 && source < rowCount ? rows[source * rowSize + j] : T(0);  // device indices cannot be checked on the host
  }
}

}  // namespace

template <class T>
void gatherRows(int64_t rowCount, int64_t rowSize, const T* rows, const int32_t* indices, int64_t first, int64_t count, T* out) {
  launch(gatherRowsKernel<T>, blocksFor(rowSize * count), dim3(kThreads), 0, currentStream(), rowCount, rowSize, rows, indices, first,
         count, out);
}

template <class T>
void fill(int64_t n, T value, T* y) {
  launch(fillKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, value, y);
}

template <class T>
void copy(int64_t n, const T* x, T* y) {
  if (n > 0 && x != y) copyDeviceToDevice(currentDevice(), y, x, size_t(n) * sizeof(T));
}

template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
  launch(axpyKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, alpha, x, y);
}

void zeroAll(void* const* buffers, const int64_t* bytes, int count) {
  for (int t = 0; t < count; ++t)
    if (bytes[t] % 4 != 0) throw std::invalid_argument("zeroAll: a buffer's size is not a multiple of 4 bytes");
  forEachTensorTable<ZeroEntry>(
      count, [&](int t) { return ZeroEntry{static_cast<uint32_t*>(buffers[t]), bytes[t] / 4}; },
      [](const ZeroEntry& e) { return (e.count + kZeroChunk - 1) / kZeroChunk; },
      [](const TensorTable<ZeroEntry>& table, int, unsigned blocks) {
        launch(zeroAllKernel, dim3(blocks), dim3(kThreads), 0, currentStream(), table);
      });
}

template <class T>
void addToTotals(int64_t n, const T* step, T* totals, T* finiteSteps) {
  launch(addToTotalsKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, step, totals, finiteSteps);
}

template <class T>
void scale(int64_t n, T alpha, T* y) {
  launch(scaleKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, alpha, y);
}

template <class T>
void convert(int64_t n, const T* x, float* yf, double* yd) {
  if (yf) launch(convertKernel<T, float>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, x, yf);
  else launch(convertKernel<T, double>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, x, yd);
}

template <class T>
void repeatLeading(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  launch(repeatLeadingKernel<T>, blocksFor(width), dim3(kThreads), 0, currentStream(), steps, width, scale, x, y);
}

template <class T>
void sumLeading(int64_t steps, int64_t width, T scale, const T* x, T* y) {
  launch(sumLeadingKernel<T>, blocksFor(width), dim3(kThreads), 0, currentStream(), steps, width, scale, x, y);
}

#define IKUN_INSTANTIATE(T)                                                    \
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
template void gatherRows<float>(int64_t, int64_t, const float*, const int32_t*, int64_t, int64_t, float*);
template void gatherRows<double>(int64_t, int64_t, const double*, const int32_t*, int64_t, int64_t, double*);
template void gatherRows<int32_t>(int64_t, int64_t, const int32_t*, const int32_t*, int64_t, int64_t, int32_t*);
template void fill<float>(int64_t, float, float*);
template void fill<double>(int64_t, double, double*);
template void fill<int32_t>(int64_t, int32_t, int32_t*);

}  // namespace ikun::cuda
