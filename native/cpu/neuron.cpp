// Multi-step IF/LIF neurons (the kernels are in neuron_impl.h): the baseline build of them, and the
// public entry points, which run the AVX2 build where the CPU has it.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "neuron_isa.h"
#include "parallel.h"

namespace ikun::cpu {

namespace baseline {
#include "neuron_impl.h"
IKUN_INSTANTIATE_NEURON_KERNELS(float)
IKUN_INSTANTIATE_NEURON_KERNELS(double)
}  // namespace baseline

#if IKUN_HAVE_AVX2_KERNELS
#define IKUN_NEURON_DISPATCH(kernel, ...)                                                    \
  return cpuKernels() == CpuKernels::Avx2 ? avx2::kernel<T>(__VA_ARGS__) : baseline::kernel<T>(__VA_ARGS__)
#else
#define IKUN_NEURON_DISPATCH(kernel, ...) return baseline::kernel<T>(__VA_ARGS__)
#endif

template <class T>
void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h) {
  IKUN_NEURON_DISPATCH(neuronForward, p, x, spikes, h);
}

template <class T>
void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx) {
  IKUN_NEURON_DISPATCH(neuronBackward, p, dSpikes, h, dx);
}

template <class T>
double neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled,
                         const InputNormalisation<T>& norm) {
  IKUN_NEURON_DISPATCH(neuronPoolForward, p, pool, x, pooled, norm);
}

template <class T>
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled, T* dx,
                        const InputNormalisation<T>& norm) {
  IKUN_NEURON_DISPATCH(neuronPoolBackward, p, pool, x, dPooled, dx, norm);
}

template <class T>
void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot) {
  IKUN_NEURON_DISPATCH(neuronForwardTangent, p, h, xDot, hDot, sDot);
}

template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot,
                           T* dx, T* dxDot) {
  IKUN_NEURON_DISPATCH(neuronBackwardTangent, p, h, hDot, dSpikes, dSpikesDot, dx, dxDot);
}

#undef IKUN_NEURON_DISPATCH

IKUN_INSTANTIATE_NEURON_KERNELS(float)
IKUN_INSTANTIATE_NEURON_KERNELS(double)

}  // namespace ikun::cpu
