// Linear layers on the tile kernel of gemm.cuh (the twin of cpu/linear.cpp): x [batch, in], weight
// [out, in], y [batch, out].
#include "gemm.cuh"

namespace ikun::cuda {
namespace {

// y[b, o] = value + bias[o]
template <class T>
struct BiasedStore {
  T* y;
  const T* bias;
  int64_t ldc;
  __device__ __forceinline__ void operator()(int, int64_t m, int64_t n, T value) const { y[m * ldc + n] = bias ? value + bias[n] : value; }
};

// dbias[o] += sum over the batch of dy[b, o], in double, one thread per feature, in batch order.
template <class T>
__global__ void columnSumKernel(int64_t rows, int64_t columns, const T* dy, T* dbias) {
  for (int64_t o = globalThreadIndex(); o < columns; o += globalThreadCount()) {
    double s = 0;
    for (int64_t b = 0; b < rows; ++b) s += double(dy[b * columns + o]);
    dbias[o] += T(s);
  }
}

}  // namespace

template <class T>
void linearForward(const LinearShape& s, const T* x, const T* w, const T* bias, T* y) {
  gemmLaunch<T>(s.batch, s.outFeatures, s.inFeatures, DenseMatrix<T, false>{x, s.inFeatures},
                DenseMatrix<T, true>{w, s.inFeatures}, BiasedStore<T>{y, bias, s.outFeatures});
}

template <class T>
void linearBackwardInput(const LinearShape& s, const T* dy, const T* w, T* dx) {
  gemmLaunch<T>(s.batch, s.inFeatures, s.outFeatures, DenseMatrix<T, false>{dy, s.outFeatures},
                DenseMatrix<T, false>{w, s.inFeatures}, MatrixStore<T>{dx, s.inFeatures, T(1), T(0)});
}

template <class T>
void linearBackwardWeight(const LinearShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  gemmLaunch<T>(s.outFeatures, s.inFeatures, s.batch, DenseMatrix<T, true>{dy, s.outFeatures},
                DenseMatrix<T, false>{x, s.inFeatures}, MatrixStore<T>{dw, s.inFeatures, T(1), T(1)});
  if (dbias) launch(columnSumKernel<T>, blocksFor(s.outFeatures), dim3(kThreads), 0, currentStream(), s.batch, s.outFeatures, dy, dbias);
}

#define IKUN_INSTANTIATE(T)                                                                        \
  template void linearForward<T>(const LinearShape&, const T*, const T*, const T*, T*);             \
  template void linearBackwardInput<T>(const LinearShape&, const T*, const T*, T*);                 \
  template void linearBackwardWeight<T>(const LinearShape&, const T*, const T*, T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
