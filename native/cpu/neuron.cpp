// Multi-step IF/LIF neurons over [steps, width], fused over time: each thread owns a block of neurons
// and walks all steps, so the membrane stays in a small local buffer. Equations: ikun-paper.md, "Neurons".
// The reset mode, detachReset and the forward mode are template parameters so the inner loops carry no
// branches on them.
#include <algorithm>
#include <type_traits>

#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {
namespace {

constexpr int64_t kBlock = 256;

template <class Fn>
void dispatchBool(bool value, Fn&& fn) {
  if (value) fn(std::true_type{});
  else fn(std::false_type{});
}

// Calls fn(surrogate, softReset, detachReset, spiking) with compile-time flags.
template <class T, class Fn>
void dispatchNeuron(const NeuronParams& p, Fn&& fn) {
  dispatchSurrogate<T>(p.surrogate, T(p.alpha), [&](auto surrogate) {
    dispatchBool(p.softReset, [&](auto soft) {
      dispatchBool(p.detachReset, [&](auto detach) {
        dispatchBool(p.spiking, [&](auto spiking) { fn(surrogate, soft, detach, spiking); });
      });
    });
  });
}

// Coefficients of the charge h = a v + b x + c (IF: a = b = 1, c = 0).
template <class T>
struct Charge {
  T a, b, c;
  explicit Charge(const NeuronParams& p, T vReset) {
    const T tau = T(p.tau);
    if (p.kind == NeuronKind::IF) a = T(1), b = T(1), c = T(0);
    else if (p.decayInput) a = T(1) - T(1) / tau, b = T(1) / tau, c = vReset / tau;  // v + (x - (v - vr)) / tau
    else a = T(1) - T(1) / tau, b = T(1), c = vReset / tau;                         // v - (v - vr) / tau + x
  }
};

}  // namespace

template <class T>
void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto, auto spiking) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T v[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(v, v + n, vReset);  // SpikingJelly starts the membrane at v_reset (0 for soft reset)
        for (int64_t t = 0; t < p.steps; ++t) {
          const int64_t base = t * p.width + i0;
          const T* xt = x + t * inputStride + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = charge.a * v[i] + charge.b * xt[i] + charge.c;
            T s;
            if constexpr (decltype(spiking)::value) s = ht - vth >= T(0) ? T(1) : T(0);
            else s = surrogate.g(ht - vth);
            h[base + i] = ht;
            spikes[base + i] = s;
            if constexpr (decltype(soft)::value) v[i] = ht - vth * s;
            else v[i] = ht * (T(1) - s) + vReset * s;
          }
        }
      }
    });
  });
}

// dL/dh[t] = dL/ds[t] g'_t + dL/dv[t] * (reset path); dL/dx[t] = b dL/dh[t]; dL/dv[t-1] = a dL/dh[t].
template <class T>
void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto detach, auto spiking) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T dv[kBlock];   // dL/dv[t] carried back from step t + 1
      T sum[kBlock];  // static input: the per-step input gradients summed over time
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(dv, dv + n, T(0));
        std::fill(sum, sum + n, T(0));
        for (int64_t t = p.steps - 1; t >= 0; --t) {
          const int64_t base = t * p.width + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = h[base + i], u = ht - vth;
            const T slope = surrogate.g1(u);
            T resetPath;
            if constexpr (decltype(soft)::value) {
              if constexpr (decltype(detach)::value) resetPath = T(1);
              else resetPath = T(1) - vth * slope;
            } else {
              T s;
              if constexpr (decltype(spiking)::value) s = u >= T(0) ? T(1) : T(0);
              else s = surrogate.g(u);
              if constexpr (decltype(detach)::value) resetPath = T(1) - s;
              else resetPath = (T(1) - s) + (vReset - ht) * slope;
            }
            const T dh = dSpikes[base + i] * slope + dv[i] * resetPath;
            if (p.staticInput) sum[i] += dh * charge.b;
            else dx[base + i] = dh * charge.b;
            dv[i] = dh * charge.a;
          }
        }
        if (p.staticInput) std::copy(sum, sum + n, dx + i0);
      }
    });
  });
}

template void neuronForward<float>(const NeuronParams&, const float*, float*, float*);
template void neuronForward<double>(const NeuronParams&, const double*, double*, double*);
template void neuronBackward<float>(const NeuronParams&, const float*, const float*, float*);
template void neuronBackward<double>(const NeuronParams&, const double*, const double*, double*);

}  // namespace ikun::cpu
