// The neuron kernels of neuron_impl.h compiled for AVX2 (8 floats per instruction instead of 4).
// Everything the fragment uses is included before the target pragma, so no library code is compiled
// for AVX2 here (a shared inline function built for AVX2 could otherwise be picked by the linker for
// the whole addon). No FMA: the same roundings as the baseline build.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "neuron_isa.h"
#include "parallel.h"

#if IKUN_HAVE_AVX2_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2")
namespace ikun::cpu::avx2 {
#include "neuron_impl.h"
IKUN_INSTANTIATE_NEURON_KERNELS(float)
IKUN_INSTANTIATE_NEURON_KERNELS(double)
}  // namespace ikun::cpu::avx2
#pragma GCC pop_options
#endif
