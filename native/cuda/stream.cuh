// For kernel wrappers: the stream of the device current on this thread (runtime.h, DeviceGuard), on which
// every kernel and copy of that device is queued, and device scratch memory from the caching allocator.
#pragma once
#include <cstddef>

#include "device.cuh"
#include "runtime.h"

namespace ikun::cuda {

cudaStream_t currentStream();

// Device memory for the duration of one op (split-K partial sums, reduction partials, recomputed
// membranes). Returning it to the cache at the end of the op is safe although the kernels are still
// queued: the next user of the block is queued behind them on the same stream.
template <class T>
class Scratch {
 public:
  explicit Scratch(size_t count) : device_(currentDevice()), data_(static_cast<T*>(allocate(device_, count * sizeof(T)))) {}
  ~Scratch() { release(device_, data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }

 private:
  int device_;
  T* data_;
};

}  // namespace ikun::cuda
