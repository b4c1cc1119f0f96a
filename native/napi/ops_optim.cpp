// Bindings for optimiser updates and the reductions behind metrics and the Hessian's vector arithmetic.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "args.h"

namespace ikun::napi {
namespace {

double numberField(Napi::Env env, Napi::Object o, const char* key) { return numberProperty(env, o, key, "optimiser params"); }
bool boolField(Napi::Env env, Napi::Object o, const char* key) { return boolProperty(env, o, key, "optimiser params"); }

std::vector<double> numbersArg(const Napi::CallbackInfo& info, size_t index, size_t expected, const char* name) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array");
  auto array = info[index].As<Napi::Array>();
  if (array.Length() != expected) throw Napi::RangeError::New(env, std::string(name) + ": one entry per parameter expected");
  std::vector<double> values;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (!v.IsNumber() && !v.IsBoolean()) throw Napi::TypeError::New(env, std::string(name) + " entries must be numbers or booleans");
    values.push_back(v.IsBoolean() ? double(v.As<Napi::Boolean>().Value()) : v.As<Napi::Number>().DoubleValue());
  }
  return values;
}

// Every list holds one entry per parameter, each the parameter's element count (buffers may be null).
void requireMatching(Napi::Env env, const std::vector<Storage*>& params, std::initializer_list<const std::vector<Storage*>*> lists) {
  for (const auto* list : lists) {
    if (list->size() != params.size()) throw Napi::RangeError::New(env, "optimiser: one entry per parameter expected");
    for (size_t i = 0; i < params.size(); ++i) requireCount(env, (*list)[i], int64_t(params[i]->count()), "optimiser state");
  }
}

// Runs the dispatch on the first parameter with every storage of the lists checked for one device and dtype.
template <class Fn>
void dispatchLists(Napi::Env env, const char* op, const std::vector<std::vector<Storage*>>& lists, Fn&& fn) {
  std::vector<Storage*> all;
  for (const auto& list : lists) all.insert(all.end(), list.begin(), list.end());
  commonDevice(env, op, all);
  for (Storage* s : all)
    if (s && s->dtype() != lists[0][0]->dtype())
      throw Napi::TypeError::New(env, std::string(op) + ": dtype mismatch: " + dtypeName(lists[0][0]->dtype()) + " and " + dtypeName(s->dtype()));
  dispatch(env, op, {lists[0][0]}, std::forward<Fn>(fn));
}

// sgdStep(params[], grads[], momentumBuffers[] (entries null without momentum), firstSteps: boolean[],
//         { lr, momentum, dampening, weightDecay, nesterov }): every parameter in one call (one launch on CUDA)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto params = storageListArg(info, 0, "params"), grads = storageListArg(info, 1, "grads"),
       buffers = storageListArg(info, 2, "momentumBuffers", true);
  const auto firstSteps = numbersArg(info, 3, params.size(), "firstSteps");
  auto o = objectArg(info, 4, "optimiser params");
  SgdParams p{numberField(env, o, "lr"), numberField(env, o, "momentum"), numberField(env, o, "dampening"),
              numberField(env, o, "weightDecay"), boolField(env, o, "nesterov"), false};
  if (params.empty()) return env.Undefined();
  requireMatching(env, params, {&grads, &buffers});
  dispatchLists(env, "sgdStep", {params, grads, buffers}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if constexpr (decltype(device)::cuda) {
#if defined(IKUN_WITH_CUDA)
      std::vector<cuda::SgdTensor<T>> tensors;
      for (size_t i = 0; i < params.size(); ++i)
        tensors.push_back({ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(buffers[i]), int64_t(params[i]->count()), firstSteps[i] != 0});
      cuda::sgdStep<T>(tensors.data(), int(tensors.size()), p);
#endif
    } else {
      for (size_t i = 0; i < params.size(); ++i) {
        SgdParams own = p;
        own.firstStep = firstSteps[i] != 0;
        cpu::sgdStep<T>(int64_t(params[i]->count()), ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(buffers[i]), own);
      }
    }
  });
  return env.Undefined();
}

// adamStep(params[], grads[], expAvgs[], expAvgSqs[], steps: number[] (each parameter's own count, >= 1),
//          { lr, beta1, beta2, eps, weightDecay, decoupledWeightDecay })
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto params = storageListArg(info, 0, "params"), grads = storageListArg(info, 1, "grads"), m = storageListArg(info, 2, "expAvg"),
       v = storageListArg(info, 3, "expAvgSq");
  const auto steps = numbersArg(info, 4, params.size(), "steps");
  for (double s : steps)
    if (!(s >= 1) || s != std::floor(s)) throw Napi::RangeError::New(env, "adamStep: steps must be integers >= 1");
  auto o = objectArg(info, 5, "optimiser params");
  AdamParams p{numberField(env, o, "lr"), numberField(env, o, "beta1"), numberField(env, o, "beta2"), numberField(env, o, "eps"),
               numberField(env, o, "weightDecay"), boolField(env, o, "decoupledWeightDecay"), 1};
  if (params.empty()) return env.Undefined();
  requireMatching(env, params, {&grads, &m, &v});
  for (const auto* list : {&m, &v})
    for (Storage* s : *list)
      if (!s) throw Napi::TypeError::New(env, "adamStep: every parameter needs both moment buffers");
  dispatchLists(env, "adamStep", {params, grads, m, v}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if constexpr (decltype(device)::cuda) {
#if defined(IKUN_WITH_CUDA)
      std::vector<cuda::AdamTensor<T>> tensors;
      for (size_t i = 0; i < params.size(); ++i)
        tensors.push_back({ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(m[i]), ptr<T>(v[i]), int64_t(params[i]->count()), int64_t(steps[i])});
      cuda::adamStep<T>(tensors.data(), int(tensors.size()), p);
#endif
    } else {
      for (size_t i = 0; i < params.size(); ++i) {
        AdamParams own = p;
        own.step = int64_t(steps[i]);
        cpu::adamStep<T>(int64_t(params[i]->count()), ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(m[i]), ptr<T>(v[i]), own);
      }
    }
  });
  return env.Undefined();
}

enum class Reduction { Sum, Squares, Dot };

// sum(x, accumulator?, slot?, scale?) / sumOfSquares(x, ...) / dot(x, y, ...) -> number (or undefined when accumulated)
template <Reduction R>
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr size_t operands = R == Reduction::Dot ? 2 : 1;
  Storage* x = storageArg(info, 0, "x");
  Storage* y = R == Reduction::Dot ? storageArg(info, 1, "y") : nullptr;
  if (y && x->count() != y->count()) throw Napi::RangeError::New(env, "dot: element counts differ");
  NumberResult result(info, operands);
  const int64_t n = int64_t(x->count());
  Napi::Value out = env.Undefined();
  const char* name = R == Reduction::Sum ? "sum" : R == Reduction::Squares ? "sumOfSquares" : "dot";
  dispatch(env, name, {x, y}, {result.accumulator()}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if constexpr (decltype(device)::cuda) {
#if defined(IKUN_WITH_CUDA)
      const cuda::DeviceResult target = result.onDevice(x->device());
      if (R == Reduction::Sum) cuda::sum<T>(n, ptr<T>(x), target);
      else if (R == Reduction::Squares) cuda::sumOfSquares<T>(n, ptr<T>(x), target);
      else cuda::dot<T>(n, ptr<T>(x), ptr<T>(y), target);
      out = result.fromDevice(env);
#endif
    } else {
      const double value = R == Reduction::Sum       ? cpu::sum<T>(n, ptr<T>(x))
                           : R == Reduction::Squares ? cpu::sumOfSquares<T>(n, ptr<T>(x))
                                                     : cpu::dot<T>(n, ptr<T>(x), ptr<T>(y));
      out = result.fromHost(env, value);
    }
  });
  return out;
}

// gradNorm(tensors[], accumulator?, slot?, scale?) -> the L2 norm of all of them together (dtypes may differ)
Napi::Value GradNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto tensors = storageListArg(info, 0, "tensors");
  NumberResult result(info, 1);
  std::vector<Storage*> all(tensors);
  all.push_back(result.accumulator());
  const int device = commonDevice(env, "gradNorm", all);
  if (device < 0) {
    double total = 0;
    for (Storage* t : tensors)
      dispatch(env, "gradNorm", {t}, [&](auto tag, auto) {
        using T = decltype(tag);
        total += cpu::sumOfSquares<T>(int64_t(t->count()), ptr<T>(t));
      });
    return result.fromHost(env, std::sqrt(total));
  }
#if defined(IKUN_WITH_CUDA)
  cuda::DeviceGuard guard(device);
  std::vector<cuda::NormTensor> norms;
  for (Storage* t : tensors)
    dispatch(env, "gradNorm", {t}, [&](auto tag, auto) {
      using T = decltype(tag);
      cuda::NormTensor n{nullptr, nullptr, int64_t(t->count())};
      if constexpr (std::is_same_v<T, double>) n.f64 = ptr<T>(t);
      else n.f32 = ptr<T>(t);
      norms.push_back(n);
    });
  cuda::l2NormOfAll(norms.data(), int(norms.size()), result.onDevice(device));
  return result.fromDevice(env);
#else
  throw Napi::Error::New(env, "gradNorm: this build of ikun has no CUDA support");
#endif
}

// sumsInto(tensors[], accumulator, slots: number[], scales: number[]): accumulator[slots[i]] += sum(tensors[i]) *
// scales[i] for every i, without waiting for the device (a training step's firing rates: two launches on CUDA for
// up to 16 tensors, not one or two each). The same values as sum(tensors[i], accumulator, slots[i], scales[i]).
Napi::Value SumsInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto tensors = storageListArg(info, 0, "tensors");
  Storage* accumulator = storageArg(info, 1, "accumulator");
  if (accumulator->dtype() != DType::Float64) throw Napi::TypeError::New(env, "sumsInto: the accumulator must be a float64 storage");
  for (size_t index : {size_t(2), size_t(3)})
    if (index < info.Length() && info[index].IsArray() && info[index].As<Napi::Array>().Length() != tensors.size())
      throw Napi::RangeError::New(env, "sumsInto: slots and scales need one entry per tensor");
  const auto slots = numbersArg(info, 2, tensors.size(), "slots"), scales = numbersArg(info, 3, tensors.size(), "scales");
  for (double slot : slots)
    if (!(slot >= 0) || slot != std::floor(slot) || slot >= double(accumulator->count()))
      throw Napi::RangeError::New(env, "sumsInto: every slot must index the accumulator");
  for (double scale : scales)
    if (!std::isfinite(scale)) throw Napi::RangeError::New(env, "sumsInto: every scale must be a finite number");
  std::vector<Storage*> all(tensors);
  all.push_back(accumulator);
  const int device = commonDevice(env, "sumsInto", all);
  for (Storage* t : tensors)
    if (t->dtype() != DType::Float32 && t->dtype() != DType::Float64)
      throw Napi::TypeError::New(env, "sumsInto: expected float32 or float64 tensors");
  if (device < 0) {
    double* into = accumulator->as<double>();
    for (size_t i = 0; i < tensors.size(); ++i)
      dispatch(env, "sumsInto", {tensors[i]}, [&](auto tag, auto) {
        using T = decltype(tag);
        into[int64_t(slots[i])] += cpu::sum<T>(int64_t(tensors[i]->count()), ptr<T>(tensors[i])) * scales[i];
      });
    return env.Undefined();
  }
#if defined(IKUN_WITH_CUDA)
  cuda::DeviceGuard guard(device);
  cuda::OpTimer timer(device, "sumsInto");
  std::vector<cuda::SumInto> sums;
  for (size_t i = 0; i < tensors.size(); ++i) {
    cuda::SumInto s{{nullptr, nullptr, int64_t(tensors[i]->count())}, {accumulator->as<double>() + int64_t(slots[i]), scales[i], true}};
    if (tensors[i]->dtype() == DType::Float64) s.tensor.f64 = tensors[i]->as<double>();
    else s.tensor.f32 = tensors[i]->as<float>();
    sums.push_back(s);
  }
  cuda::sumsInto(sums.data(), int(sums.size()));
  return env.Undefined();
#else
  throw Napi::Error::New(env, "sumsInto: this build of ikun has no CUDA support");
#endif
}

// scale(x, alpha): x *= alpha
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage* x = storageArg(info, 0, "x");
  double alpha = numberArg(info, 1, "alpha");
  dispatch(env, "scale", {x}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, scale<T>(int64_t(x->count()), T(alpha), ptr<T>(x)));
  });
  return env.Undefined();
}

}  // namespace

void registerOptimOps(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdStep", Napi::Function::New<guarded<SgdStep>>(env, "sgdStep"));
  exports.Set("adamStep", Napi::Function::New<guarded<AdamStep>>(env, "adamStep"));
  exports.Set("dot", Napi::Function::New<guarded<Reduce<Reduction::Dot>>>(env, "dot"));
  exports.Set("scale", Napi::Function::New<guarded<Scale>>(env, "scale"));
  exports.Set("sum", Napi::Function::New<guarded<Reduce<Reduction::Sum>>>(env, "sum"));
  exports.Set("sumOfSquares", Napi::Function::New<guarded<Reduce<Reduction::Squares>>>(env, "sumOfSquares"));
  exports.Set("gradNorm", Napi::Function::New<guarded<GradNorm>>(env, "gradNorm"));
  exports.Set("sumsInto", Napi::Function::New<guarded<SumsInto>>(env, "sumsInto"));
}

}  // namespace ikun::napi
