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

// Forward-mode (R-op) pass for Hessian-vector products: the tangent of the forward given the input
// tangent xDot. The spike's derivative is g'(u) in both forward modes (ikun-paper.md, "Hessian analysis"):
// sDot = g'(u) hDot; vDot follows the reset (the s of the reset is constant when detachReset).
template <class T>
void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto detach, auto spiking) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T vDot[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(vDot, vDot + n, T(0));
        for (int64_t t = 0; t < p.steps; ++t) {
          const int64_t base = t * p.width + i0;
          const T* xt = xDot + t * inputStride + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = h[base + i], u = ht - vth;
            const T hd = charge.a * vDot[i] + charge.b * xt[i];
            const T sd = surrogate.g1(u) * hd;
            hDot[base + i] = hd;
            sDot[base + i] = sd;
            if constexpr (decltype(soft)::value) {
              if constexpr (decltype(detach)::value) vDot[i] = hd;
              else vDot[i] = hd - vth * sd;
            } else {
              T s;
              if constexpr (decltype(spiking)::value) s = u >= T(0) ? T(1) : T(0);
              else s = surrogate.g(u);
              if constexpr (decltype(detach)::value) vDot[i] = hd * (T(1) - s);
              else vDot[i] = hd * (T(1) - s) + (vReset - ht) * sd;
            }
          }
        }
      }
    });
  });
}

// Tangent of neuronBackward: differentiates dh = ds g'(u) + dv R(h) (R the reset path) along hDot and the
// incoming gradient's tangent dsDot, so dhDot = dsDot g' + ds g'' hDot + dvDot R + dv Rdot. Writes both dx
// and its tangent dxDot (summed over steps for a static input).
template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot,
                           T* dx, T* dxDot) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto detach, auto spiking) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T dv[kBlock], dvDot[kBlock], sum[kBlock], sumDot[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(dv, dv + n, T(0));
        std::fill(dvDot, dvDot + n, T(0));
        std::fill(sum, sum + n, T(0));
        std::fill(sumDot, sumDot + n, T(0));
        for (int64_t t = p.steps - 1; t >= 0; --t) {
          const int64_t base = t * p.width + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = h[base + i], hd = hDot[base + i], u = ht - vth;
            const T slope = surrogate.g1(u), curvature = surrogate.g2(u);
            T resetPath, resetPathDot;
            if constexpr (decltype(soft)::value) {
              if constexpr (decltype(detach)::value) resetPath = T(1), resetPathDot = T(0);
              else resetPath = T(1) - vth * slope, resetPathDot = -vth * curvature * hd;
            } else {
              T s;
              if constexpr (decltype(spiking)::value) s = u >= T(0) ? T(1) : T(0);
              else s = surrogate.g(u);
              if constexpr (decltype(detach)::value) resetPath = T(1) - s, resetPathDot = T(0);
              else {
                resetPath = (T(1) - s) + (vReset - ht) * slope;
                resetPathDot = (-T(2) * slope + (vReset - ht) * curvature) * hd;
              }
            }
            const T ds = dSpikes[base + i], dsd = dSpikesDot[base + i];
            const T dh = ds * slope + dv[i] * resetPath;
            const T dhd = dsd * slope + ds * curvature * hd + dvDot[i] * resetPath + dv[i] * resetPathDot;
            if (p.staticInput) {
              sum[i] += dh * charge.b;
              sumDot[i] += dhd * charge.b;
            } else {
              dx[base + i] = dh * charge.b;
              dxDot[base + i] = dhd * charge.b;
            }
            dv[i] = dh * charge.a;
            dvDot[i] = dhd * charge.a;
          }
        }
        if (p.staticInput) {
          std::copy(sum, sum + n, dx + i0);
          std::copy(sumDot, sumDot + n, dxDot + i0);
        }
      }
    });
  });
}

template void neuronForwardTangent<float>(const NeuronParams&, const float*, const float*, float*, float*);
template void neuronForwardTangent<double>(const NeuronParams&, const double*, const double*, double*, double*);
template void neuronBackwardTangent<float>(const NeuronParams&, const float*, const float*, const float*, const float*, float*, float*);
template void neuronBackwardTangent<double>(const NeuronParams&, const double*, const double*, const double*, const double*, double*, double*);
template void neuronForward<float>(const NeuronParams&, const float*, float*, float*);
template void neuronForward<double>(const NeuronParams&, const double*, double*, double*);
template void neuronBackward<float>(const NeuronParams&, const float*, const float*, float*);
template void neuronBackward<double>(const NeuronParams&, const double*, const double*, double*);

}  // namespace ikun::cpu
