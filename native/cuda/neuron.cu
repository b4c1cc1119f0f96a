// Multi-step IF/LIF neurons over [steps, width], fused over time: one thread per neuron walks all steps
// with the membrane in a register (the twin of cpu/neuron_impl.h). The surrogate, the reset mode,
// detachReset and the forward mode are read at run time (uniform branches), so each kernel is compiled
// once per dtype; the per-neuron formulas are those of common/neuron_step.h.
#include "common.cuh"
#include "reduce.cuh"
#include "../common/batchnorm_rules.h"
#include "../common/neuron_step.h"

namespace ikun::cuda {

template <class T> void maxPool2dForward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
template <class T> void maxPool2dBackward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx);

namespace {

template <class T>
using DeviceNeuron = NeuronStep<T, RuntimeSurrogate<T>, RuntimeNeuronFlags>;

template <class T>
__device__ __forceinline__ DeviceNeuron<T> neuronOf(const NeuronParams& p) {
  return DeviceNeuron<T>(RuntimeSurrogate<T>{p.surrogate, T(p.alpha)}, RuntimeNeuronFlags{p.softReset, p.detachReset, p.spiking}, p);
}

template <class T>
__global__ void forwardKernel(NeuronParams p, const T* x, T* spikes, T* h) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  for (int64_t i = globalThreadIndex(); i < p.width; i += globalThreadCount()) {
    T v = neuron.initialMembrane();
    for (int64_t t = 0; t < p.steps; ++t) {
      const T ht = neuron.charge(v, x[t * inputStride + i]);
      h[t * p.width + i] = ht;
      spikes[t * p.width + i] = neuron.fire(ht, v);
    }
  }
}

template <class T>
__global__ void backwardKernel(NeuronParams p, const T* dSpikes, const T* h, T* dx) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  for (int64_t i = globalThreadIndex(); i < p.width; i += globalThreadCount()) {
    T dv = T(0), sum = T(0);
    for (int64_t t = p.steps - 1; t >= 0; --t) {
      const int64_t at = t * p.width + i;
      const T dh = neuron.backward(h[at], dSpikes[at], dv);
      if (p.staticInput) sum += dh * neuron.b;
      else dx[at] = dh * neuron.b;
    }
    if (p.staticInput) dx[i] = sum;
  }
}

template <class T>
__global__ void forwardTangentKernel(NeuronParams p, const T* h, const T* xDot, T* hDot, T* sDot) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  for (int64_t i = globalThreadIndex(); i < p.width; i += globalThreadCount()) {
    T vDot = T(0);
    for (int64_t t = 0; t < p.steps; ++t) {
      const int64_t at = t * p.width + i;
      T sd;
      hDot[at] = neuron.forwardTangent(h[at], xDot[t * inputStride + i], vDot, sd);
      sDot[at] = sd;
    }
  }
}

template <class T>
__global__ void backwardTangentKernel(NeuronParams p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot, T* dx,
                                      T* dxDot) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  for (int64_t i = globalThreadIndex(); i < p.width; i += globalThreadCount()) {
    T dv = T(0), dvDot = T(0), sum = T(0), sumDot = T(0);
    for (int64_t t = p.steps - 1; t >= 0; --t) {
      const int64_t at = t * p.width + i;
      T dhd;
      const T dh = neuron.backwardTangent(h[at], hDot[at], dSpikes[at], dSpikesDot[at], dv, dvDot, dhd);
      if (p.staticInput) {
        sum += dh * neuron.b;
        sumDot += dhd * neuron.b;
      } else {
        dx[at] = dh * neuron.b;
        dxDot[at] = dhd * neuron.b;
      }
    }
    if (p.staticInput) dx[i] = sum, dxDot[i] = sumDot;
  }
}

// ---- neuron + 2x2 max-pool, fused for training -----------------------------------------------------------
// When 2x2 windows with stride 2 tile the planes exactly (the CSNN), one thread per window runs its four
// neurons over all steps in registers and writes only the pooled spike of each step (backward finds the
// winner again from the recomputed membranes, so no argmax is stored); the
// spikes of each block are summed (fixed tree) into one partial per block for the firing rate. Any other
// pooling runs the unfused twin below (the same arithmetic, so the same numbers).

struct WindowGeometry {
  int64_t planes, windows;
  int inWidth, plane, outWidth, outPlane;
};

__device__ __forceinline__ void windowOffsets(const WindowGeometry& g, int64_t w, int64_t& q, int& o, int offsets[4]) {
  q = w / g.outPlane;
  o = int(w - q * g.outPlane);
  const int oy = o / g.outWidth, ox = o - oy * g.outWidth, top = 2 * oy * g.inWidth + 2 * ox;
  offsets[0] = top, offsets[1] = top + 1, offsets[2] = top + g.inWidth, offsets[3] = top + g.inWidth + 1;  // row-major
}

// The neuron's input at offset `at` of plane q: as stored, or normalised by the fused BatchNorm.
template <class T>
struct PlaneInput {
  bool normalised;
  BatchNormAffine<T> affine;
  __device__ PlaneInput(const InputNormalisation<T>& norm, int64_t q)
      : normalised(norm.active()), affine(norm.active() ? norm.forPlane(q) : BatchNormAffine<T>(T(0), T(1), T(1), T(0))) {}
  __device__ __forceinline__ T operator()(T x) const { return normalised ? affine(x) : x; }
};

// The index in 0..3 of the window's maximum and its value, the first in row-major order among equals
// (strict '>', as max-pool's argmax); scalars and a select chain, never s[runtime index], so that s stays
// in registers.
template <class T>
__device__ __forceinline__ int windowMaximum(const T (&s)[4], T& value) {
  int best = 0;
  value = s[0];
#pragma unroll
  for (int j = 1; j < 4; ++j)
    if (s[j] > value) value = s[j], best = j;
  return best;
}

template <class T>
__global__ void poolForwardKernel(NeuronParams p, WindowGeometry g, const T* x, T* pooled, double* blockCounts,
                                  InputNormalisation<T> norm) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  const int64_t w = globalThreadIndex();
  double count = 0;
  if (w < g.windows) {
    int64_t q;
    int o, offsets[4];
    windowOffsets(g, w, q, o, offsets);
    const PlaneInput<T> in(norm, q);
    T v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = neuron.initialMembrane();
    for (int64_t t = 0; t < p.steps; ++t) {
      T s[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const T ht = neuron.charge(v[j], in(x[t * inputStride + q * g.plane + offsets[j]]));
        s[j] = neuron.fire(ht, v[j]);
        count += double(s[j]);
      }
      T maximum;
      windowMaximum(s, maximum);
      pooled[(t * g.planes + q) * g.outPlane + o] = maximum;
    }
  }
  count = blockSum(count);
  if (threadIdx.x == 0) blockCounts[blockIdx.x] = count;
}

// Recomputes the membranes of the window's neurons and runs BPTT with the pooled gradient at each step's
// maximum, found again from the spikes of the membranes. Up to kRegisterSteps steps (InRegisters) the
// membranes stay in registers (loops over a fixed bound, fully unrolled); longer runs keep them in
// hScratch ([steps, width]), the twin that the tests run too.
constexpr int kRegisterSteps = 8;

template <class T, bool InRegisters>
__global__ void poolBackwardKernel(NeuronParams p, WindowGeometry g, const T* x, const T* dPooled, T* hScratch, T* dx,
                                   InputNormalisation<T> norm) {
  const DeviceNeuron<T> neuron = neuronOf<T>(p);
  const int64_t inputStride = p.staticInput ? 0 : p.width;
  for (int64_t w = globalThreadIndex(); w < g.windows; w += globalThreadCount()) {
    int64_t q;
    int o, offsets[4];
    windowOffsets(g, w, q, o, offsets);
    const PlaneInput<T> in(norm, q);
    const int64_t base = q * g.plane;
    T v[4], dv[4], sum[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = neuron.initialMembrane(), dv[j] = T(0), sum[j] = T(0);
    // the charge of step t into h
    auto charge = [&](int64_t t, T (&h)[4]) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        h[j] = neuron.charge(v[j], in(x[t * inputStride + base + offsets[j]]));
        neuron.fire(h[j], v[j]);
      }
    };
    // BPTT through step t given its membranes h
    auto backward = [&](int64_t t, const T (&h)[4]) {
      const T gradient = dPooled[(t * g.planes + q) * g.outPlane + o];
      T s[4], maximum;
#pragma unroll
      for (int j = 0; j < 4; ++j) s[j] = neuron.spike(h[j]);
      const int winner = windowMaximum(s, maximum);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const T dh = neuron.backward(h[j], j == winner ? gradient : T(0), dv[j]);
        if (p.staticInput) sum[j] += dh * neuron.b;
        else dx[t * p.width + base + offsets[j]] = dh * neuron.b;
      }
    };
    if constexpr (InRegisters) {
      T h[kRegisterSteps][4];
#pragma unroll
      for (int t = 0; t < kRegisterSteps; ++t)
        if (t < p.steps) charge(t, h[t]);
#pragma unroll
      for (int t = kRegisterSteps - 1; t >= 0; --t)
        if (t < p.steps) backward(t, h[t]);
    } else {
      for (int64_t t = 0; t < p.steps; ++t) {
        T h[4];
        charge(t, h);
#pragma unroll
        for (int j = 0; j < 4; ++j) hScratch[t * p.width + base + offsets[j]] = h[j];
      }
      for (int64_t t = p.steps - 1; t >= 0; --t) {
        T h[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) h[j] = hScratch[t * p.width + base + offsets[j]];
        backward(t, h);
      }
    }
    if (p.staticInput)
#pragma unroll
      for (int j = 0; j < 4; ++j) dx[base + offsets[j]] = sum[j];
  }
}

// The unfused twin of the normalised input: y = affine(x), plane q = (i / plane) % planes.
template <class T>
__global__ void normaliseKernel(int64_t n, int64_t plane, int64_t planes, const T* x, InputNormalisation<T> norm, T* y) {
  for (int64_t i = globalThreadIndex(); i < n; i += globalThreadCount()) y[i] = norm.forPlane((i / plane) % planes)(x[i]);
}

bool tilesByTwo(const Pool2dShape& pool) {
  return pool.kernel == 2 && pool.stride == 2 && pool.inHeight % 2 == 0 && pool.inWidth % 2 == 0;
}

WindowGeometry windowGeometry(const Pool2dShape& pool) {
  if (pool.inHeight * pool.inWidth >= (int64_t(1) << 31)) throw std::invalid_argument("neuronPool: planes of 2^31 pixels or more are not supported on CUDA");
  const int64_t outPlane = pool.outHeight() * pool.outWidth();
  return WindowGeometry{pool.planes, pool.planes * outPlane, int(pool.inWidth), int(pool.inHeight * pool.inWidth),
                        int(pool.outWidth()), int(outPlane)};
}

struct SpikeTerm {
  const void* spikes;
  bool isDouble;
  __device__ double operator()(int64_t i) const {
    return isDouble ? static_cast<const double*>(spikes)[i] : double(static_cast<const float*>(spikes)[i]);
  }
};

}  // namespace

template <class T>
void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h) {
  launch(forwardKernel<T>, blocksFor(p.width), dim3(kThreads), 0, currentStream(), p, x, spikes, h);
}

template <class T>
void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx) {
  launch(backwardKernel<T>, blocksFor(p.width), dim3(kThreads), 0, currentStream(), p, dSpikes, h, dx);
}

template <class T>
void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot) {
  launch(forwardTangentKernel<T>, blocksFor(p.width), dim3(kThreads), 0, currentStream(), p, h, xDot, hDot, sDot);
}

template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot, T* dx,
                           T* dxDot) {
  launch(backwardTangentKernel<T>, blocksFor(p.width), dim3(kThreads), 0, currentStream(), p, h, hDot, dSpikes, dSpikesDot, dx,
         dxDot);
}

// The input normalised into scratch (the unfused twin's BatchNorm output), or x itself without normalisation.
template <class T>
const T* normalisedInput(const NeuronParams& p, const Pool2dShape& pool, const T* x, const InputNormalisation<T>& norm,
                         Scratch<T>& scratch) {
  if (!norm.active()) return x;
  const int64_t n = p.staticInput ? p.width : p.steps * p.width, plane = pool.inHeight * pool.inWidth;
  launch(normaliseKernel<T>, blocksFor(n), dim3(kThreads), 0, currentStream(), n, plane, pool.planes, x, norm, scratch.get());
  return scratch.get();
}

int64_t neuronPoolCountSlots(const Pool2dShape& pool) {
  if (!tilesByTwo(pool)) return 1;
  const int64_t blocks = (windowGeometry(pool).windows + kThreads - 1) / kThreads;
  return blocks > 0 ? blocks : 1;
}

template <class T>
void neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled, double* spikeCounts,
                       const InputNormalisation<T>& norm) {
  if (tilesByTwo(pool)) {
    const WindowGeometry g = windowGeometry(pool);
    launch(poolForwardKernel<T>, dim3(unsigned(neuronPoolCountSlots(pool))), dim3(kThreads), 0, currentStream(), p, g, x, pooled,
           spikeCounts, norm);
    return;
  }
  // the unfused twin: the normalised input, the full spikes and the argmax in scratch, then the pool and the
  // spike count
  const size_t full = size_t(p.steps * p.width);
  const Pool2dShape steps{p.steps * pool.planes, pool.inHeight, pool.inWidth, pool.kernel, pool.stride};
  Scratch<T> spikes(full), h(full), input(norm.active() ? size_t(p.staticInput ? p.width : p.steps * p.width) : 0);
  Scratch<int32_t> argmax(size_t(steps.planes * steps.outHeight() * steps.outWidth()));
  x = normalisedInput(p, pool, x, norm, input);
  neuronForward<T>(p, x, spikes.get(), h.get());
  maxPool2dForward<T>(steps, spikes.get(), pooled, argmax.get());
  reduceSum(int64_t(full), SpikeTerm{spikes.get(), sizeof(T) == sizeof(double)}, DeviceResult{spikeCounts, 1.0, false});
}

template <class T>
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled, T* dx,
                        const InputNormalisation<T>& norm) {
  const size_t full = size_t(p.steps * p.width);
  if (tilesByTwo(pool)) {
    const WindowGeometry g = windowGeometry(pool);
    if (p.steps <= kRegisterSteps) {
      launch(poolBackwardKernel<T, true>, blocksFor(g.windows), dim3(kThreads), 0, currentStream(), p, g, x, dPooled,
             static_cast<T*>(nullptr), dx, norm);
      return;
    }
    Scratch<T> h(full);
    launch(poolBackwardKernel<T, false>, blocksFor(g.windows), dim3(kThreads), 0, currentStream(), p, g, x, dPooled, h.get(), dx,
           norm);
    return;
  }
  Scratch<T> h(full);
  // the unfused twin: the spikes recomputed, pooled again for the argmax (the pooled values are not needed)
  const Pool2dShape steps{p.steps * pool.planes, pool.inHeight, pool.inWidth, pool.kernel, pool.stride};
  const size_t outputs = size_t(steps.planes * steps.outHeight() * steps.outWidth());
  Scratch<T> spikes(full), dSpikes(full), pooled(outputs), input(norm.active() ? size_t(p.staticInput ? p.width : p.steps * p.width) : 0);
  Scratch<int32_t> argmax(outputs);
  x = normalisedInput(p, pool, x, norm, input);
  neuronForward<T>(p, x, spikes.get(), h.get());
  maxPool2dForward<T>(steps, spikes.get(), pooled.get(), argmax.get());
  maxPool2dBackward<T>(steps, dPooled, argmax.get(), dSpikes.get());
  neuronBackward<T>(p, dSpikes.get(), h.get(), dx);
}

#define IKUN_INSTANTIATE(T)                                                                                   \
  template void neuronForward<T>(const NeuronParams&, const T*, T*, T*);                                      \
  template void neuronBackward<T>(const NeuronParams&, const T*, const T*, T*);                               \
  template void neuronForwardTangent<T>(const NeuronParams&, const T*, const T*, T*, T*);                     \
  template void neuronBackwardTangent<T>(const NeuronParams&, const T*, const T*, const T*, const T*, T*, T*); \
  template void neuronPoolForward<T>(const NeuronParams&, const Pool2dShape&, const T*, T*, double*,                  \
                                     const InputNormalisation<T>&);                                                         \
  template void neuronPoolBackward<T>(const NeuronParams&, const Pool2dShape&, const T*, const T*, T*,                     \
                                      const InputNormalisation<T>&);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
