// Optimiser updates, elementwise over one parameter, with PyTorch's update rules (torch.optim.SGD,
// Adam, AdamW; defaults foreach=False semantics). Arithmetic in the parameter's own precision, with
// scalars computed in double.
#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {

constexpr int64_t kGrain = 1 << 14;

template <class T>
void sgdStep(int64_t n, T* param, const T* grad, T* momentumBuffer, const SgdParams& p) {
  const T lr = T(p.lr), wd = T(p.weightDecay), mu = T(p.momentum), damp = T(1 - p.dampening);
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T g = grad[i];
      if (p.weightDecay != 0) g += wd * param[i];
      if (momentumBuffer) {
        // PyTorch starts the buffer at the first gradient (no dampening on the first step).
        const T buf = p.firstStep ? g : mu * momentumBuffer[i] + damp * g;
        momentumBuffer[i] = buf;
        g = p.nesterov ? g + mu * buf : buf;
      }
      param[i] -= lr * g;
    }
  });
}

template <class T>
void adamStep(int64_t n, T* param, const T* grad, T* expAvg, T* expAvgSq, const AdamParams& p) {
  const double bias1 = 1 - std::pow(p.beta1, double(p.step)), bias2 = 1 - std::pow(p.beta2, double(p.step));
  const T stepSize = T(p.lr / bias1), bias2Sqrt = T(std::sqrt(bias2));
  const T b1 = T(p.beta1), b2 = T(p.beta2), eps = T(p.eps), wd = T(p.weightDecay);
  const T decay = T(1 - p.lr * p.weightDecay);
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T g = grad[i];
      if (p.decoupledWeightDecay) param[i] *= decay;  // AdamW
      else if (p.weightDecay != 0) g += wd * param[i];  // Adam: L2 through the gradient
      const T m = b1 * expAvg[i] + (T(1) - b1) * g;
      const T v = b2 * expAvgSq[i] + (T(1) - b2) * g * g;
      expAvg[i] = m;
      expAvgSq[i] = v;
      param[i] -= stepSize * m / (std::sqrt(v) / bias2Sqrt + eps);
    }
  });
}

#define IKUN_INSTANTIATE(T)                                                    \
  template void sgdStep<T>(int64_t, T*, const T*, T*, const SgdParams&);       \
  template void adamStep<T>(int64_t, T*, const T*, T*, T*, const AdamParams&);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cpu
