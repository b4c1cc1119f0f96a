// BatchNorm's statistics, running averages and per-element steps: the one copy of these formulas, called
// by the CPU kernels (native/cpu/batchnorm.cpp) and the CUDA kernels (native/cuda/batchnorm.cu).
// Statistics come from sums over one channel, taken in double; per-element steps work in double and the
// caller rounds to its precision.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace ikun {

struct BatchNormStatistics {
  double mean, invStd, unbiasedVar;
};

// From the sums of d = x - shift and of d^2 over one channel of `count` values (shift: the channel's
// first value, so the variance does not cancel). replicas > 1: the input stands for that many identical
// copies (the first block of a network fed the same image at every time step), which changes only the
// unbiased estimate. Normalising uses the biased variance, the running estimate the unbiased one.
IKUN_HD BatchNormStatistics batchNormStatistics(double shift, double sum, double squares, double count, double replicas,
                                                double eps) {
  const double meanShifted = sum / count;
  const double mean = shift + meanShifted;
  double deviations = squares - sum * meanShifted;  // sum of (x - mean)^2
  if (deviations < 0) deviations = 0;
  const double biasedVar = deviations / count;
  const double total = count * replicas;
  const double unbiasedVar = total > 1 ? deviations * replicas / (total - 1) : biasedVar;
  return {mean, 1.0 / std::sqrt(biasedVar + eps), unbiasedVar};
}

// PyTorch's running estimate: (1 - momentum) running + momentum value.
IKUN_HD double runningAverage(double running, double value, double momentum) {
  return (1 - momentum) * running + momentum * value;
}

// num_batches_tracked after a training forward (a float64 scalar, exact up to 2^53 batches).
IKUN_HD void countTrainingBatch(double& batchesTracked) { batchesTracked += 1; }

// Evaluation mode normalises with the running variance.
IKUN_HD double evalInvStd(double runningVar, double eps) { return 1.0 / std::sqrt(runningVar + eps); }

// y = gamma (x - mean) invStd + beta as one multiply-add per element, in the working precision. On the GPU
// the multiply-adds are explicit fused ones, so that every kernel that normalises (BatchNorm's own, and the
// neuron kernels that normalise their input on the fly) rounds alike whatever its contraction flags.
template <class T>
struct BatchNormAffine {
  T scale, shift;
  IKUN_HD BatchNormAffine(T mean, T invStd, T gamma, T beta) : scale(gamma * invStd), shift(shiftOf(mean, scale, beta)) {}
  IKUN_HD T operator()(T x) const {
#if defined(__CUDA_ARCH__)
    return fma(x, scale, shift);
#else
    return x * scale + shift;
#endif
  }

 private:
  static IKUN_HD T shiftOf(T mean, T scale, T beta) {
#if defined(__CUDA_ARCH__)
    return fma(-mean, scale, beta);
#else
    return beta - mean * scale;
#endif
  }
};

// A BatchNorm applied to a neuron layer's input as the neuron reads it (the fused BatchNorm + neuron +
// max-pool of training): plane q of the input is channel q % channels. gamma == nullptr: no normalisation.
template <class T>
struct InputNormalisation {
  const T* gamma = nullptr;
  const T* beta = nullptr;
  const T* mean = nullptr;
  const T* invStd = nullptr;
  int64_t channels = 1;
  IKUN_HD bool active() const { return gamma != nullptr; }
  IKUN_HD BatchNormAffine<T> forPlane(int64_t plane) const {
    const int64_t c = plane % channels;
    return BatchNormAffine<T>(mean[c], invStd[c], gamma[c], beta[c]);
  }
};

// Training backward: dx = g invStd (dy - mean(dy) - xhat mean(dy xhat)).
IKUN_HD double batchNormInputGrad(double gamma, double invStd, double dy, double xhat, double meanDy, double meanDyXhat) {
  return gamma * invStd * (dy - meanDy - xhat * meanDyXhat);
}

// Forward-mode (R-op) tangent of xhat: training, xhatDot = r (xDot - A - xhat B) with A = mean(xDot),
// B = mean(xhat xDot) (the batch statistics move with x); evaluation passes A = B = 0.
IKUN_HD double batchNormXhatDot(double invStd, double xDot, double meanXDot, double xhat, double meanXhatXDot) {
  return invStd * (xDot - meanXDot - xhat * meanXhatXDot);
}

// Tangent of the training input gradient dx = g r (dy - C - xhat D), C = mean(dy), D = mean(dy xhat):
// dxDot = (gDot r + g rDot) centred + g r (dyDot - CDot - xhatDot D - xhat DDot), with centred =
// dy - C - xhat D, rDot = -r^2 B, CDot = mean(dyDot), DDot = mean(dyDot xhat + dy xhatDot).
IKUN_HD double batchNormInputGradTangent(double gamma, double gammaDot, double invStd, double invStdDot, double centred,
                                         double dyDot, double meanDyDot, double xhat, double xhatDot, double meanDyXhat,
                                         double meanDyXhatDot) {
  return (gammaDot * invStd + gamma * invStdDot) * centred +
         gamma * invStd * (dyDot - meanDyDot - xhatDot * meanDyXhat - xhat * meanDyXhatDot);
}

}  // namespace ikun
