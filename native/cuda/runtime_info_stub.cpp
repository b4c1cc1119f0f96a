// Linked instead of runtime_info.cu when the addon is built without nvcc (the node-gyp/prebuildify build).
#include "runtime_info.h"

namespace ikun::cuda {

RuntimeInfo queryRuntime() {
  RuntimeInfo info;
  info.reason = "this build of ikun has no CUDA support (built without nvcc); rebuild with CUDA 13 installed "
                "(npm rebuild ikun) or use device 'cpu'";
  return info;
}

}  // namespace ikun::cuda
