// What the CUDA runtime reports. Compiled with nvcc when available; otherwise the stub in
// runtime_info_stub.cpp says the build has no CUDA.
#pragma once
#include <string>

namespace ikun::cuda {

struct RuntimeInfo {
  bool compiled = false;
  int deviceCount = 0;
  int runtimeVersion = 0;
  int driverVersion = 0;
  std::string reason;  // why no device is usable, in a few plain words ("no CUDA GPU found"); empty when one is
  std::string detail;  // what lies behind it and what would fix it, when known
};

RuntimeInfo queryRuntime();

}  // namespace ikun::cuda
