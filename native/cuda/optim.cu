// Optimiser updates (the twin of cpu/optim.cpp, the rules of common/optim_rules.h): one launch updates up
// to kTensorsPerLaunch parameters (a model's all, for the CSNN). The table of those tensors travels in the
// kernel's parameters, so a step copies nothing to the device and allocates nothing; each block updates
// one chunk of kChunk values and finds its tensor in the table's running chunk counts.
#include <algorithm>
#include <vector>

#include "../common/optim_rules.h"
#include "common.cuh"

namespace ikun::cuda {
namespace {

constexpr int64_t kChunk = 1 << 16;
// 16 Adam entries of float64 tensors are 1.8 KB, well inside the 4 KB of kernel parameters.
constexpr int kTensorsPerLaunch = 16;

template <class Entry>
struct LaunchTable {
  Entry entries[kTensorsPerLaunch];
  int64_t firstChunk[kTensorsPerLaunch + 1];  // the chunks of entry t are blocks firstChunk[t] .. firstChunk[t + 1] - 1
  int count;
};

// The block's entry and the value range of its chunk.
template <class Entry>
__device__ __forceinline__ const Entry& chunkOf(const LaunchTable<Entry>& table, int64_t& begin, int64_t& end) {
  const int64_t block = blockIdx.x;
  int t = 0;
  while (t + 1 < table.count && table.firstChunk[t + 1] <= block) ++t;
  const Entry& e = table.entries[t];
  begin = (block - table.firstChunk[t]) * kChunk;
  end = begin + kChunk < e.count ? begin + kChunk : e.count;
  return e;
}

template <class T>
__global__ void sgdKernel(const LaunchTable<SgdTensor<T>> table, SgdRule<T> rule) {
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
__global__ void adamKernel(const LaunchTable<AdamEntry<T>> table) {
  int64_t begin, end;
  const AdamEntry<T>& e = chunkOf(table, begin, end);
  const AdamRule<T> rule = e.rule;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    rule.apply(e.tensor.param[i], e.tensor.grad[i], e.tensor.expAvg[i], e.tensor.expAvgSq[i]);
}

// Launches kernel(table, extra...) for each group of kTensorsPerLaunch tensors; entryOf(t) gives tensor t's entry.
template <class Entry, class EntryOf, class Kernel, class... Extra>
void launchInGroups(int tensorCount, EntryOf entryOf, Kernel kernel, const Extra&... extra) {
  for (int first = 0; first < tensorCount; first += kTensorsPerLaunch) {
    LaunchTable<Entry> table{};
    table.count = std::min(kTensorsPerLaunch, tensorCount - first);
    int64_t chunks = 0;
    for (int t = 0; t < table.count; ++t) {
      table.entries[t] = entryOf(first + t);
      table.firstChunk[t] = chunks;
      chunks += (table.entries[t].count + kChunk - 1) / kChunk;
    }
    table.firstChunk[table.count] = chunks;
    if (chunks > 0x7fffffff) throw std::invalid_argument("optimiser step: tensors too large for one launch");
    launch(kernel, dim3(unsigned(chunks)), dim3(kThreads), 0, currentStream(), table, extra...);
  }
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
