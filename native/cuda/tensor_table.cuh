// One launch over a list of tensors (a model's parameters or gradients): the optimiser updates and the
// global gradient norm. A table of up to kTensorsPerLaunch entries travels in the kernel's parameters, so
// the launch copies nothing to the device and allocates nothing for it; tensor t owns the consecutive
// blocks firstBlock[t] .. firstBlock[t + 1] - 1, and each block finds its tensor in that running count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "common.cuh"

namespace ikun::cuda {

// 16 Adam entries of float64 tensors are 1.8 KB, well inside the 4 KB of kernel parameters.
constexpr int kTensorsPerLaunch = 16;

template <class Entry>
struct TensorTable {
  Entry entries[kTensorsPerLaunch];
  int64_t firstBlock[kTensorsPerLaunch + 1];
  int count;
};

// The entry the calling block works on, and the block's index among that entry's blocks.
template <class Entry>
__device__ __forceinline__ int tableEntryOfBlock(const TensorTable<Entry>& table, int64_t& blockInEntry) {
  const int64_t block = blockIdx.x;
  int t = 0;
  while (t + 1 < table.count && table.firstBlock[t + 1] <= block) ++t;
  blockInEntry = block - table.firstBlock[t];
  return t;
}

// Splits tensors 0 .. tensorCount - 1 into tables of kTensorsPerLaunch and calls launchTable(table, first,
// blocks) for each, first being the table's first tensor; entryOf(t) gives tensor t's entry and
// blocksOf(entry) the blocks it needs.
template <class Entry, class EntryOf, class BlocksOf, class LaunchTable>
void forEachTensorTable(int tensorCount, EntryOf entryOf, BlocksOf blocksOf, LaunchTable launchTable) {
  for (int first = 0; first < tensorCount; first += kTensorsPerLaunch) {
    TensorTable<Entry> table{};
    table.count = std::min(kTensorsPerLaunch, tensorCount - first);
    int64_t blocks = 0;
    for (int t = 0; t < table.count; ++t) {
      table.entries[t] = entryOf(first + t);
      table.firstBlock[t] = blocks;
      blocks += int64_t(blocksOf(table.entries[t]));
    }
    table.firstBlock[table.count] = blocks;
    if (blocks > 0x7fffffff) throw std::invalid_argument("tensor list: tensors too large for one launch");
    launchTable(table, first, unsigned(blocks));
  }
}

}  // namespace ikun::cuda
