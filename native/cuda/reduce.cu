// Whole-tensor sums in double (metrics, gradient norms, Hessian vector arithmetic): the twin of
// cpu/reduce.cpp, through the one reduction of reduce.cuh.
#include <optional>

#include "reduce.cuh"
#include "tensor_table.cuh"

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

// A tensor of a multi-tensor reduction (l2NormOfAll, sumsInto), its reduction plan (as sum or sumOfSquares
// would split it) and, for sumsInto, where its sum goes.
struct NormEntry {
  NormTensor tensor;
  ReductionPlan plan;
  DeviceResult result;
};

template <bool Squares>
__device__ __forceinline__ double termOf(double v) {
  return Squares ? v * v : v;
}

// Block b of a table: the partial sum (of squares when Squares) of its chunk of its tensor, as
// reducePartialsKernel of a ValueTerm or SquareTerm computes it.
template <bool Squares>
__global__ void tablePartialsKernel(const TensorTable<NormEntry> table, double* partials) {
  int64_t blockInEntry;
  const NormEntry& e = table.entries[tableEntryOfBlock(table, blockInEntry)];
  const int64_t begin = blockInEntry * e.plan.chunk, end = minIndex(e.tensor.count, begin + e.plan.chunk);
  double s = 0;
  if (e.tensor.f64) {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += termOf<Squares>(e.tensor.f64[i]);
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += termOf<Squares>(double(e.tensor.f32[i]));
  }
  s = blockSum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// The partials of tensor t of a table summed as finishReductionKernel sums them (every thread of the block
// takes part; the result is complete in thread 0).
__device__ double tensorSumOfPartials(const TensorTable<NormEntry>& table, int t, const double* partials) {
  double s = 0;
  for (int64_t i = table.firstBlock[t] + threadIdx.x; i < table.firstBlock[t + 1]; i += blockDim.x) s += partials[i];
  return blockSum(s);
}

// Each tensor's sum delivered to its own result, as finishReductionKernel delivers it.
__global__ void deliverSumsKernel(const TensorTable<NormEntry> table, const double* partials) {
  for (int t = 0; t < table.count; ++t) {
    const double s = tensorSumOfPartials(table, t, partials);
    if (threadIdx.x == 0) deliver(table.entries[t].result, s);
  }
}

// Each tensor's partials summed as finishReductionKernel sums them; then either those sums are written to
// tensorSums (a list longer than one table, finished by sqrtOfSum) or their square root of their sum, in
// sqrtOfSum's order, is delivered to r.
__global__ void finishNormKernel(const TensorTable<NormEntry> table, const double* partials, double* tensorSums,
                                 DeviceResult r) {
  IKUN_SHARED_ARRAY(double, sums, kTensorsPerLaunch);
  for (int t = 0; t < table.count; ++t) {
    const double s = tensorSumOfPartials(table, t, partials);
    if (threadIdx.x == 0) sums[t] = s;
  }
  __syncthreads();
  if (tensorSums) {
    if (int(threadIdx.x) < table.count) tensorSums[threadIdx.x] = sums[threadIdx.x];
    return;
  }
  double s = int(threadIdx.x) < table.count ? sums[threadIdx.x] : 0.0;
  s = blockSum(s);
  if (threadIdx.x == 0) deliver(r, sqrt(s));
}

}  // namespace

void l2NormOfAll(const NormTensor* tensors, int tensorCount, DeviceResult r) {
  static_assert(kTensorsPerLaunch <= kThreads, "finishNormKernel: one thread per tensor of a table");
  if (tensorCount == 0) {  // the norm of nothing: 0
    launch(finishNormKernel, dim3(1), dim3(kThreads), 0, currentStream(), TensorTable<NormEntry>{}, nullptr, nullptr, r);
    return;
  }
  const bool oneTable = tensorCount <= kTensorsPerLaunch;
  std::optional<Scratch<double>> tensorSums;
  if (!oneTable) tensorSums.emplace(size_t(tensorCount));
  forEachTensorTable<NormEntry>(
      tensorCount, [&](int t) { return NormEntry{tensors[t], reductionPlan(tensors[t].count), r}; },
      [](const NormEntry& e) { return e.plan.blocks; },
      [&](const TensorTable<NormEntry>& table, int first, unsigned blocks) {
        Scratch<double> partials(blocks);  // stream-ordered: free again once queued work has used it
        launch(tablePartialsKernel<true>, dim3(blocks), dim3(kThreads), 0, currentStream(), table, partials.get());
        launch(finishNormKernel, dim3(1), dim3(kThreads), 0, currentStream(), table, partials.get(),
               oneTable ? nullptr : tensorSums->get() + first, r);
      });
  if (!oneTable) sqrtOfSum(tensorSums->get(), tensorCount, r);
}

void sumsInto(const SumInto* sums, int count) {
  forEachTensorTable<NormEntry>(
      count, [&](int t) { return NormEntry{sums[t].tensor, reductionPlan(sums[t].tensor.count), sums[t].result}; },
      [](const NormEntry& e) { return e.plan.blocks; },
      [&](const TensorTable<NormEntry>& table, int, unsigned blocks) {
        Scratch<double> partials(blocks);
        launch(tablePartialsKernel<false>, dim3(blocks), dim3(kThreads), 0, currentStream(), table, partials.get());
        launch(deliverSumsKernel, dim3(1), dim3(kThreads), 0, currentStream(), table, static_cast<const double*>(partials.get()));
      });
}

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
