// Multi-step IF/LIF neurons over [steps, width], fused over time: each thread owns a block of neurons
// and walks all steps, so the membrane stays in a small local buffer. Equations: ikun-paper.md, "Neurons".
// The reset mode, detachReset and the forward mode are template parameters so the inner loops carry no
// branches on them.
//
// This file is a fragment: neuron.cpp includes it inside namespace ikun::cpu::baseline (compiled for the
// build's baseline x86-64-v2) and neuron_avx2.cpp inside namespace ikun::cpu::avx2 (compiled for AVX2),
// and neuron.cpp picks one at run time. Both have already included everything it uses. The arithmetic
// is the same in both (no FMA, no reassociation), so both give the same numbers, bit for bit.

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


// The spike at membrane h (Heaviside or the smooth primitive) and the membrane after the reset.
template <bool Soft, bool Spiking, class T, class Surrogate>
inline T spikeAndReset(const Surrogate& surrogate, T ht, T vth, T vReset, T& v) {
  T s;
  if constexpr (Spiking) s = ht - vth >= T(0) ? T(1) : T(0);
  else s = surrogate.g(ht - vth);
  if constexpr (Soft) v = ht - vth * s;
  else v = ht * (T(1) - s) + vReset * s;
  return s;
}

// dv[t]/dh[t] through the reset ("reset path"), given slope = g'(h - vth); with detachReset the spike in
// the reset is a constant. Its derivative along hDot (for the Hessian tangents) goes to resetPathDot.
template <bool Soft, bool Detach, bool Spiking, class T, class Surrogate>
inline T resetPathOf(const Surrogate& surrogate, T ht, T vth, T vReset, T slope) {
  if constexpr (Soft) return Detach ? T(1) : T(1) - vth * slope;
  T s;
  if constexpr (Spiking) s = ht - vth >= T(0) ? T(1) : T(0);
  else s = surrogate.g(ht - vth);
  return Detach ? T(1) - s : (T(1) - s) + (vReset - ht) * slope;
}

template <bool Soft, bool Detach, class T>
inline T resetPathDotOf(T ht, T vth, T vReset, T slope, T curvature, T hDot) {
  if constexpr (Detach) return T(0);
  if constexpr (Soft) return -vth * curvature * hDot;
  return (-T(2) * slope + (vReset - ht) * curvature) * hDot;
}

// The plane loops of the fused kernels take every constant by value and every array as __restrict:
// read through the captured references, the constants had to be reloaded after each store (which might
// have changed them), and GCC left the loops scalar.

// One step of a plane: h = a v + b x + c, the spike, the reset of v. Writes h and/or the spikes.
template <bool Soft, bool Spiking, bool WriteH, bool WriteSpikes, class T, class Surrogate>
inline void chargeFireResetPlane(const Surrogate surrogate, const T* __restrict x, T* __restrict v, T* __restrict h,
                                 T* __restrict spikes, int64_t n, const T a, const T b, const T c, const T vth,
                                 const T vReset) {
  for (int64_t i = 0; i < n; ++i) {
    const T ht = a * v[i] + b * x[i] + c;
    const T s = spikeAndReset<Soft, Spiking>(surrogate, ht, vth, vReset, v[i]);
    if constexpr (WriteH) h[i] = ht;
    if constexpr (WriteSpikes) spikes[i] = s;
  }
}

// One step of BPTT over a plane: dh = ds g'(h - vth) + dv (reset path); writes (or, for a static input,
// adds) b dh to out and carries dv = a dh to the step before.
template <bool Soft, bool Detach, bool Spiking, bool StaticInput, class T, class Surrogate>
inline void backwardPlaneStep(const Surrogate surrogate, const T* __restrict h, const T* __restrict ds,
                              T* __restrict dv, T* __restrict out, int64_t n, const T a, const T b, const T vth,
                              const T vReset) {
  for (int64_t i = 0; i < n; ++i) {
    const T slope = surrogate.g1(h[i] - vth);
    const T resetPath = resetPathOf<Soft, Detach, Spiking>(surrogate, h[i], vth, vReset, slope);
    const T dh = ds[i] * slope + dv[i] * resetPath;
    if constexpr (StaticInput) out[i] += dh * b;
    else out[i] = dh * b;
    dv[i] = dh * a;
  }
}

// The sum of one plane of spikes in eight fixed partial sums: one running sum chained every addition on
// the last (the fused forward's bottleneck), and fixed lanes give the same result for every instruction
// set. Exact in spiking mode (integers below 2^24).
template <class T>
double spikeCount(const T* spikes, int64_t n) {
  constexpr int64_t kLanes = 8;
  T lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) lanes[k] += spikes[i + k];
  for (; i < n; ++i) lanes[0] += spikes[i];
  double total = 0;
  for (int64_t k = 0; k < kLanes; ++k) total += double(lanes[k]);
  return total;
}

}  // namespace

template <class T>
void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto, auto spiking) {
    constexpr bool Soft = decltype(soft)::value, Spiking = decltype(spiking)::value;
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
            h[base + i] = ht;
            spikes[base + i] = spikeAndReset<Soft, Spiking>(surrogate, ht, vth, vReset, v[i]);
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
    constexpr bool Soft = decltype(soft)::value, Detach = decltype(detach)::value, Spiking = decltype(spiking)::value;
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
            const T ht = h[base + i], slope = surrogate.g1(ht - vth);
            const T resetPath = resetPathOf<Soft, Detach, Spiking>(surrogate, ht, vth, vReset, slope);
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
    constexpr bool Soft = decltype(soft)::value, Detach = decltype(detach)::value, Spiking = decltype(spiking)::value;
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T vDot[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(vDot, vDot + n, T(0));
        for (int64_t t = 0; t < p.steps; ++t) {
          const int64_t base = t * p.width + i0;
          const T* xt = xDot + t * inputStride + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = h[base + i], slope = surrogate.g1(ht - vth);
            const T hd = charge.a * vDot[i] + charge.b * xt[i];
            hDot[base + i] = hd;
            sDot[base + i] = slope * hd;
            vDot[i] = hd * resetPathOf<Soft, Detach, Spiking>(surrogate, ht, vth, vReset, slope);
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
    constexpr bool Soft = decltype(soft)::value, Detach = decltype(detach)::value, Spiking = decltype(spiking)::value;
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
            const T resetPath = resetPathOf<Soft, Detach, Spiking>(surrogate, ht, vth, vReset, slope);
            const T resetPathDot = resetPathDotOf<Soft, Detach>(ht, vth, vReset, slope, curvature, hd);
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

// ---- neuron + max-pool, fused for training ------------------------------------------------------------
// The spikes of a neuron layer followed by max-pool are only needed pooled: each thread takes whole
// (sample, channel) planes, runs the neuron over all steps with the membrane of the plane in a local
// buffer, and writes the pooled spikes and the window argmax. Neither h nor the full spikes are stored:
// backward recomputes h from x (the same arithmetic, so the same numbers as the unfused layers).


template <class T>
double neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled, int32_t* argmax) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  const int64_t plane = pool.inHeight * pool.inWidth, oh = pool.outHeight(), ow = pool.outWidth(), outPlane = oh * ow;
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  std::vector<double> counts(size_t(pool.planes), 0.0);
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto, auto spiking) {
    constexpr bool Soft = decltype(soft)::value, Spiking = decltype(spiking)::value;
    parallelFor(pool.planes, 4, [&](int64_t q0, int64_t q1) {
      std::vector<T> v(static_cast<size_t>(plane)), spikes(static_cast<size_t>(plane));
      for (int64_t q = q0; q < q1; ++q) {
        std::fill(v.begin(), v.end(), vReset);
        double count = 0;
        for (int64_t t = 0; t < p.steps; ++t) {
          const T* xt = x + t * inputStride + q * plane;
          T* sp = spikes.data();
          chargeFireResetPlane<Soft, Spiking, false, true>(surrogate, xt, v.data(), static_cast<T*>(nullptr), sp, plane,
                                                           charge.a, charge.b, charge.c, vth, vReset);
          count += spikeCount(sp, plane);
          T* out = pooled + (t * pool.planes + q) * outPlane;
          int32_t* arg = argmax + (t * pool.planes + q) * outPlane;
          if (pool.kernel == 2 && pool.stride == 2) {
            // the common 2x2 window, unrolled; strict '>' keeps the first maximum in row-major order
            for (int64_t i = 0; i < oh; ++i) {
              const int64_t top = 2 * i * pool.inWidth, bottom = top + pool.inWidth;
              for (int64_t j = 0; j < ow; ++j) {
                int64_t best = top + 2 * j;
                T bestValue = sp[best];
                if (sp[top + 2 * j + 1] > bestValue) bestValue = sp[top + 2 * j + 1], best = top + 2 * j + 1;
                if (sp[bottom + 2 * j] > bestValue) bestValue = sp[bottom + 2 * j], best = bottom + 2 * j;
                if (sp[bottom + 2 * j + 1] > bestValue) bestValue = sp[bottom + 2 * j + 1], best = bottom + 2 * j + 1;
                out[i * ow + j] = bestValue;
                arg[i * ow + j] = int32_t(best);
              }
            }
            continue;
          }
          for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j) {
              int64_t best = (i * pool.stride) * pool.inWidth + j * pool.stride;
              T bestValue = spikes[size_t(best)];
              for (int64_t ki = 0; ki < pool.kernel; ++ki)
                for (int64_t kj = 0; kj < pool.kernel; ++kj) {
                  const int64_t at = (i * pool.stride + ki) * pool.inWidth + j * pool.stride + kj;
                  if (spikes[size_t(at)] > bestValue) bestValue = spikes[size_t(at)], best = at;  // first maximum wins
                }
              out[i * ow + j] = bestValue;
              arg[i * ow + j] = int32_t(best);
            }
        }
        counts[size_t(q)] = count;
      }
    });
  });
  double total = 0;
  for (double c : counts) total += c;
  return total;
}

template <class T>
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const int32_t* argmax,
                        const T* dPooled, T* dx) {
  const T vth = T(p.vThreshold), vReset = p.softReset ? T(0) : T(p.vReset);
  const Charge<T> charge(p, vReset);
  const int64_t plane = pool.inHeight * pool.inWidth, outPlane = pool.outHeight() * pool.outWidth();
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchNeuron<T>(p, [&](auto surrogate, auto soft, auto detach, auto spiking) {
    constexpr bool Soft = decltype(soft)::value, Detach = decltype(detach)::value, Spiking = decltype(spiking)::value;
    dispatchBool(p.staticInput, [&](auto staticInput) {
      constexpr bool StaticInput = decltype(staticInput)::value;
      parallelFor(pool.planes, 4, [&](int64_t q0, int64_t q1) {
        const size_t planeSize = static_cast<size_t>(plane);
        std::vector<T> h(planeSize * static_cast<size_t>(p.steps)), v(planeSize), dv(planeSize), ds(planeSize),
            sum(planeSize);
        for (int64_t q = q0; q < q1; ++q) {
          // recompute the membrane of this plane at every step
          std::fill(v.begin(), v.end(), vReset);
          for (int64_t t = 0; t < p.steps; ++t)
            chargeFireResetPlane<Soft, Spiking, true, false>(surrogate, x + t * inputStride + q * plane, v.data(),
                                                             h.data() + t * plane, static_cast<T*>(nullptr), plane,
                                                             charge.a, charge.b, charge.c, vth, vReset);
          std::fill(dv.begin(), dv.end(), T(0));
          std::fill(sum.begin(), sum.end(), T(0));
          for (int64_t t = p.steps - 1; t >= 0; --t) {
            // the pooled gradient goes to each window's argmax
            std::fill(ds.begin(), ds.end(), T(0));
            const int32_t* arg = argmax + (t * pool.planes + q) * outPlane;
            const T* dp = dPooled + (t * pool.planes + q) * outPlane;
            for (int64_t o = 0; o < outPlane; ++o) ds[size_t(arg[o])] += dp[o];
            T* out = StaticInput ? sum.data() : dx + t * p.width + q * plane;
            backwardPlaneStep<Soft, Detach, Spiking, StaticInput>(surrogate, h.data() + t * plane, ds.data(), dv.data(),
                                                                  out, plane, charge.a, charge.b, vth, vReset);
          }
          if (StaticInput) std::copy(sum.begin(), sum.end(), dx + q * plane);
        }
      });
    });
  });
}
