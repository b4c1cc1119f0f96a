// BatchNorm over [batch, channels, spatial], the formulas of common/batchnorm_rules.h shared with
// cpu/batchnorm.cpp. Sums are in double and in a fixed order (the same bits every run).
//
// Training and evaluation (forward, backward) spread each channel over `chunks` blocks (ChannelChunks:
// a grid of channels x chunks, a few thousand values per block), since one block per channel leaves
// most of a large GPU idle and waits on one load at a time per thread: each block sums its chunk (fixed
// tree), one thread per channel adds the chunks in order and derives the channel's constants, and the
// elementwise pass runs over the same grid. The Hessian tangents keep one block per channel.
#include "../common/batchnorm_rules.h"
#include "common.cuh"

namespace ikun::cuda {
namespace {

// The values of one channel: i in [0, count) is (sample i / spatial, position i % spatial).
struct ChannelView {
  unsigned spatial, channels;
  unsigned count;
  __device__ __forceinline__ int64_t at(unsigned channel, unsigned i) const {
    const unsigned n = i / spatial, p = i - n * spatial;
    return (int64_t(n) * channels + channel) * spatial + p;
  }
};

ChannelView viewOf(const BatchNormShape& s) {
  if (s.batch * s.spatial >= (int64_t(1) << 32) || s.batch * s.channels * s.spatial >= (int64_t(1) << 40))
    throw std::invalid_argument("batchnorm: too many values per channel for the CUDA kernels; use a smaller batch");
  return ChannelView{unsigned(s.spatial), unsigned(s.channels), unsigned(s.batch * s.spatial)};
}

// Thread 0's values, handed to every thread of the block.
template <class T>
__device__ void broadcast2(T& a, T& b) {
  IKUN_SHARED_ARRAY(T, slot, 2);
  if (threadIdx.x == 0) slot[0] = a, slot[1] = b;
  __syncthreads();
  a = slot[0], b = slot[1];
  __syncthreads();
}

// ---- training and evaluation: channels x chunks ---------------------------------------------------------

// Chunk z of channel c is its values [z * chunkSize, min(count, (z + 1) * chunkSize)); each thread of the
// block (kThreads of them) walks every kThreads-th value of the chunk, stepping its (sample, position)
// without a division: kThreads = samplesPerStride * spatial + positionsPerStride.
struct ChannelChunks {
  ChannelView view;
  unsigned chunks, chunkSize, samplesPerStride, positionsPerStride;

  template <class F>
  __device__ __forceinline__ void forEach(unsigned c, unsigned z, F&& f) const {
    const int64_t begin = int64_t(z) * chunkSize, end = minIndex(begin + chunkSize, int64_t(view.count));
    int64_t i = begin + threadIdx.x;
    if (i >= end) return;
    unsigned p = unsigned(i) % view.spatial;
    const int64_t planeStride = int64_t(view.channels) * view.spatial;
    int64_t plane = (int64_t(unsigned(i) / view.spatial) * view.channels + c) * view.spatial;  // offset of (sample, c, 0)
    for (; i < end; i += kThreads) {
      f(plane + p);
      plane += samplesPerStride * planeStride;
      p += positionsPerStride;
      if (p >= view.spatial) p -= view.spatial, plane += planeStride;
    }
  }
};

// About 4096 values per block; shapes only, so the order of the sums does not depend on the GPU.
ChannelChunks chunksOf(const BatchNormShape& s) {
  const ChannelView v = viewOf(s);
  if (v.count == 0) throw std::invalid_argument("batchnorm: no values per channel");
  if (s.channels > 0x7fffffff) throw std::invalid_argument("batchnorm: too many channels for the CUDA kernels");
  constexpr unsigned kValuesPerBlock = 4096, kMaxChunks = 1024;
  unsigned chunks = (v.count + kValuesPerBlock - 1) / kValuesPerBlock;
  if (chunks > kMaxChunks) chunks = kMaxChunks;
  const unsigned chunkSize = (v.count + chunks - 1) / chunks;
  chunks = (v.count + chunkSize - 1) / chunkSize;  // no empty chunk
  return ChannelChunks{v, chunks, chunkSize, unsigned(kThreads) / v.spatial, unsigned(kThreads) % v.spatial};
}

dim3 chunkGrid(const ChannelChunks& k) { return dim3(k.view.channels, k.chunks); }
dim3 perChannelBlocks(const ChannelChunks& k) { return blocksFor(int64_t(k.view.channels)); }  // a thread per channel

// partials[(c * chunks + z) * 2 + {0, 1}] = the sums of (x - shift) and (x - shift)^2 over chunk z of
// channel c, shift = the channel's first value (keeps the variance's subtraction exact enough).
template <class T>
__global__ void statisticsPartialKernel(ChannelChunks k, const T* x, double* partials) {
  const unsigned c = blockIdx.x, z = blockIdx.y;
  const double shift = double(x[int64_t(c) * k.view.spatial]);
  double sum = 0, squares = 0;
  k.forEach(c, z, [&](int64_t at) {
    const double d = double(x[at]) - shift;
    sum += d;
    squares += d * d;
  });
  sum = blockSum(sum);
  squares = blockSum(squares);
  if (threadIdx.x == 0) partials[(int64_t(c) * k.chunks + z) * 2] = sum, partials[(int64_t(c) * k.chunks + z) * 2 + 1] = squares;
}

// One thread per channel: the chunks' sums in chunk order, then the statistics and running averages.
template <class T>
__global__ void statisticsKernel(ChannelChunks k, const T* x, const double* partials, T* runningMean, T* runningVar,
                                 double momentum, double eps, double replicas, T* savedMean, T* savedInvStd,
                                 double* batchesTracked) {
  // the batch count rides along: one launch fewer per BatchNorm and training step than an add of its own
  if (batchesTracked && globalThreadIndex() == 0) countTrainingBatch(*batchesTracked);
  for (int64_t c = globalThreadIndex(); c < k.view.channels; c += globalThreadCount()) {
    double sum = 0, squares = 0;
    for (unsigned z = 0; z < k.chunks; ++z) sum += partials[(c * k.chunks + z) * 2], squares += partials[(c * k.chunks + z) * 2 + 1];
    const BatchNormStatistics stats =
        batchNormStatistics(double(x[c * k.view.spatial]), sum, squares, double(k.view.count), replicas, eps);
    savedMean[c] = T(stats.mean);
    savedInvStd[c] = T(stats.invStd);
    runningMean[c] = T(runningAverage(runningMean[c], stats.mean, momentum));
    runningVar[c] = T(runningAverage(runningVar[c], stats.unbiasedVar, momentum));
  }
}

// Evaluation: the running statistics as the saved ones (what backward and the tangents read).
template <class T>
__global__ void evalStatisticsKernel(int64_t channels, const T* runningMean, const T* runningVar, double eps, T* savedMean,
                                     T* savedInvStd) {
  for (int64_t c = globalThreadIndex(); c < channels; c += globalThreadCount())
    savedMean[c] = runningMean[c], savedInvStd[c] = T(evalInvStd(double(runningVar[c]), eps));
}

// y = gamma (x - mean) / std + beta with the saved statistics.
template <class T>
__global__ void normaliseKernel(ChannelChunks k, const T* x, const T* gamma, const T* beta, const T* savedMean,
                                const T* savedInvStd, T* y) {
  const unsigned c = blockIdx.x;
  const BatchNormAffine<T> affine(savedMean[c], savedInvStd[c], gamma[c], beta[c]);
  k.forEach(c, blockIdx.y, [&](int64_t at) { y[at] = affine(x[at]); });
}

// partials: the chunk sums of dy and dy (x - mean).
template <class T>
__global__ void backwardPartialKernel(ChannelChunks k, const T* dy, const T* x, const T* savedMean, double* partials) {
  const unsigned c = blockIdx.x, z = blockIdx.y;
  const double mean = savedMean[c];
  double sumDy = 0, sumDyCentred = 0;
  k.forEach(c, z, [&](int64_t at) {
    sumDy += double(dy[at]);
    sumDyCentred += double(dy[at]) * (double(x[at]) - mean);
  });
  sumDy = blockSum(sumDy);
  sumDyCentred = blockSum(sumDyCentred);
  if (threadIdx.x == 0)
    partials[(int64_t(c) * k.chunks + z) * 2] = sumDy, partials[(int64_t(c) * k.chunks + z) * 2 + 1] = sumDyCentred;
}

// One thread per channel: dgamma, dbeta, and the means dx needs (coefficients[c * 2 + {0, 1}]).
template <class T>
__global__ void backwardSumsKernel(ChannelChunks k, const double* partials, const T* savedInvStd, T* dgamma, T* dbeta,
                                   double* coefficients) {
  for (int64_t c = globalThreadIndex(); c < k.view.channels; c += globalThreadCount()) {
    double sumDy = 0, sumDyCentred = 0;
    for (unsigned z = 0; z < k.chunks; ++z)
      sumDy += partials[(c * k.chunks + z) * 2], sumDyCentred += partials[(c * k.chunks + z) * 2 + 1];
    const double sumDyXhat = sumDyCentred * double(savedInvStd[c]);
    dgamma[c] += T(sumDyXhat);
    dbeta[c] += T(sumDy);
    coefficients[c * 2] = sumDy / double(k.view.count), coefficients[c * 2 + 1] = sumDyXhat / double(k.view.count);
  }
}

template <class T>
__global__ void inputGradientKernel(ChannelChunks k, bool training, const T* dy, const T* x, const T* gamma, const T* savedMean,
                                    const T* savedInvStd, const double* coefficients, T* dx) {
  const unsigned c = blockIdx.x;
  const double mean = savedMean[c], invStd = savedInvStd[c], g = gamma[c];
  if (!training) {
    const T scale = T(g * invStd);
    k.forEach(c, blockIdx.y, [&](int64_t at) { dx[at] = dy[at] * scale; });
    return;
  }
  const double meanDy = coefficients[int64_t(c) * 2], meanDyXhat = coefficients[int64_t(c) * 2 + 1];
  k.forEach(c, blockIdx.y, [&](int64_t at) {
    const double xhat = (double(x[at]) - mean) * invStd;
    dx[at] = T(batchNormInputGrad(g, invStd, double(dy[at]), xhat, meanDy, meanDyXhat));
  });
}

// ---- Hessian tangents: one block per channel ------------------------------------------------------------

template <class T>
__global__ void forwardTangentKernel(ChannelView v, bool training, const T* x, const T* xDot, const T* gamma,
                                     const T* gammaDot, const T* betaDot, const T* savedMean, const T* savedInvStd, T* yDot) {
  const unsigned c = blockIdx.x;
  const double mean = savedMean[c], r = savedInvStd[c], g = gamma[c];
  const double gd = gammaDot ? double(gammaDot[c]) : 0.0, bd = betaDot ? double(betaDot[c]) : 0.0;
  double a = 0, b = 0;
  if (training) {
    for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
      const int64_t at = v.at(c, i);
      a += double(xDot[at]);
      b += (double(x[at]) - mean) * r * double(xDot[at]);
    }
    a = blockSum(a);
    b = blockSum(b);
    if (threadIdx.x == 0) a /= double(v.count), b /= double(v.count);
    broadcast2(a, b);
  }
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    const double xhat = (double(x[at]) - mean) * r;
    yDot[at] = T(gd * xhat + bd + g * batchNormXhatDot(r, double(xDot[at]), a, xhat, b));
  }
}

template <class T>
__global__ void backwardTangentKernel(ChannelView v, bool training, const T* x, const T* xDot, const T* gamma,
                                      const T* gammaDot, const T* savedMean, const T* savedInvStd, const T* dy,
                                      const T* dyDot, T* dx, T* dxDot, T* dgammaDot, T* dbetaDot) {
  const unsigned c = blockIdx.x;
  const double mean = savedMean[c], r = savedInvStd[c], g = gamma[c], gd = gammaDot ? double(gammaDot[c]) : 0.0;
  double sumXd = 0, sumXhatXd = 0, sumDy = 0, sumDyXhat = 0, sumDyd = 0, sumDydXhat = 0, sumDyXd = 0;
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    const double xhat = (double(x[at]) - mean) * r, xd = double(xDot[at]), d = double(dy[at]), dd = double(dyDot[at]);
    sumXd += xd;
    sumXhatXd += xhat * xd;
    sumDy += d;
    sumDyXhat += d * xhat;
    sumDyd += dd;
    sumDydXhat += dd * xhat;
    sumDyXd += d * xd;
  }
  sumXd = blockSum(sumXd);
  sumXhatXd = blockSum(sumXhatXd);
  sumDy = blockSum(sumDy);
  sumDyXhat = blockSum(sumDyXhat);
  sumDyd = blockSum(sumDyd);
  sumDydXhat = blockSum(sumDydXhat);
  sumDyXd = blockSum(sumDyXd);
  const double count = double(v.count);
  // Thread 0 holds the sums; every derived constant below is computed there and broadcast.
  double a = 0, b = 0, meanDy = 0, meanDyXhat = 0, meanDyd = 0, meanDyXhatDotted = 0;
  if (threadIdx.x == 0) {
    a = training ? sumXd / count : 0.0, b = training ? sumXhatXd / count : 0.0;
    const double sumDyXhatDot = r * (sumDyXd - a * sumDy - b * sumDyXhat);  // sum(dy xhatDot)
    dgammaDot[c] += T(sumDydXhat + sumDyXhatDot);
    dbetaDot[c] += T(sumDyd);
    meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
    meanDyd = sumDyd / count, meanDyXhatDotted = (sumDydXhat + sumDyXhatDot) / count;
  }
  broadcast2(a, b);
  broadcast2(meanDy, meanDyXhat);
  broadcast2(meanDyd, meanDyXhatDotted);
  if (!training) {
    for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
      const int64_t at = v.at(c, i);
      dx[at] = T(g * r * double(dy[at]));
      dxDot[at] = T(r * (gd * double(dy[at]) + g * double(dyDot[at])));
    }
    return;
  }
  const double rDot = -r * r * b;
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    const double xhat = (double(x[at]) - mean) * r;
    const double xhatDot = batchNormXhatDot(r, double(xDot[at]), a, xhat, b);
    const double centred = double(dy[at]) - meanDy - xhat * meanDyXhat;
    dx[at] = T(g * r * centred);
    dxDot[at] = T(batchNormInputGradTangent(g, gd, r, rDot, centred, double(dyDot[at]), meanDyd, xhat, xhatDot, meanDyXhat,
                                            meanDyXhatDotted));
  }
}

dim3 channelBlocks(const BatchNormShape& s) { return dim3(unsigned(s.channels)); }

}  // namespace

template <class T>
void batchNormForwardTrain(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* runningMean,
                           T* runningVar, double momentum, double eps, int64_t replicas, T* y, T* savedMean,
                           T* savedInvStd, double* batchesTracked) {
  const ChannelChunks k = chunksOf(s);
  Scratch<double> partials(size_t(s.channels) * k.chunks * 2);
  launch(statisticsPartialKernel<T>, chunkGrid(k), dim3(kThreads), 0, currentStream(), k, x, partials.get());
  launch(statisticsKernel<T>, perChannelBlocks(k), dim3(kThreads), 0, currentStream(), k, x, static_cast<const double*>(partials.get()),
         runningMean, runningVar, momentum, eps, double(replicas), savedMean, savedInvStd, batchesTracked);
  // y null: the statistics only (a fused neuron kernel normalises its input itself)
  if (y) launch(normaliseKernel<T>, chunkGrid(k), dim3(kThreads), 0, currentStream(), k, x, gamma, beta,
                static_cast<const T*>(savedMean), static_cast<const T*>(savedInvStd), y);
}

template <class T>
void batchNormForwardEval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, const T* runningMean,
                          const T* runningVar, double eps, T* y, T* savedMean, T* savedInvStd) {
  const ChannelChunks k = chunksOf(s);
  launch(evalStatisticsKernel<T>, perChannelBlocks(k), dim3(kThreads), 0, currentStream(), s.channels, runningMean, runningVar, eps,
         savedMean, savedInvStd);
  if (y) launch(normaliseKernel<T>, chunkGrid(k), dim3(kThreads), 0, currentStream(), k, x, gamma, beta,
                static_cast<const T*>(savedMean), static_cast<const T*>(savedInvStd), y);
}

template <class T>
void batchNormBackward(const BatchNormShape& s, bool training, const T* dy, const T* x, const T* gamma,
                       const T* savedMean, const T* savedInvStd, T* dx, T* dgamma, T* dbeta) {
  const ChannelChunks k = chunksOf(s);
  Scratch<double> partials(size_t(s.channels) * k.chunks * 2), coefficients(size_t(s.channels) * 2);
  launch(backwardPartialKernel<T>, chunkGrid(k), dim3(kThreads), 0, currentStream(), k, dy, x, savedMean, partials.get());
  launch(backwardSumsKernel<T>, perChannelBlocks(k), dim3(kThreads), 0, currentStream(), k, static_cast<const double*>(partials.get()),
         savedInvStd, dgamma, dbeta, coefficients.get());
  if (dx)
    launch(inputGradientKernel<T>, chunkGrid(k), dim3(kThreads), 0, currentStream(), k, training, dy, x, gamma, savedMean,
           savedInvStd, static_cast<const double*>(coefficients.get()), dx);
}

template <class T>
void batchNormForwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                             const T* gammaDot, const T* betaDot, const T* savedMean, const T* savedInvStd, T* yDot) {
  launch(forwardTangentKernel<T>, channelBlocks(s), dim3(kThreads), 0, currentStream(), viewOf(s), training, x, xDot, gamma,
         gammaDot, betaDot, savedMean, savedInvStd, yDot);
}

template <class T>
void batchNormBackwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                              const T* gammaDot, const T* savedMean, const T* savedInvStd, const T* dy,
                              const T* dyDot, T* dx, T* dxDot, T* dgammaDot, T* dbetaDot) {
  launch(backwardTangentKernel<T>, channelBlocks(s), dim3(kThreads), 0, currentStream(), viewOf(s), training, x, xDot, gamma,
         gammaDot, savedMean, savedInvStd, dy, dyDot, dx, dxDot, dgammaDot, dbetaDot);
}

#define IKUN_INSTANTIATE(T)                                                                                  \
  template void batchNormForwardTrain<T>(const BatchNormShape&, const T*, const T*, const T*, T*, T*, double, \
                                         double, int64_t, T*, T*, T*, double*);                             \
  template void batchNormForwardEval<T>(const BatchNormShape&, const T*, const T*, const T*, const T*,        \
                                        const T*, double, T*, T*, T*);                                      \
  template void batchNormBackward<T>(const BatchNormShape&, bool, const T*, const T*, const T*, const T*,     \
                                     const T*, T*, T*, T*);                                                 \
  template void batchNormForwardTangent<T>(const BatchNormShape&, bool, const T*, const T*, const T*, const T*, \
                                           const T*, const T*, const T*, T*);                               \
  template void batchNormBackwardTangent<T>(const BatchNormShape&, bool, const T*, const T*, const T*,         \
                                            const T*, const T*, const T*, const T*, const T*, T*, T*, T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
