// Caching host allocator: training allocates the same large activation buffers every step, and fresh
// pages from the OS cost a page fault each (about 50 ms per 200 MB). Freed blocks are kept by exact size
// and handed out again; the cache is bounded and can be emptied.
#pragma once
#include <cstddef>

namespace ikun::cpu {

void* hostAllocate(size_t bytes);          // 64-byte aligned; nullptr when out of memory
void hostFree(void* data, size_t bytes);   // bytes: the size given to hostAllocate
size_t hostCachedBytes();
void hostEmptyCache();

}  // namespace ikun::cpu
