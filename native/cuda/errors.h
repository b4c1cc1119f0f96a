// CUDA errors as C++ exceptions: every runtime call of ikun is checked, and a failure is thrown with the
// call that failed and the runtime's name and description of the error. The bindings turn it into a
// JS Error; nothing aborts the process.
#pragma once
#include <stdexcept>
#include <string>

#include "device.cuh"

namespace ikun::cuda {

class CudaError : public std::runtime_error {
 public:
  CudaError(cudaError_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  throw CudaError(status, std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                              cudaGetErrorString(status) + ")");
}

}  // namespace ikun::cuda
