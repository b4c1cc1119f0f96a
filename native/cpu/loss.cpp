// Losses on firing rates. MSE: mean over batch * classes of (rate - onehot)^2, as the paper's script.
// Cross-entropy: softmax over the rates of each sample, mean over the batch.
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace ikun::cpu {

template <class T>
double mseRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad) {
  const double scale = 1.0 / double(batch * classes);
  double sum = 0;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t i = n * classes + c;
      const double diff = double(rate[i]) - (labels[n] == c ? 1.0 : 0.0);
      sum += diff * diff;
      grad[i] = T(2.0 * diff * scale);
    }
  }
  return sum * scale;
}

template <class T>
double crossEntropyRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad) {
  double total = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const T* row = rate + n * classes;
    const double maxValue = *std::max_element(row, row + classes);
    double denom = 0;
    for (int64_t c = 0; c < classes; ++c) denom += std::exp(double(row[c]) - maxValue);
    const double logDenom = std::log(denom) + maxValue;
    total += logDenom - double(row[labels[n]]);
    for (int64_t c = 0; c < classes; ++c) {
      const double softmax = std::exp(double(row[c]) - logDenom);
      grad[n * classes + c] = T((softmax - (labels[n] == c ? 1.0 : 0.0)) / double(batch));
    }
  }
  return total / double(batch);
}

template <class T>
double countCorrect(int64_t batch, int64_t classes, const T* rate, const int32_t* labels) {
  double correct = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const T* row = rate + n * classes;
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;  // the first on ties, as predict()
    if (best == labels[n]) correct += 1;
  }
  return correct;
}

template double countCorrect<float>(int64_t, int64_t, const float*, const int32_t*);
template double countCorrect<double>(int64_t, int64_t, const double*, const int32_t*);
template double mseRateLoss<float>(int64_t, int64_t, const float*, const int32_t*, float*);
template double mseRateLoss<double>(int64_t, int64_t, const double*, const int32_t*, double*);
template double crossEntropyRateLoss<float>(int64_t, int64_t, const float*, const int32_t*, float*);
template double crossEntropyRateLoss<double>(int64_t, int64_t, const double*, const int32_t*, double*);

}  // namespace ikun::cpu
