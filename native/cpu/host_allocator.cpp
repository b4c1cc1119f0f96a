#include "host_allocator.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ikun::cpu {
namespace {

constexpr size_t kCacheLimit = size_t(4) << 30;  // keep at most 4 GiB of freed blocks
constexpr size_t kMinCached = size_t(1) << 16;   // small blocks go straight back to malloc

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> blocks;
  size_t cachedBytes = 0;
};

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: finalizers may run during teardown
  return *instance;
}

size_t rounded(size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

void* hostAllocate(size_t bytes) {
  size_t size = rounded(bytes);
  if (size >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.blocks.find(size);
    if (it != c.blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      c.cachedBytes -= size;
      return block;
    }
  }
  void* block = std::aligned_alloc(64, size);
  if (!block && size >= kMinCached) {
    hostEmptyCache();  // give cached blocks back and try once more
    block = std::aligned_alloc(64, size);
  }
  return block;
}

void hostFree(void* data, size_t bytes) {
  if (!data) return;
  size_t size = rounded(bytes);
  if (size >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cachedBytes + size <= kCacheLimit) {
      c.blocks[size].push_back(data);
      c.cachedBytes += size;
      return;
    }
  }
  std::free(data);
}

size_t hostCachedBytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cachedBytes;
}

void hostEmptyCache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, list] : c.blocks)
    for (void* block : list) std::free(block);
  c.blocks.clear();
  c.cachedBytes = 0;
}

}  // namespace ikun::cpu
