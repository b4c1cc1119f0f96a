// The one launch helper: every kernel of ikun starts here. Under nvcc it calls cudaLaunchKernel with the
// arguments converted to the kernel's parameter types; in the emulated build it hands the typed kernel
// to the emulator, which runs every CUDA thread of a block as a host thread. Launch errors (bad
// configuration, too much shared memory) are thrown as CudaError, as the runtime reports them.
#pragma once
#include <tuple>
#include <utility>

#include "device.cuh"
#include "errors.h"
#include "runtime.h"

namespace ikun::cuda {

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamicSharedBytes, cudaStream_t stream,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "launch: argument count differs from the kernel's parameters");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;  // nothing to do (CUDA would report an invalid configuration)
  std::tuple<Params...> converted(std::forward<Args>(args)...);
  countKernelLaunch();
#if defined(IKUN_CUDA_EMULATED)
  ::ikun::emu::launchKernel(kernel, grid, block, dynamicSharedBytes, stream, converted);
#else
  void* pointers[sizeof...(Params) + 1];
  std::apply([&](auto&... values) {
    size_t i = 0;
    ((pointers[i++] = static_cast<void*>(&values)), ...);
  }, converted);
  cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, block, pointers, dynamicSharedBytes, stream);
#endif
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace ikun::cuda
