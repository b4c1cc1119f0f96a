// BatchNorm over [batch, channels, spatial]: one thread per block of channels, statistics accumulated in
// double so float32 results do not depend on the batch size's rounding.
#include <algorithm>
#include <cmath>
#include <utility>

#include "../common/batchnorm_rules.h"
#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {
namespace {

template <class T, class Fn>
void forEachInChannel(const BatchNormShape& s, int64_t c, Fn&& fn) {
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t base = (n * s.channels + c) * s.spatial;
    for (int64_t i = 0; i < s.spatial; ++i) fn(base + i);
  }
}

// Two sums over one channel, sum terms(i).first and sum terms(i).second, in double. Eight partial sums
// per quantity, each over a fixed set of positions, so the loop vectorises while the result stays the
// same for any thread count (a single chain of double additions was latency-bound).
template <class Fn>
void sumPairOverChannel(const BatchNormShape& s, int64_t c, Fn&& terms, double& first, double& second) {
  constexpr int kLanes = 8;
  double a[kLanes] = {}, b[kLanes] = {};
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t base = (n * s.channels + c) * s.spatial;
    int64_t i = 0;
    for (; i + kLanes <= s.spatial; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const auto [u, v] = terms(base + i + k);
        a[k] += u;
        b[k] += v;
      }
    for (int k = 0; i < s.spatial; ++i, ++k) {
      const auto [u, v] = terms(base + i);
      a[k] += u;
      b[k] += v;
    }
  }
  first = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  second = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

// y == nullptr: the statistics only (a fused neuron kernel normalises its input itself).
template <class T>
void normalise(const BatchNormShape& s, int64_t c, const T* x, T mean, T invStd, T gamma, T beta, T* y) {
  if (!y) return;
  const BatchNormAffine<T> affine(mean, invStd, gamma, beta);
  forEachInChannel<T>(s, c, [&](int64_t i) { y[i] = affine(x[i]); });
}

}  // namespace

// One pass: sums of (x - shift) and its square in double, shifted by the channel's first value so the
// variance does not cancel (common/batchnorm_rules.h turns them into the statistics).
template <class T>
void batchNormForwardTrain(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* runningMean,
                           T* runningVar, double momentum, double eps, int64_t replicas, T* y, T* savedMean,
                           T* savedInvStd, double* batchesTracked) {
  if (batchesTracked) countTrainingBatch(*batchesTracked);
  const int64_t count = s.batch * s.spatial;
  parallelFor(s.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double shift = x[c * s.spatial];
      double sum, squares;
      sumPairOverChannel(s, c, [&](int64_t i) {
        const double d = double(x[i]) - shift;
        return std::pair<double, double>(d, d * d);
      }, sum, squares);
      const BatchNormStatistics stats = batchNormStatistics(shift, sum, squares, double(count), double(replicas), eps);
      savedMean[c] = T(stats.mean);
      savedInvStd[c] = T(stats.invStd);
      runningMean[c] = T(runningAverage(runningMean[c], stats.mean, momentum));
      runningVar[c] = T(runningAverage(runningVar[c], stats.unbiasedVar, momentum));
      normalise(s, c, x, T(stats.mean), T(stats.invStd), gamma[c], beta[c], y);
    }
  });
}

template <class T>
void batchNormForwardEval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                          const T* runningMean, const T* runningVar, double eps, T* y, T* savedMean,
                          T* savedInvStd) {
  parallelFor(s.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      savedMean[c] = runningMean[c];
      savedInvStd[c] = T(evalInvStd(double(runningVar[c]), eps));
      normalise(s, c, x, savedMean[c], savedInvStd[c], gamma[c], beta[c], y);
    }
  });
}

// Training: dx = invStd/M (M dxhat - sum(dxhat) - xhat sum(dxhat xhat)), dxhat = dy gamma.
// Evaluation: the statistics are constants, dx = dy gamma invStd.
template <class T>
void batchNormBackward(const BatchNormShape& s, bool training, const T* dy, const T* x, const T* gamma,
                       const T* savedMean, const T* savedInvStd, T* dx, T* dgamma, T* dbeta) {
  const double count = double(s.batch * s.spatial);
  parallelFor(s.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = savedMean[c], invStd = savedInvStd[c];
      double sumDy, sumDyCentred;
      sumPairOverChannel(s, c, [&](int64_t i) {
        return std::pair<double, double>(dy[i], double(dy[i]) * (double(x[i]) - mean));
      }, sumDy, sumDyCentred);
      const double sumDyXhat = sumDyCentred * invStd;
      dgamma[c] += T(sumDyXhat);
      dbeta[c] += T(sumDy);
      if (!dx) continue;
      const double g = gamma[c];
      if (!training) {
        const T scale = T(g * invStd);
        forEachInChannel<T>(s, c, [&](int64_t i) { dx[i] = dy[i] * scale; });
        continue;
      }
      const double meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
      forEachInChannel<T>(s, c, [&](int64_t i) {
        const double xhat = (x[i] - mean) * invStd;
        dx[i] = T(batchNormInputGrad(g, invStd, dy[i], xhat, meanDy, meanDyXhat));
      });
    }
  });
}

// Forward-mode (R-op) tangents. With xhat = (x - mean) r, A = mean(xDot), B = mean(xhat xDot):
// training: xhatDot = r (xDot - A - xhat B) (the batch statistics move with x); evaluation: xhatDot = r xDot.
// yDot = gammaDot xhat + betaDot + gamma xhatDot.
template <class T>
void batchNormForwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                             const T* gammaDot, const T* betaDot, const T* savedMean, const T* savedInvStd, T* yDot) {
  const double count = double(s.batch * s.spatial);
  parallelFor(s.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = savedMean[c], r = savedInvStd[c], g = gamma[c], gd = gammaDot ? double(gammaDot[c]) : 0.0,
                   bd = betaDot ? double(betaDot[c]) : 0.0;
      double a = 0, b = 0;
      if (training) {
        forEachInChannel<T>(s, c, [&](int64_t i) {
          a += xDot[i];
          b += (x[i] - mean) * r * xDot[i];
        });
        a /= count, b /= count;
      }
      forEachInChannel<T>(s, c, [&](int64_t i) {
        const double xhat = (x[i] - mean) * r;
        yDot[i] = T(gd * xhat + bd + g * batchNormXhatDot(r, xDot[i], a, xhat, b));
      });
    }
  });
}

// Tangent of batchNormBackward. Training, with C = mean(dy), D = mean(dy xhat):
//   dx = g r (dy - C - xhat D)
//   dxDot = (gDot r + g rDot)(dy - C - xhat D) + g r (dyDot - CDot - xhatDot D - xhat DDot), rDot = -r^2 B,
//   CDot = mean(dyDot), DDot = mean(dyDot xhat + dy xhatDot);
// evaluation: dx = g r dy, dxDot = r (gDot dy + g dyDot). Both: dgammaDot += sum(dyDot xhat + dy xhatDot),
// dbetaDot += sum(dyDot).
template <class T>
void batchNormBackwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                              const T* gammaDot, const T* savedMean, const T* savedInvStd, const T* dy,
                              const T* dyDot, T* dx, T* dxDot, T* dgammaDot, T* dbetaDot) {
  const double count = double(s.batch * s.spatial);
  parallelFor(s.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = savedMean[c], r = savedInvStd[c], g = gamma[c], gd = gammaDot ? double(gammaDot[c]) : 0.0;
      double sumXd = 0, sumXhatXd = 0, sumDy = 0, sumDyXhat = 0, sumDyd = 0, sumDydXhat = 0, sumDyXd = 0;
      forEachInChannel<T>(s, c, [&](int64_t i) {
        const double xhat = (x[i] - mean) * r;
        sumXd += xDot[i];
        sumXhatXd += xhat * xDot[i];
        sumDy += dy[i];
        sumDyXhat += dy[i] * xhat;
        sumDyd += dyDot[i];
        sumDydXhat += dyDot[i] * xhat;
        sumDyXd += dy[i] * xDot[i];
      });
      const double a = training ? sumXd / count : 0.0, b = training ? sumXhatXd / count : 0.0;
      // sum(dy xhatDot) with xhatDot = r (xDot - a - xhat b)
      const double sumDyXhatDot = r * (sumDyXd - a * sumDy - b * sumDyXhat);
      dgammaDot[c] += T(sumDydXhat + sumDyXhatDot);
      dbetaDot[c] += T(sumDyd);
      if (!training) {
        forEachInChannel<T>(s, c, [&](int64_t i) {
          dx[i] = T(g * r * dy[i]);
          dxDot[i] = T(r * (gd * dy[i] + g * dyDot[i]));
        });
        continue;
      }
      const double meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
      const double meanDyd = sumDyd / count, meanDyXhatDotted = (sumDydXhat + sumDyXhatDot) / count;
      const double rDot = -r * r * b;
      forEachInChannel<T>(s, c, [&](int64_t i) {
        const double xhat = (x[i] - mean) * r;
        const double xhatDot = batchNormXhatDot(r, xDot[i], a, xhat, b);
        const double centred = dy[i] - meanDy - xhat * meanDyXhat;
        dx[i] = T(g * r * centred);
        dxDot[i] = T(batchNormInputGradTangent(g, gd, r, rDot, centred, dyDot[i], meanDyd, xhat, xhatDot, meanDyXhat,
                                               meanDyXhatDotted));
      });
    }
  });
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

}  // namespace ikun::cpu
