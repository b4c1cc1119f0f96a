#include <cstdlib>
#include <string>

#include "device.cuh"
#include "runtime_info.h"

namespace ikun::cuda {

RuntimeInfo queryRuntime() {
  RuntimeInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtimeVersion);
  cudaError_t driverStatus = cudaDriverGetVersion(&info.driverVersion);
  if (driverStatus != cudaSuccess || info.driverVersion == 0) {
    cudaGetLastError();
    info.reason = "no CUDA GPU found";
    info.detail = "no NVIDIA driver is installed or loaded";
    return info;
  }
  if (info.driverVersion < info.runtimeVersion) {
    info.reason = "the NVIDIA driver is too old for this build of ikun";
    info.detail = "the driver supports CUDA " + std::to_string(info.driverVersion / 1000) + "." +
                  std::to_string(info.driverVersion % 1000 / 10) + ", ikun was built with CUDA " +
                  std::to_string(info.runtimeVersion / 1000) + "." + std::to_string(info.runtimeVersion % 1000 / 10) +
                  "; update the NVIDIA driver";
    return info;
  }
  cudaError_t status = cudaGetDeviceCount(&info.deviceCount);
  if (status != cudaSuccess) {
    info.deviceCount = 0;
    cudaGetLastError();
    info.reason = status == cudaErrorNoDevice ? "no CUDA GPU found" : "CUDA could not list the GPUs";
    info.detail = cudaGetErrorString(status);
  } else if (info.deviceCount == 0) {
    info.reason = "no CUDA GPU found";
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    if (visible) info.detail = std::string("CUDA_VISIBLE_DEVICES is '") + visible + "'";
  }
  return info;
}

}  // namespace ikun::cuda
