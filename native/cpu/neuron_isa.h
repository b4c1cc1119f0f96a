// The neuron kernels are built twice from neuron_impl.h: for the baseline instruction set (neuron.cpp)
// and for AVX2 (neuron_avx2.cpp). neuron.cpp's public kernels (kernels.h) pick one at run time.
#pragma once
#include <cstdint>
#include "../common/batchnorm_rules.h"
#include "../common/neuron_step.h"
#include "../common/shapes.h"
#include "cpu_features.h"

#define IKUN_DECLARE_NEURON_KERNELS                                                                       \
  template <class T> void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h);              \
  template <class T> void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx);     \
  template <class T>                                                                                      \
  double neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled,          \
                           const InputNormalisation<T>& norm);                                            \
  template <class T>                                                                                      \
  void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled,    \
                          T* dx, const InputNormalisation<T>& norm);                                      \
  template <class T>                                                                                      \
  void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot);          \
  template <class T>                                                                                      \
  void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes,           \
                             const T* dSpikesDot, T* dx, T* dxDot);

#define IKUN_INSTANTIATE_NEURON_KERNELS(T)                                                                 \
  template void neuronForward<T>(const NeuronParams&, const T*, T*, T*);                                  \
  template void neuronBackward<T>(const NeuronParams&, const T*, const T*, T*);                           \
  template double neuronPoolForward<T>(const NeuronParams&, const Pool2dShape&, const T*, T*,            \
                                       const InputNormalisation<T>&);                                     \
  template void neuronPoolBackward<T>(const NeuronParams&, const Pool2dShape&, const T*, const T*, T*,    \
                                      const InputNormalisation<T>&);                                      \
  template void neuronForwardTangent<T>(const NeuronParams&, const T*, const T*, T*, T*);                 \
  template void neuronBackwardTangent<T>(const NeuronParams&, const T*, const T*, const T*, const T*, T*, T*);

namespace ikun::cpu::baseline {
IKUN_DECLARE_NEURON_KERNELS
}
#if IKUN_HAVE_AVX2_KERNELS
namespace ikun::cpu::avx2 {
IKUN_DECLARE_NEURON_KERNELS
}
#endif
