#include "host_allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ikun::cpu {
namespace {

constexpr size_t kCacheLimit = size_t(4) << 30;  // keep at most 4 GiB of freed blocks

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

// Bytes in blocks handed out and not yet freed: what live tensors hold, to tell a leak from a full cache.
std::atomic<size_t> liveBytes{0};

}  // namespace

// Every size is cached, small blocks too: tensor blocks handed back to malloc between the long-lived
// small objects of Node and V8 fragment malloc's heap, which then grows although little of it is in use
// (a CSNN loop of small tensors that never yields: RSS +186 MB per 1,000 steps with 26 MB in use, +18 MB
// with every size cached). Reused by exact size, tensor blocks never interleave with other allocations.
void* hostAllocate(size_t bytes) {
  size_t size = rounded(bytes);
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.blocks.find(size);
    if (it != c.blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      c.cachedBytes -= size;
      liveBytes += size;
      return block;
    }
  }
  void* block = std::aligned_alloc(64, size);
  if (!block) {
    hostEmptyCache();  // give cached blocks back and try once more
    block = std::aligned_alloc(64, size);
  }
  if (block) liveBytes += size;
  return block;
}

void hostFree(void* data, size_t bytes) {
  if (!data) return;
  size_t size = rounded(bytes);
  liveBytes -= size;
  {
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

size_t hostLiveBytes() { return liveBytes.load(); }

void hostEmptyCache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, list] : c.blocks)
    for (void* block : list) std::free(block);
  c.blocks.clear();
  c.cachedBytes = 0;
}

}  // namespace ikun::cpu
