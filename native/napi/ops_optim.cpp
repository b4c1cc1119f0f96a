// Bindings for optimiser updates and the reductions behind metrics.
#include "../cpu/kernels.h"
#include "args.h"

namespace ikun::napi {
namespace {

double numberField(Napi::Env env, Napi::Object o, const char* key) { return numberProperty(env, o, key, "optimiser params"); }
bool boolField(Napi::Env env, Napi::Object o, const char* key) { return boolProperty(env, o, key, "optimiser params"); }

// sgdStep(param, grad, momentumBuffer | null, { lr, momentum, dampening, weightDecay, nesterov, firstStep })
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *param = storageArg(info, 0, "param"), *grad = storageArg(info, 1, "grad"), *buf = optionalStorageArg(info, 2, "momentumBuffer");
  auto o = objectArg(info, 3, "optimiser params");
  SgdParams p{numberField(env, o, "lr"), numberField(env, o, "momentum"), numberField(env, o, "dampening"),
              numberField(env, o, "weightDecay"), boolField(env, o, "nesterov"), boolField(env, o, "firstStep")};
  requireSameDType(env, {param, grad, buf});
  int64_t n = int64_t(param->count());
  requireCount(env, grad, n, "grad"), requireCount(env, buf, n, "momentumBuffer");
  dispatchFloat(env, param, [&](auto tag) {
    using T = decltype(tag);
    cpu::sgdStep<T>(n, ptr<T>(param), ptr<T>(grad), ptr<T>(buf), p);
  });
  return env.Undefined();
}

// adamStep(param, grad, expAvg, expAvgSq, { lr, beta1, beta2, eps, weightDecay, decoupledWeightDecay, step })
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *param = storageArg(info, 0, "param"), *grad = storageArg(info, 1, "grad"), *m = storageArg(info, 2, "expAvg"),
          *v = storageArg(info, 3, "expAvgSq");
  auto o = objectArg(info, 4, "optimiser params");
  AdamParams p{numberField(env, o, "lr"), numberField(env, o, "beta1"), numberField(env, o, "beta2"), numberField(env, o, "eps"),
               numberField(env, o, "weightDecay"), boolField(env, o, "decoupledWeightDecay"), int64_t(numberField(env, o, "step"))};
  if (p.step < 1) throw Napi::RangeError::New(env, "adamStep: step must be >= 1");
  requireSameDType(env, {param, grad, m, v});
  int64_t n = int64_t(param->count());
  requireCount(env, grad, n, "grad"), requireCount(env, m, n, "expAvg"), requireCount(env, v, n, "expAvgSq");
  dispatchFloat(env, param, [&](auto tag) {
    using T = decltype(tag);
    cpu::adamStep<T>(n, ptr<T>(param), ptr<T>(grad), ptr<T>(m), ptr<T>(v), p);
  });
  return env.Undefined();
}

// sum(x) / sumOfSquares(x) -> number
template <bool Squares>
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage* x = storageArg(info, 0, "x");
  double result = 0;
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    result = Squares ? cpu::sumOfSquares<T>(int64_t(x->count()), ptr<T>(x)) : cpu::sum<T>(int64_t(x->count()), ptr<T>(x));
  });
  return Napi::Number::New(env, result);
}

// dot(x, y) -> number (same element count)
Napi::Value Dot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  requireSameDType(env, {x, y});
  if (x->count() != y->count()) throw Napi::RangeError::New(env, "dot: element counts differ");
  double result = 0;
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    result = cpu::dot<T>(int64_t(x->count()), ptr<T>(x), ptr<T>(y));
  });
  return Napi::Number::New(env, result);
}

// scale(x, alpha): x *= alpha
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage* x = storageArg(info, 0, "x");
  double alpha = numberArg(info, 1, "alpha");
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    cpu::scale<T>(int64_t(x->count()), T(alpha), ptr<T>(x));
  });
  return env.Undefined();
}

}  // namespace

void registerOptimOps(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdStep", Napi::Function::New<guarded<SgdStep>>(env, "sgdStep"));
  exports.Set("adamStep", Napi::Function::New<guarded<AdamStep>>(env, "adamStep"));
  exports.Set("dot", Napi::Function::New<guarded<Dot>>(env, "dot"));
  exports.Set("scale", Napi::Function::New<guarded<Scale>>(env, "scale"));
  exports.Set("sum", Napi::Function::New<guarded<Reduce<false>>>(env, "sum"));
  exports.Set("sumOfSquares", Napi::Function::New<guarded<Reduce<true>>>(env, "sumOfSquares"));
}

}  // namespace ikun::napi
