// Grow-only scratch buffers reused across calls, so large im2col buffers are not re-faulted every step.
#pragma once
#include <cstddef>
#include <vector>

namespace ikun::cpu {

template <class T>
T* workspace(int slot, size_t count) {
  thread_local std::vector<std::vector<unsigned char>> buffers(4);
  auto& buffer = buffers.at(slot);
  if (buffer.size() < count * sizeof(T)) buffer.resize(count * sizeof(T));
  return reinterpret_cast<T*>(buffer.data());
}

}  // namespace ikun::cpu
