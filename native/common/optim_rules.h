// Optimiser updates of one parameter element, PyTorch's rules (torch.optim.SGD, Adam, AdamW with
// foreach=False): the one copy of these formulas, called by the CPU kernels (native/cpu/optim.cpp) and the
// CUDA kernels (native/cuda/optim.cu). Scalars are derived in double on the host, the update runs in the
// parameter's precision.
#pragma once
#include <cmath>

#include "hd.h"
#include "shapes.h"

namespace ikun {

template <class T>
struct SgdRule {
  T lr, weightDecay, momentum, dampening;  // dampening holds 1 - p.dampening
  bool nesterov, decays;

  explicit IKUN_HD SgdRule(const SgdParams& p)
      : lr(T(p.lr)), weightDecay(T(p.weightDecay)), momentum(T(p.momentum)), dampening(T(1 - p.dampening)),
        nesterov(p.nesterov), decays(p.weightDecay != 0) {}

  // buffer: the momentum buffer element, or nullptr without momentum. PyTorch starts the buffer at the
  // first gradient (no dampening on the first step).
  IKUN_HD void apply(T& param, T grad, T* buffer, bool firstStep) const {
    T g = grad;
    if (decays) g += weightDecay * param;
    if (buffer) {
      const T b = firstStep ? g : momentum * *buffer + dampening * g;
      *buffer = b;
      g = nesterov ? g + momentum * b : b;
    }
    param -= lr * g;
  }
};

template <class T>
struct AdamRule {
  T stepSize, bias2Sqrt, beta1, beta2, eps, weightDecay, decay;
  bool decoupled, decays;

  AdamRule() = default;  // an entry of a launch table filled on the host (cuda/optim.cu)
  // Bias corrections for p.step (1 on the first update), computed on the host in double.
  explicit AdamRule(const AdamParams& p)
      : stepSize(T(p.lr / (1 - std::pow(p.beta1, double(p.step))))),
        bias2Sqrt(T(std::sqrt(1 - std::pow(p.beta2, double(p.step))))),
        beta1(T(p.beta1)), beta2(T(p.beta2)), eps(T(p.eps)), weightDecay(T(p.weightDecay)),
        decay(T(1 - p.lr * p.weightDecay)), decoupled(p.decoupledWeightDecay), decays(p.weightDecay != 0) {}

  IKUN_HD void apply(T& param, T grad, T& expAvg, T& expAvgSq) const {
    T g = grad;
    if (decoupled) param *= decay;           // AdamW
    else if (decays) g += weightDecay * param;  // Adam: L2 through the gradient
    const T m = beta1 * expAvg + (T(1) - beta1) * g;
    const T v = beta2 * expAvgSq + (T(1) - beta2) * g * g;
    expAvg = m;
    expAvgSq = v;
    param -= stepSize * m / (std::sqrt(v) / bias2Sqrt + eps);
  }
};

}  // namespace ikun
