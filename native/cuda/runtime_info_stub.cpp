// Linked instead of runtime_info.cu when the addon is built without nvcc (the node-gyp/prebuildify build).
#include "runtime_info.h"

namespace ikun::cuda {

RuntimeInfo queryRuntime() {
  RuntimeInfo info;
  info.reason = "this build of ikun has no CUDA support";
  info.detail = "it was built without nvcc; install ikun's prebuilt package or rebuild with CUDA 13 installed";
  return info;
}

}  // namespace ikun::cuda
