#include "device.cuh"

#include <string>

#include "runtime_info.h"

namespace ikun::cuda {

RuntimeInfo queryRuntime() {
  RuntimeInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtimeVersion);
  cudaError_t driverStatus = cudaDriverGetVersion(&info.driverVersion);
  if (driverStatus != cudaSuccess || info.driverVersion == 0) {
    info.reason = "no NVIDIA driver found (install the NVIDIA driver, or use device 'cpu')";
    return info;
  }
  if (info.driverVersion < info.runtimeVersion) {
    info.reason = "the NVIDIA driver (" + std::to_string(info.driverVersion) + ") is older than the CUDA runtime ikun was built with (" +
                  std::to_string(info.runtimeVersion) + "); update the driver, or use device 'cpu'";
    return info;
  }
  cudaError_t status = cudaGetDeviceCount(&info.deviceCount);
  if (status != cudaSuccess) {
    info.deviceCount = 0;
    info.reason = std::string("CUDA could not list devices: ") + cudaGetErrorString(status);
    cudaGetLastError();
  } else if (info.deviceCount == 0) {
    info.reason = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES), or use device 'cpu'";
  }
  return info;
}

}  // namespace ikun::cuda
