// Optimiser updates (the twin of cpu/optim.cpp, the rules of common/optim_rules.h): one launch updates up
// to kTensorsPerLaunch parameters (a model's all, for the CSNN) through a tensor table (tensor_table.cuh);
// each block updates one chunk of kChunk values.
#include <algorithm>
#include <vector>

#include "../common/optim_rules.h"
#include "common.cuh"
#include "tensor_table.cuh"

namespace ikun::cuda {
namespace {

constexpr int64_t kChunk = 1 << 16;

// The block's entry and the value range of its chunk.
template <class Entry>
__device__ __forceinline__ const Entry& chunkOf(const TensorTable<Entry>& table, int64_t& begin, int64_t& end) {
  int64_t chunk;
  const Entry& e = table.entries[tableEntryOfBlock(table, chunk)];
  begin = chunk * kChunk;
  end = begin + kChunk < e.count ? begin + kChunk : e.count;
  return e;
}

template <class T>
__global__ void sgdKernel(const TensorTable<SgdTensor<T>> table, SgdRule<T> rule) {
  int64_t begin, end;
  const SgdTensor<T>& t = chunkOf(table, begin, end);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    rule.apply(t.param[i], t.grad[i], t.momentumBuffer ? t.momentumBuffer + i : nullptr, t.firstStep);
}

template <class T>
struct AdamEntry {
  AdamTensor<T> tensor;
  AdamRule<T> rule;
  int64_t count;  // tensor.count, where chunkOf looks for it
};

template <class T>
__global__ void adamKernel(const TensorTable<AdamEntry<T>> table) {
  int64_t begin, end;
  const AdamEntry<T>& e = chunkOf(table, begin, end);
  const AdamRule<T> rule = e.rule;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    rule.apply(e.tensor.param[i], e.tensor.grad[i], e.tensor.expAvg[i], e.tensor.expAvgSq[i]);
}

// Launches kernel(table, extra...) for each table of kTensorsPerLaunch tensors; entryOf(t) gives tensor t's entry.
template <class Entry, class EntryOf, class Kernel, class... Extra>
void launchInGroups(int tensorCount, EntryOf entryOf, Kernel kernel, const Extra&... extra) {
  forEachTensorTable<Entry>(tensorCount, entryOf, [](const Entry& e) { return (e.count + kChunk - 1) / kChunk; },
                            [&](const TensorTable<Entry>& table, int, unsigned blocks) {
                              launch(kernel, dim3(blocks), dim3(kThreads), 0, currentStream(), table, extra...);
                            });
}

}  // namespace

template <class T>
void sgdStep(const SgdTensor<T>* tensors, int tensorCount, const SgdParams& p) {
  launchInGroups<SgdTensor<T>>(tensorCount, [&](int t) { return tensors[t]; }, sgdKernel<T>, SgdRule<T>(p));
}

template <class T>
void adamStep(const AdamTensor<T>* tensors, int tensorCount, const AdamParams& p) {
  launchInGroups<AdamEntry<T>>(tensorCount, [&](int t) {
    AdamParams own = p;
    own.step = tensors[t].step;  // bias correction by the tensor's own count (PyTorch)
    return AdamEntry<T>{tensors[t], AdamRule<T>(own), tensors[t].count};
  }, adamKernel<T>);
}

template void sgdStep<float>(const SgdTensor<float>*, int, const SgdParams&);
template void sgdStep<double>(const SgdTensor<double>*, int, const SgdParams&);
template void adamStep<float>(const AdamTensor<float>*, int, const AdamParams&);
template void adamStep<double>(const AdamTensor<double>*, int, const AdamParams&);

}  // namespace ikun::cuda
