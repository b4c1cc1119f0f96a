// Whole-tensor sums in double (metrics, gradient norms, Hessian vector arithmetic): the twin of
// cpu/reduce.cpp, through the one reduction of reduce.cuh.
#include "reduce.cuh"

namespace ikun::cuda {
namespace {

__global__ void finishReductionKernel(const double* partials, int count, DeviceResult r, bool takeSqrt) {
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = blockSum(s);
  if (threadIdx.x == 0) deliver(r, takeSqrt ? sqrt(s) : s);
}

template <class T>
struct ValueTerm {
  const T* x;
  __device__ double operator()(int64_t i) const { return double(x[i]); }
};

template <class T>
struct SquareTerm {
  const T* x;
  __device__ double operator()(int64_t i) const {
    const double v = double(x[i]);
    return v * v;
  }
};

template <class T>
struct ProductTerm {
  const T* x;
  const T* y;
  __device__ double operator()(int64_t i) const { return double(x[i]) * double(y[i]); }
};

}  // namespace

void finishReduction(const double* partials, int count, DeviceResult r, bool takeSqrt) {
  launch(finishReductionKernel, dim3(1), dim3(kThreads), 0, currentStream(), partials, count, r, takeSqrt);
}

void sqrtOfSum(const double* values, int count, DeviceResult r) { finishReduction(values, count, r, true); }

template <class T>
void sum(int64_t n, const T* x, DeviceResult r) {
  reduceSum(n, ValueTerm<T>{x}, r);
}

template <class T>
void sumOfSquares(int64_t n, const T* x, DeviceResult r) {
  reduceSum(n, SquareTerm<T>{x}, r);
}

template <class T>
void dot(int64_t n, const T* x, const T* y, DeviceResult r) {
  reduceSum(n, ProductTerm<T>{x, y}, r);
}

#define IKUN_INSTANTIATE(T)                                              \
  template void sum<T>(int64_t, const T*, DeviceResult);                 \
  template void sumOfSquares<T>(int64_t, const T*, DeviceResult);        \
  template void dot<T>(int64_t, const T*, const T*, DeviceResult);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
