// Optimiser updates (the twin of cpu/optim.cpp, the rules of common/optim_rules.h): one launch updates
// every parameter of a model. The host lists the tensors and cuts them into chunks; both tables go to
// the device with the launch, and each block updates one chunk.
#include <vector>

#include "../common/optim_rules.h"
#include "common.cuh"

namespace ikun::cuda {
namespace {

constexpr int64_t kChunk = 1 << 16;

struct Chunk {
  int tensor;
  int64_t begin, end;
};

template <class Entry>
std::vector<Chunk> chunksOf(const Entry* tensors, int count) {
  std::vector<Chunk> chunks;
  for (int t = 0; t < count; ++t)
    for (int64_t begin = 0; begin < tensors[t].count; begin += kChunk)
      chunks.push_back(Chunk{t, begin, begin + kChunk < tensors[t].count ? begin + kChunk : tensors[t].count});
  return chunks;
}

// Copies a host table to device scratch (queued on the stream, so it is there before the kernel runs).
template <class Item>
class DeviceTable {
 public:
  explicit DeviceTable(const std::vector<Item>& items) : scratch_(items.size()) {
    copyHostToDevice(currentDevice(), scratch_.get(), items.data(), items.size() * sizeof(Item));
  }
  const Item* get() const { return scratch_.get(); }

 private:
  Scratch<Item> scratch_;
};

template <class T>
__global__ void sgdKernel(const SgdTensor<T>* tensors, const Chunk* chunks, SgdRule<T> rule) {
  const Chunk c = chunks[blockIdx.x];
  const SgdTensor<T> t = tensors[c.tensor];
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x)
    rule.apply(t.param[i], t.grad[i], t.momentumBuffer ? t.momentumBuffer + i : nullptr, t.firstStep);
}

template <class T>
struct AdamEntry {
  AdamTensor<T> tensor;
  AdamRule<T> rule;
};

template <class T>
__global__ void adamKernel(const AdamEntry<T>* entries, const Chunk* chunks) {
  const Chunk c = chunks[blockIdx.x];
  const AdamEntry<T>& e = entries[c.tensor];
  const AdamRule<T> rule = e.rule;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x)
    rule.apply(e.tensor.param[i], e.tensor.grad[i], e.tensor.expAvg[i], e.tensor.expAvgSq[i]);
}

}  // namespace

template <class T>
void sgdStep(const SgdTensor<T>* tensors, int tensorCount, const SgdParams& p) {
  const std::vector<Chunk> chunks = chunksOf(tensors, tensorCount);
  if (chunks.empty()) return;
  const DeviceTable<SgdTensor<T>> table(std::vector<SgdTensor<T>>(tensors, tensors + tensorCount));
  const DeviceTable<Chunk> chunkTable(chunks);
  launch(sgdKernel<T>, dim3(unsigned(chunks.size())), dim3(kThreads), 0, currentStream(), table.get(), chunkTable.get(),
         SgdRule<T>(p));
}

template <class T>
void adamStep(const AdamTensor<T>* tensors, int tensorCount, const AdamParams& p) {
  const std::vector<Chunk> chunks = chunksOf(tensors, tensorCount);
  if (chunks.empty()) return;
  std::vector<AdamEntry<T>> entries;
  for (int t = 0; t < tensorCount; ++t) {
    AdamParams own = p;
    own.step = tensors[t].step;  // bias correction by the tensor's own count (PyTorch)
    entries.push_back(AdamEntry<T>{tensors[t], AdamRule<T>(own)});
  }
  const DeviceTable<AdamEntry<T>> table(entries);
  const DeviceTable<Chunk> chunkTable(chunks);
  launch(adamKernel<T>, dim3(unsigned(chunks.size())), dim3(kThreads), 0, currentStream(), table.get(), chunkTable.get());
}

template void sgdStep<float>(const SgdTensor<float>*, int, const SgdParams&);
template void sgdStep<double>(const SgdTensor<double>*, int, const SgdParams&);
template void adamStep<float>(const AdamTensor<float>*, int, const AdamParams&);
template void adamStep<double>(const AdamTensor<double>*, int, const AdamParams&);

}  // namespace ikun::cuda
