// Caching host allocator: training allocates the same activation buffers every step, and fresh pages
// from the OS cost a page fault each (about 50 ms per 200 MB). Freed blocks of every size are kept by
// exact size and handed out again (see hostAllocate for why small ones too); the cache is bounded and
// can be emptied.
#pragma once
#include <cstddef>

namespace ikun::cpu {

void* hostAllocate(size_t bytes);          // 64-byte aligned; nullptr when out of memory
void hostFree(void* data, size_t bytes);   // bytes: the size given to hostAllocate
size_t hostCachedBytes();
size_t hostLiveBytes();                    // in blocks handed out and not freed yet (tensors alive)
void hostEmptyCache();

}  // namespace ikun::cpu
