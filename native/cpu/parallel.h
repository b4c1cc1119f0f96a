// A small persistent thread pool for elementwise, neuron, pooling and BatchNorm loops.
#pragma once
#include <cstdint>
#include <functional>

namespace ikun::cpu {

// Runs body(begin, end) over [0, count) split into contiguous chunks of at least `grain` items.
// Runs inline when the work is small or when called from inside a pool worker.
void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

int threadCount();
// True inside a parallelFor body, where a nested parallelFor runs inline on the calling thread.
bool insideParallelRegion();
void setThreadCount(int threads);

}  // namespace ikun::cpu
