// Multi-step IF/LIF neurons over [steps, width], fused over time: each thread owns a block of neurons
// and walks all steps, so the membrane stays in a small local buffer. Equations: ikun-paper.md, "Neurons".
// The per-neuron formulas are common/neuron_step.h (shared with the CUDA kernels); here the surrogate,
// the reset mode, detachReset and the forward mode are fixed at compile time so the inner loops carry no
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

// Calls fn(neuron) with the NeuronStep (common/neuron_step.h) for p. Only the training path in spiking
// mode gets types fixed at compile time, so that its loops vectorise without branches: the forward
// kernels by reset mode (a Heaviside forward reads no surrogate), the backward kernels by surrogate,
// reset mode and detachReset. The smooth mode (gradient checks) and the Hessian tangents take one
// instantiation with the surrogate and flags read at run time: the same formulas and roundings, a
// fraction of the compile time and object size of a specialisation per case.
template <class T>
using GenericNeuron = NeuronStep<T, RuntimeSurrogate<T>, RuntimeNeuronFlags>;

template <class T>
GenericNeuron<T> genericNeuron(const NeuronParams& p) {
  return GenericNeuron<T>(RuntimeSurrogate<T>{p.surrogate, T(p.alpha)}, RuntimeNeuronFlags{p.softReset, p.detachReset, p.spiking}, p);
}

template <class T, class Fn>
void dispatchForward(const NeuronParams& p, Fn&& fn) {
  if (!p.spiking) return fn(genericNeuron<T>(p));
  const RuntimeSurrogate<T> unused{p.surrogate, T(p.alpha)};
  dispatchBool(p.softReset, [&](auto soft) {
    using Flags = FixedNeuronFlags<decltype(soft)::value, false, true>;  // detachReset plays no part forward
    fn(NeuronStep<T, RuntimeSurrogate<T>, Flags>(unused, Flags{}, p));
  });
}

template <class T, class Fn>
void dispatchBackward(const NeuronParams& p, Fn&& fn) {
  if (!p.spiking) return fn(genericNeuron<T>(p));
  dispatchSurrogate<T>(p.surrogate, T(p.alpha), [&](auto surrogate) {
    dispatchBool(p.softReset, [&](auto soft) {
      dispatchBool(p.detachReset, [&](auto detach) {
        using Flags = FixedNeuronFlags<decltype(soft)::value, decltype(detach)::value, true>;
        fn(NeuronStep<T, decltype(surrogate), Flags>(surrogate, Flags{}, p));
      });
    });
  });
}

// The plane loops of the fused kernels take the neuron by value and every array as __restrict: read
// through captured references, the constants had to be reloaded after each store (which might have
// changed them), and GCC left the loops scalar.

// The neuron's input as it reads it: as stored, or normalised on the fly by a fused BatchNorm.
struct StoredInput {
  template <class T>
  T operator()(T x) const { return x; }
};

// One step of a plane: h = a v + b in(x) + c, the spike, the reset of v. Writes h and/or the spikes.
template <bool WriteH, bool WriteSpikes, class T, class Neuron, class Input>
inline void chargeFireResetPlane(const Neuron neuron, const Input in, const T* __restrict x, T* __restrict v, T* __restrict h,
                                 T* __restrict spikes, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T ht = neuron.charge(v[i], in(x[i]));
    const T s = neuron.fire(ht, v[i]);
    if constexpr (WriteH) h[i] = ht;
    if constexpr (WriteSpikes) spikes[i] = s;
  }
}

// One step of BPTT over a plane: writes (or, for a static input, adds) b dh to out and carries
// dv = a dh to the step before.
template <bool StaticInput, class T, class Neuron>
inline void backwardPlaneStep(const Neuron neuron, const T* __restrict h, const T* __restrict ds, T* __restrict dv,
                              T* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T dh = neuron.backward(h[i], ds[i], dv[i]);
    if constexpr (StaticInput) out[i] += dh * neuron.b;
    else out[i] = dh * neuron.b;
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
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchForward<T>(p, [&](const auto neuron) {
    parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      T v[kBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
        std::fill(v, v + n, neuron.initialMembrane());
        for (int64_t t = 0; t < p.steps; ++t) {
          const int64_t base = t * p.width + i0;
          const T* xt = x + t * inputStride + i0;
          for (int64_t i = 0; i < n; ++i) {
            const T ht = neuron.charge(v[i], xt[i]);
            h[base + i] = ht;
            spikes[base + i] = neuron.fire(ht, v[i]);
          }
        }
      }
    });
  });
}

// dL/dh[t] = dL/ds[t] g'_t + dL/dv[t] * (reset path); dL/dx[t] = b dL/dh[t]; dL/dv[t-1] = a dL/dh[t].
template <class T>
void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx) {
  dispatchBackward<T>(p, [&](const auto neuron) {
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
            const T dh = neuron.backward(h[base + i], dSpikes[base + i], dv[i]);
            if (p.staticInput) sum[i] += dh * neuron.b;
            else dx[base + i] = dh * neuron.b;
          }
        }
        if (p.staticInput) std::copy(sum, sum + n, dx + i0);
      }
    });
  });
}

// Forward-mode (R-op) pass for Hessian-vector products: the tangent of the forward given the input
// tangent xDot (NeuronStep::forwardTangent).
template <class T>
void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot) {
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  const GenericNeuron<T> neuron = genericNeuron<T>(p);
  parallelFor((p.width + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    T vDot[kBlock];
    for (int64_t block = b0; block < b1; ++block) {
      const int64_t i0 = block * kBlock, n = std::min(kBlock, p.width - i0);
      std::fill(vDot, vDot + n, T(0));
      for (int64_t t = 0; t < p.steps; ++t) {
        const int64_t base = t * p.width + i0;
        const T* xt = xDot + t * inputStride + i0;
        for (int64_t i = 0; i < n; ++i) hDot[base + i] = neuron.forwardTangent(h[base + i], xt[i], vDot[i], sDot[base + i]);
      }
    }
  });
}

// Tangent of neuronBackward (NeuronStep::backwardTangent). Writes both dx and its tangent dxDot (summed
// over steps for a static input).
template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot,
                           T* dx, T* dxDot) {
  const GenericNeuron<T> neuron = genericNeuron<T>(p);
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
          T dhd;
          const T dh = neuron.backwardTangent(h[base + i], hDot[base + i], dSpikes[base + i], dSpikesDot[base + i], dv[i],
                                              dvDot[i], dhd);
          if (p.staticInput) {
            sum[i] += dh * neuron.b;
            sumDot[i] += dhd * neuron.b;
          } else {
            dx[base + i] = dh * neuron.b;
            dxDot[base + i] = dhd * neuron.b;
          }
        }
      }
      if (p.staticInput) {
        std::copy(sum, sum + n, dx + i0);
        std::copy(sumDot, sumDot + n, dxDot + i0);
      }
    }
  });
}

// ---- neuron + max-pool, fused for training ------------------------------------------------------------
// The spikes of a neuron layer followed by max-pool are only needed pooled: each thread takes whole
// (sample, channel) planes, runs the neuron over all steps with the membrane of the plane in a local
// buffer, and writes the pooled spikes. Neither h, the full spikes nor the windows' argmax are stored:
// backward recomputes h from x and each window's winner from the spikes of h (the same arithmetic, so the
// same numbers as the unfused layers).

// Runs fn(in) with the input reader of plane q: as stored, or normalised by the fused BatchNorm.
template <class T, class Fn>
inline void withPlaneInput(const InputNormalisation<T>& norm, int64_t q, Fn&& fn) {
  if (norm.active()) fn(norm.forPlane(q));
  else fn(StoredInput{});
}

// fn(o, winner, value) for each window o of a plane of spikes: the offset in the plane and the value of its
// maximum, the first in row-major order among equals (strict '>', as max-pool's argmax).
template <class T, class Fn>
inline void forEachWindowMaximum(const Pool2dShape& pool, const T* sp, Fn&& fn) {
  const int64_t oh = pool.outHeight(), ow = pool.outWidth();
  if (pool.kernel == 2 && pool.stride == 2) {
    // the common 2x2 window, unrolled
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t top = 2 * i * pool.inWidth, bottom = top + pool.inWidth;
      for (int64_t j = 0; j < ow; ++j) {
        int64_t best = top + 2 * j;
        T bestValue = sp[best];
        if (sp[top + 2 * j + 1] > bestValue) bestValue = sp[top + 2 * j + 1], best = top + 2 * j + 1;
        if (sp[bottom + 2 * j] > bestValue) bestValue = sp[bottom + 2 * j], best = bottom + 2 * j;
        if (sp[bottom + 2 * j + 1] > bestValue) bestValue = sp[bottom + 2 * j + 1], best = bottom + 2 * j + 1;
        fn(i * ow + j, best, bestValue);
      }
    }
    return;
  }
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      int64_t best = (i * pool.stride) * pool.inWidth + j * pool.stride;
      T bestValue = sp[best];
      for (int64_t ki = 0; ki < pool.kernel; ++ki)
        for (int64_t kj = 0; kj < pool.kernel; ++kj) {
          const int64_t at = (i * pool.stride + ki) * pool.inWidth + j * pool.stride + kj;
          if (sp[at] > bestValue) bestValue = sp[at], best = at;
        }
      fn(i * ow + j, best, bestValue);
    }
}

template <class T>
double neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled, const InputNormalisation<T>& norm) {
  const int64_t plane = pool.inHeight * pool.inWidth, outPlane = pool.outHeight() * pool.outWidth();
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  std::vector<double> counts(size_t(pool.planes), 0.0);
  dispatchForward<T>(p, [&](const auto neuron) {
    parallelFor(pool.planes, 4, [&](int64_t q0, int64_t q1) {
      std::vector<T> v(static_cast<size_t>(plane)), spikes(static_cast<size_t>(plane));
      for (int64_t q = q0; q < q1; ++q) {
        std::fill(v.begin(), v.end(), neuron.initialMembrane());
        double count = 0;
        for (int64_t t = 0; t < p.steps; ++t) {
          const T* xt = x + t * inputStride + q * plane;
          T* sp = spikes.data();
          withPlaneInput(norm, q, [&](const auto in) {
            chargeFireResetPlane<false, true>(neuron, in, xt, v.data(), static_cast<T*>(nullptr), sp, plane);
          });
          count += spikeCount(sp, plane);
          T* out = pooled + (t * pool.planes + q) * outPlane;
          forEachWindowMaximum(pool, sp, [&](int64_t o, int64_t, T value) { out[o] = value; });
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
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled, T* dx,
                        const InputNormalisation<T>& norm) {
  const int64_t plane = pool.inHeight * pool.inWidth, outPlane = pool.outHeight() * pool.outWidth();
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  dispatchBackward<T>(p, [&](const auto neuron) {
    dispatchBool(p.staticInput, [&](auto staticInput) {
      constexpr bool StaticInput = decltype(staticInput)::value;
      parallelFor(pool.planes, 4, [&](int64_t q0, int64_t q1) {
        const size_t planeSize = static_cast<size_t>(plane);
        std::vector<T> h(planeSize * static_cast<size_t>(p.steps)), v(planeSize), dv(planeSize), ds(planeSize),
            sum(planeSize), spikes(planeSize);
        for (int64_t q = q0; q < q1; ++q) {
          // recompute the membrane of this plane at every step
          std::fill(v.begin(), v.end(), neuron.initialMembrane());
          withPlaneInput(norm, q, [&](const auto in) {
            for (int64_t t = 0; t < p.steps; ++t)
              chargeFireResetPlane<true, false>(neuron, in, x + t * inputStride + q * plane, v.data(), h.data() + t * plane,
                                                static_cast<T*>(nullptr), plane);
          });
          std::fill(dv.begin(), dv.end(), T(0));
          std::fill(sum.begin(), sum.end(), T(0));
          for (int64_t t = p.steps - 1; t >= 0; --t) {
            // the pooled gradient goes to each window's maximum, found again in the spikes of h
            const T* ht = h.data() + t * plane;
            for (int64_t i = 0; i < plane; ++i) spikes[size_t(i)] = neuron.spike(ht[i]);
            std::fill(ds.begin(), ds.end(), T(0));
            const T* dp = dPooled + (t * pool.planes + q) * outPlane;
            forEachWindowMaximum(pool, spikes.data(), [&](int64_t o, int64_t winner, T) { ds[size_t(winner)] += dp[o]; });
            T* out = StaticInput ? sum.data() : dx + t * p.width + q * plane;
            backwardPlaneStep<StaticInput>(neuron, h.data() + t * plane, ds.data(), dv.data(), out, plane);
          }
          if (StaticInput) std::copy(sum.begin(), sum.end(), dx + q * plane);
        }
      });
    });
  });
}
