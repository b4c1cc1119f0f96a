// Optimiser updates, elementwise over one parameter: the rules of common/optim_rules.h (PyTorch's).
#include <cmath>

#include "../common/optim_rules.h"
#include "kernels.h"
#include "parallel.h"

namespace ikun::cpu {

constexpr int64_t kGrain = 1 << 14;

template <class T>
void sgdStep(int64_t n, T* param, const T* grad, T* momentumBuffer, const SgdParams& p) {
  const SgdRule<T> rule(p);
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) rule.apply(param[i], grad[i], momentumBuffer ? momentumBuffer + i : nullptr, p.firstStep);
  });
}

template <class T>
void adamStep(int64_t n, T* param, const T* grad, T* expAvg, T* expAvgSq, const AdamParams& p) {
  const AdamRule<T> rule(p);
  parallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) rule.apply(param[i], grad[i], expAvg[i], expAvgSq[i]);
  });
}

#define IKUN_INSTANTIATE(T)                                                    \
  template void sgdStep<T>(int64_t, T*, const T*, T*, const SgdParams&);       \
  template void adamStep<T>(int64_t, T*, const T*, T*, T*, const AdamParams&);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cpu
