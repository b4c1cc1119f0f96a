// Losses on firing rates [batch, classes] and the correct-prediction count (the twin of cpu/loss.cpp),
// through the one reduction of reduce.cuh: each term also writes its part of the gradient.
#include <cmath>

#include "reduce.cuh"

namespace ikun::cuda {
namespace {

// (rate - onehot)^2 of element i; writes the gradient 2 (rate - onehot) / (batch classes).
template <class T>
struct SquaredErrorTerm {
  const T* rate;
  const int32_t* labels;
  T* grad;
  int64_t classes;
  double scale;
  __device__ double operator()(int64_t i) const {
    const int64_t n = i / classes, c = i - n * classes;
    const int32_t label = labels[n];
    const double target = label == c ? 1.0 : 0.0;
    const double diff = label >= 0 && label < classes ? double(rate[i]) - target : NAN;
    grad[i] = T(2.0 * diff * scale);
    return diff * diff;
  }
};

// The cross-entropy of softmax(rate row n) at the label; writes the row's gradient (softmax - onehot) / batch.
template <class T>
struct CrossEntropyTerm {
  const T* rate;
  const int32_t* labels;
  T* grad;
  int64_t batch, classes;
  __device__ double operator()(int64_t n) const {
    const T* row = rate + n * classes;
    const int32_t label = labels[n];
    double maxValue = double(row[0]);
    for (int64_t c = 1; c < classes; ++c) maxValue = fmax(maxValue, double(row[c]));
    double denom = 0;
    for (int64_t c = 0; c < classes; ++c) denom += exp(double(row[c]) - maxValue);
    const double logDenom = log(denom) + maxValue;
    for (int64_t c = 0; c < classes; ++c) {
      const double softmax = exp(double(row[c]) - logDenom);
      grad[n * classes + c] = T((softmax - (label == c ? 1.0 : 0.0)) / double(batch));
    }
    return label >= 0 && label < classes ? logDenom - double(row[label]) : NAN;
  }
};

template <class T>
struct CorrectTerm {
  const T* rate;
  const int32_t* labels;
  int64_t classes;
  __device__ double operator()(int64_t n) const {
    const T* row = rate + n * classes;
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;  // the first on ties, as predict()
    return best == labels[n] ? 1.0 : 0.0;
  }
};

DeviceResult scaled(DeviceResult r, double factor) { return DeviceResult{r.target, r.scale * factor, r.accumulate}; }

}  // namespace

template <class T>
void mseRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad, DeviceResult loss) {
  const double scale = 1.0 / double(batch * classes);
  reduceSum(batch * classes, SquaredErrorTerm<T>{rate, labels, grad, classes, scale}, scaled(loss, scale));
}

template <class T>
void crossEntropyRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad, DeviceResult loss) {
  reduceSum(batch, CrossEntropyTerm<T>{rate, labels, grad, batch, classes}, scaled(loss, 1.0 / double(batch)));
}

template <class T>
void countCorrect(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, DeviceResult r) {
  reduceSum(batch, CorrectTerm<T>{rate, labels, classes}, r);
}

#define IKUN_INSTANTIATE(T)                                                                             \
  template void mseRateLoss<T>(int64_t, int64_t, const T*, const int32_t*, T*, DeviceResult);           \
  template void crossEntropyRateLoss<T>(int64_t, int64_t, const T*, const int32_t*, T*, DeviceResult);  \
  template void countCorrect<T>(int64_t, int64_t, const T*, const int32_t*, DeviceResult);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cuda
