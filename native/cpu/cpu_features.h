// Which instruction set the CPU kernels that exist in several builds (the neuron kernels) run with.
#pragma once
#include <string>

namespace ikun::cpu {

// AVX2 kernels are compiled where GCC can target AVX2 from one translation unit (x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define IKUN_HAVE_AVX2_KERNELS 1
#else
#define IKUN_HAVE_AVX2_KERNELS 0
#endif

enum class CpuKernels { Baseline, Avx2 };

// Whether the AVX2 kernels were built and this CPU (and OS) can run them.
bool avx2KernelsUsable();
// The set in use: AVX2 when usable, unless IKUN_CPU_KERNELS=baseline was set or setCpuKernels changed it.
CpuKernels cpuKernels();
// Throws std::invalid_argument when AVX2 is asked for but not usable here.
void setCpuKernels(CpuKernels kernels);
const char* cpuKernelsName(CpuKernels kernels);

}  // namespace ikun::cpu
