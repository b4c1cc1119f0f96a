// Multi-step IF/LIF neurons over [steps, width], fused over time: each thread owns a block of neurons
// and walks all steps, so the membrane stays in a small local buffer. Equations: ikun-paper.md, "Neurons".
#include <algorithm>

#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {
namespace {

constexpr int64_t kBlock = 256;

// Membrane before the spike: h[t] from v[t-1] and x[t].
template <class T>
inline T charge(const NeuronParams& p, T v, T x, T vDecayTarget) {
  if (p.kind == NeuronKind::IF) return v + x;
  const T tau = T(p.tau);
  return p.decayInput ? v + (x - (v - vDecayTarget)) / tau : v - (v - vDecayTarget) / tau + x;
}

}  // namespace

template <class T>
void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  dispatchSurrogate<T>(p.surrogate, T(p.alpha), [&](auto surrogate) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T v[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(v, v + n, vReset);  // SpikingJelly starts the membrane at v_reset (0 for soft reset)
        for (int64_t t = 0; t < p.steps; ++t) {
          const int64_t base = t * p.width + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = charge(p, v[i], x[base + i], vReset);
            const T s = p.spiking ? (ht - vth >= T(0) ? T(1) : T(0)) : surrogate.g(ht - vth);
            h[base + i] = ht;
            spikes[base + i] = s;
            v[i] = p.softReset ? ht - vth * s : ht * (T(1) - s) + vReset * s;
          }
        }
      }
    });
  });
}

template <class T>
void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const T inputScale = (p.kind == NeuronKind::LIF && p.decayInput) ? T(1) / T(p.tau) : T(1);
  const T leak = p.kind == NeuronKind::LIF ? T(1) - T(1) / T(p.tau) : T(1);
  dispatchSurrogate<T>(p.surrogate, T(p.alpha), [&](auto surrogate) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T dv[kBlock];  // dL/dv[t] carried back from step t + 1
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(dv, dv + n, T(0));
        for (int64_t t = p.steps - 1; t >= 0; --t) {
          const int64_t base = t * p.width + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = h[base + i], u = ht - vth;
            const T slope = surrogate.g1(u);
            const T s = p.spiking ? (u >= T(0) ? T(1) : T(0)) : surrogate.g(u);
            T resetPath;
            if (p.softReset) resetPath = p.detachReset ? T(1) : T(1) - vth * slope;
            else resetPath = p.detachReset ? T(1) - s : (T(1) - s) + (vReset - ht) * slope;
            const T dh = dSpikes[base + i] * slope + dv[i] * resetPath;
            dx[base + i] = dh * inputScale;
            dv[i] = dh * leak;
          }
        }
      }
    });
  });
}

template void neuronForward<float>(const NeuronParams&, const float*, float*, float*);
template void neuronForward<double>(const NeuronParams&, const double*, double*, double*);
template void neuronBackward<float>(const NeuronParams&, const float*, const float*, float*);
template void neuronBackward<double>(const NeuronParams&, const double*, const double*, double*);

}  // namespace ikun::cpu
