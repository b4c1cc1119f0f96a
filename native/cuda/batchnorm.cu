// BatchNorm over [batch, channels, spatial]: one block per channel, sums in double over the channel's
// values (each thread a fixed strided subset, then the block's fixed tree), the formulas of
// common/batchnorm_rules.h shared with cpu/batchnorm.cpp.
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

template <class T>
__global__ void forwardTrainKernel(ChannelView v, const T* x, const T* gamma, const T* beta, T* runningMean, T* runningVar,
                                   double momentum, double eps, double replicas, T* y, T* savedMean, T* savedInvStd) {
  const unsigned c = blockIdx.x;
  const double shift = double(x[v.at(c, 0)]);
  double sum = 0, squares = 0;
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const double d = double(x[v.at(c, i)]) - shift;
    sum += d;
    squares += d * d;
  }
  sum = blockSum(sum);
  squares = blockSum(squares);
  T mean = T(0), invStd = T(0);
  if (threadIdx.x == 0) {
    const BatchNormStatistics stats = batchNormStatistics(shift, sum, squares, double(v.count), replicas, eps);
    savedMean[c] = T(stats.mean);
    savedInvStd[c] = T(stats.invStd);
    runningMean[c] = T(runningAverage(runningMean[c], stats.mean, momentum));
    runningVar[c] = T(runningAverage(runningVar[c], stats.unbiasedVar, momentum));
    mean = T(stats.mean), invStd = T(stats.invStd);
  }
  if (!y) return;  // the statistics only: a fused neuron kernel normalises its input itself (uniform branch)
  broadcast2(mean, invStd);
  const BatchNormAffine<T> affine(mean, invStd, gamma[c], beta[c]);
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    y[at] = affine(x[at]);
  }
}

template <class T>
__global__ void forwardEvalKernel(ChannelView v, const T* x, const T* gamma, const T* beta, const T* runningMean,
                                  const T* runningVar, double eps, T* y, T* savedMean, T* savedInvStd) {
  const unsigned c = blockIdx.x;
  const T mean = runningMean[c], invStd = T(evalInvStd(double(runningVar[c]), eps));
  if (threadIdx.x == 0) savedMean[c] = mean, savedInvStd[c] = invStd;
  if (!y) return;
  const BatchNormAffine<T> affine(mean, invStd, gamma[c], beta[c]);
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    y[at] = affine(x[at]);
  }
}

template <class T>
__global__ void backwardKernel(ChannelView v, bool training, const T* dy, const T* x, const T* gamma, const T* savedMean,
                               const T* savedInvStd, T* dx, T* dgamma, T* dbeta) {
  const unsigned c = blockIdx.x;
  const double mean = savedMean[c], invStd = savedInvStd[c];
  double sumDy = 0, sumDyCentred = 0;
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    sumDy += double(dy[at]);
    sumDyCentred += double(dy[at]) * (double(x[at]) - mean);
  }
  sumDy = blockSum(sumDy);
  sumDyCentred = blockSum(sumDyCentred);
  double meanDy = 0, meanDyXhat = 0;
  if (threadIdx.x == 0) {
    const double sumDyXhat = sumDyCentred * invStd;
    dgamma[c] += T(sumDyXhat);
    dbeta[c] += T(sumDy);
    meanDy = sumDy / double(v.count), meanDyXhat = sumDyXhat / double(v.count);
  }
  if (!dx) return;  // uniform: every thread of the launch returns here, before the barrier below
  broadcast2(meanDy, meanDyXhat);
  const double g = gamma[c];
  if (!training) {
    const T scale = T(g * invStd);
    for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
      const int64_t at = v.at(c, i);
      dx[at] = dy[at] * scale;
    }
    return;
  }
  for (unsigned i = threadIdx.x; i < v.count; i += blockDim.x) {
    const int64_t at = v.at(c, i);
    const double xhat = (double(x[at]) - mean) * invStd;
    dx[at] = T(batchNormInputGrad(g, invStd, double(dy[at]), xhat, meanDy, meanDyXhat));
  }
}

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
                           T* savedInvStd) {
  launch(forwardTrainKernel<T>, channelBlocks(s), dim3(kThreads), 0, currentStream(), viewOf(s), x, gamma, beta, runningMean,
         runningVar, momentum, eps, double(replicas), y, savedMean, savedInvStd);
}

template <class T>
void batchNormForwardEval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, const T* runningMean,
                          const T* runningVar, double eps, T* y, T* savedMean, T* savedInvStd) {
  launch(forwardEvalKernel<T>, channelBlocks(s), dim3(kThreads), 0, currentStream(), viewOf(s), x, gamma, beta, runningMean,
         runningVar, eps, y, savedMean, savedInvStd);
}

template <class T>
void batchNormBackward(const BatchNormShape& s, bool training, const T* dy, const T* x, const T* gamma,
                       const T* savedMean, const T* savedInvStd, T* dx, T* dgamma, T* dbeta) {
  launch(backwardKernel<T>, channelBlocks(s), dim3(kThreads), 0, currentStream(), viewOf(s), training, dy, x, gamma, savedMean,
         savedInvStd, dx, dgamma, dbeta);
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
                                         double, int64_t, T*, T*, T*);                                      \
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
