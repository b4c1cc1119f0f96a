// The one reduction: a sum over n terms in double, in a fixed order (the same bits every run). Block b
// sums a fixed contiguous chunk of the terms (each thread a fixed strided subset, then the block's
// fixed tree); a second kernel sums the block results in order and delivers the total. The number of
// blocks depends on n only, never on the device.
#pragma once
#include "common.cuh"

namespace ikun::cuda {

struct ReductionPlan {
  int blocks;
  int64_t chunk;
};

inline ReductionPlan reductionPlan(int64_t n) {
  int64_t blocks = (n + 8191) / 8192;
  if (blocks < 1) blocks = 1;
  if (blocks > 1024) blocks = 1024;
  return {int(blocks), (n + blocks - 1) / blocks};
}

template <class Term>
__global__ void reducePartialsKernel(int64_t n, int64_t chunk, Term term, double* partials) {
  const int64_t begin = int64_t(blockIdx.x) * chunk, end = minIndex(n, begin + chunk);
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += term(i);
  s = blockSum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// A sum that fits one block's chunk, delivered by the block itself: one launch instead of two (a training
// step has several, on a handful of values each). The same bits as reducePartialsKernel and
// finishReduction: adding the other threads' zeros there turns a -0 sum into +0, as `+ 0.0` does here.
template <class Term>
__global__ void reduceInOneBlockKernel(int64_t n, Term term, DeviceResult r) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += term(i);
  s = blockSum(s);
  if (threadIdx.x == 0) deliver(r, s + 0.0);
}

// Sums partials[0..count) in order and delivers the total (its square root when takeSqrt); reduce.cu.
void finishReduction(const double* partials, int count, DeviceResult r, bool takeSqrt);

// term(i) -> double for i in [0, n): the sum goes to r.
template <class Term>
void reduceSum(int64_t n, Term term, DeviceResult r) {
  const ReductionPlan plan = reductionPlan(n);
  if (plan.blocks == 1) {
    launch(reduceInOneBlockKernel<Term>, dim3(1), dim3(kThreads), 0, currentStream(), n, term, r);
    return;
  }
  Scratch<double> partials(size_t(plan.blocks));
  launch(reducePartialsKernel<Term>, dim3(unsigned(plan.blocks)), dim3(kThreads), 0, currentStream(), n, plan.chunk, term,
         partials.get());
  finishReduction(partials.get(), plan.blocks, r, false);
}

}  // namespace ikun::cuda
