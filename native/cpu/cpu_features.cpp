#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ikun::cpu {
namespace {

CpuKernels initialKernels() {
  const char* env = std::getenv("IKUN_CPU_KERNELS");
  if (env && std::strcmp(env, "baseline") == 0) return CpuKernels::Baseline;
  return avx2KernelsUsable() ? CpuKernels::Avx2 : CpuKernels::Baseline;
}

std::atomic<CpuKernels>& current() {
  static std::atomic<CpuKernels> kernels{initialKernels()};
  return kernels;
}

}  // namespace

bool avx2KernelsUsable() {
#if IKUN_HAVE_AVX2_KERNELS
  // libgcc's check includes the OS saving the AVX registers (XCR0), not just the CPUID bit.
  static const bool usable = __builtin_cpu_supports("avx2");
  return usable;
#else
  return false;
#endif
}

CpuKernels cpuKernels() { return current().load(std::memory_order_relaxed); }

void setCpuKernels(CpuKernels kernels) {
  if (kernels == CpuKernels::Avx2 && !avx2KernelsUsable())
    throw std::invalid_argument(IKUN_HAVE_AVX2_KERNELS ? "this CPU does not support AVX2; use 'baseline'"
                                                       : "this build has no AVX2 kernels (not an x86-64 GCC build); use 'baseline'");
  current().store(kernels, std::memory_order_relaxed);
}

const char* cpuKernelsName(CpuKernels kernels) { return kernels == CpuKernels::Avx2 ? "avx2" : "baseline"; }

}  // namespace ikun::cpu
