// Linked instead of runtime_info.cu when the addon is built without nvcc (either build: CMake or node-gyp).
#include "runtime_info.h"

namespace ikun::cuda {

RuntimeInfo queryRuntime() {
  RuntimeInfo info;
  info.reason = "this build of ikun has no CUDA support";
  info.detail =
      "it was built without nvcc; the prebuilt linux-x64 binary has the CUDA kernels (npm install without "
      "IKUN_BUILD_FROM_SOURCE=1), or install CUDA 13 (nvcc) and run npm install again to build them";
  return info;
}

}  // namespace ikun::cuda
