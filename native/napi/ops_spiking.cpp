// Bindings for the spiking parts: multi-step neurons, losses on firing rates, and the time-axis
// helpers (repeat an input over T, sum or mean over T).
#include <cmath>

#include "../cpu/kernels.h"
#include "args.h"

namespace ikun::napi {
namespace {

double field(Napi::Env env, Napi::Object o, const char* key) { return numberProperty(env, o, key, "neuron params"); }
bool flag(Napi::Env env, Napi::Object o, const char* key) { return boolProperty(env, o, key, "neuron params"); }

}  // namespace

// { kind: 0 IF | 1 LIF, vThreshold, vReset: number | null, tau, decayInput, detachReset, surrogate, alpha,
//   spiking, staticInput, steps, width }  (also used by ops_tangent.cpp)
NeuronParams neuronParams(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  auto o = objectArg(info, index, "neuron params");
  NeuronParams p{};
  int kind = int(field(env, o, "kind"));
  int surrogate = int(field(env, o, "surrogate"));
  if (kind < 0 || kind > 1) throw Napi::RangeError::New(env, "neuron params: unknown kind");
  if (surrogate < 0 || surrogate > 7) throw Napi::RangeError::New(env, "neuron params: unknown surrogate");
  p.kind = NeuronKind(kind);
  p.surrogate = SurrogateKind(surrogate);
  p.vThreshold = field(env, o, "vThreshold");
  Napi::Value reset = o.Get("vReset");
  p.softReset = reset.IsNull();
  p.vReset = p.softReset ? 0.0 : field(env, o, "vReset");
  p.tau = field(env, o, "tau");
  p.decayInput = flag(env, o, "decayInput");
  p.detachReset = flag(env, o, "detachReset");
  p.alpha = field(env, o, "alpha");
  p.spiking = flag(env, o, "spiking");
  p.staticInput = flag(env, o, "staticInput");
  double steps = field(env, o, "steps"), width = field(env, o, "width");
  if (!(steps >= 1) || !(width >= 0) || steps != std::floor(steps) || width != std::floor(width))
    throw Napi::RangeError::New(env, "neuron params: steps and width must be integers");
  p.steps = int64_t(steps);
  p.width = int64_t(width);
  return p;
}

namespace {

// neuronForward(x, spikes, h, params)
Napi::Value NeuronForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *spikes = storageArg(info, 1, "spikes"), *h = storageArg(info, 2, "h");
  NeuronParams p = neuronParams(info, 3);
  requireSameDType(env, {x, spikes, h});
  requireCount(env, x, p.staticInput ? p.width : p.steps * p.width, "x");
  for (Storage* s : {spikes, h}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    cpu::neuronForward<T>(p, ptr<T>(x), ptr<T>(spikes), ptr<T>(h));
  });
  return env.Undefined();
}

// neuronBackward(dSpikes, h, dx, params)
Napi::Value NeuronBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *ds = storageArg(info, 0, "dSpikes"), *h = storageArg(info, 1, "h"), *dx = storageArg(info, 2, "dx");
  NeuronParams p = neuronParams(info, 3);
  requireSameDType(env, {ds, h, dx});
  requireCount(env, dx, p.staticInput ? p.width : p.steps * p.width, "dx");
  for (Storage* s : {ds, h}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  dispatchFloat(env, ds, [&](auto tag) {
    using T = decltype(tag);
    cpu::neuronBackward<T>(p, ptr<T>(ds), ptr<T>(h), ptr<T>(dx));
  });
  return env.Undefined();
}

Pool2dShape fusedPoolShape(const Napi::CallbackInfo& info, size_t index, const NeuronParams& p) {
  auto d = intsArg(info, index, 5, "pool dims");
  Pool2dShape s{d[0], d[1], d[2], d[3], d[4]};
  if (s.kernel < 1 || s.stride < 1 || s.outHeight() < 1 || s.outWidth() < 1) throw Napi::RangeError::New(info.Env(), "neuronPool: invalid pool geometry");
  if (s.planes * s.inHeight * s.inWidth != p.width) throw Napi::RangeError::New(info.Env(), "neuronPool: planes * height * width must equal the neuron width");
  return s;
}

// neuronPoolForward(x, pooled, argmax, params, [planes, H, W, kernel, stride]) -> spike count
Napi::Value NeuronPoolForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *pooled = storageArg(info, 1, "pooled"), *arg = storageArg(info, 2, "argmax");
  NeuronParams p = neuronParams(info, 3);
  Pool2dShape s = fusedPoolShape(info, 4, p);
  requireSameDType(env, {x, pooled});
  if (arg->dtype() != DType::Int32) throw Napi::TypeError::New(env, "neuronPool: argmax storage must be int32");
  const int64_t outCount = p.steps * s.planes * s.outHeight() * s.outWidth();
  requireCount(env, x, p.staticInput ? p.width : p.steps * p.width, "x");
  requireCount(env, pooled, outCount, "pooled"), requireCount(env, arg, outCount, "argmax");
  double count = 0;
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    count = cpu::neuronPoolForward<T>(p, s, ptr<T>(x), ptr<T>(pooled), ptr<int32_t>(arg));
  });
  return Napi::Number::New(env, count);
}

// neuronPoolBackward(x, argmax, dPooled, dx, params, dims)
Napi::Value NeuronPoolBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *arg = storageArg(info, 1, "argmax"), *dp = storageArg(info, 2, "dPooled"),
          *dx = storageArg(info, 3, "dx");
  NeuronParams p = neuronParams(info, 4);
  Pool2dShape s = fusedPoolShape(info, 5, p);
  requireSameDType(env, {x, dp, dx});
  if (arg->dtype() != DType::Int32) throw Napi::TypeError::New(env, "neuronPool: argmax storage must be int32");
  const int64_t outCount = p.steps * s.planes * s.outHeight() * s.outWidth(), inCount = p.staticInput ? p.width : p.steps * p.width;
  requireCount(env, x, inCount, "x"), requireCount(env, dx, inCount, "dx");
  requireCount(env, dp, outCount, "dPooled"), requireCount(env, arg, outCount, "argmax");
  const int32_t* a = arg->as<int32_t>();
  for (int64_t i = 0; i < outCount; ++i)
    if (a[i] < 0 || a[i] >= s.inHeight * s.inWidth) throw Napi::RangeError::New(env, "neuronPool: argmax holds an offset outside the plane");
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    cpu::neuronPoolBackward<T>(p, s, ptr<T>(x), ptr<int32_t>(arg), ptr<T>(dp), ptr<T>(dx));
  });
  return env.Undefined();
}

// mseRateLoss / crossEntropyRateLoss(rate, labels: Int32Array, grad, [batch, classes]) -> number
template <bool CrossEntropy>
Napi::Value RateLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *rate = storageArg(info, 0, "rate"), *grad = storageArg(info, 2, "grad");
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "labels must be an Int32Array");
  auto labels = info[1].As<Napi::Int32Array>();
  auto d = intsArg(info, 3, 2, "loss dims");
  requireSameDType(env, {rate, grad});
  requireCount(env, rate, d[0] * d[1], "rate"), requireCount(env, grad, d[0] * d[1], "grad");
  if (int64_t(labels.ElementLength()) != d[0]) throw Napi::RangeError::New(env, "labels: one label per sample expected");
  for (size_t i = 0; i < labels.ElementLength(); ++i)
    if (labels[i] < 0 || labels[i] >= d[1]) throw Napi::RangeError::New(env, "labels: value out of range");
  double loss = 0;
  dispatchFloat(env, rate, [&](auto tag) {
    using T = decltype(tag);
    loss = CrossEntropy ? cpu::crossEntropyRateLoss<T>(d[0], d[1], ptr<T>(rate), labels.Data(), ptr<T>(grad))
                        : cpu::mseRateLoss<T>(d[0], d[1], ptr<T>(rate), labels.Data(), ptr<T>(grad));
  });
  return Napi::Number::New(env, loss);
}

// repeatLeading(x, y, steps, width, scale): y[t, i] = scale x[i]
Napi::Value RepeatLeading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  auto d = intsArg(info, 2, 2, "dims");
  double scale = numberArg(info, 3, "scale");
  requireSameDType(env, {x, y});
  requireCount(env, x, d[1], "x"), requireCount(env, y, d[0] * d[1], "y");
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    cpu::repeatLeading<T>(d[0], d[1], T(scale), ptr<T>(x), ptr<T>(y));
  });
  return env.Undefined();
}

// sumLeading(x, y, [steps, width], scale): y[i] = scale sum_t x[t, i]
Napi::Value SumLeading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  auto d = intsArg(info, 2, 2, "dims");
  double scale = numberArg(info, 3, "scale");
  requireSameDType(env, {x, y});
  requireCount(env, x, d[0] * d[1], "x"), requireCount(env, y, d[1], "y");
  dispatchFloat(env, x, [&](auto tag) {
    using T = decltype(tag);
    cpu::sumLeading<T>(d[0], d[1], T(scale), ptr<T>(x), ptr<T>(y));
  });
  return env.Undefined();
}

}  // namespace

void registerSpikingOps(Napi::Env env, Napi::Object exports) {
  exports.Set("neuronForward", Napi::Function::New<guarded<NeuronForward>>(env, "neuronForward"));
  exports.Set("neuronBackward", Napi::Function::New<guarded<NeuronBackward>>(env, "neuronBackward"));
  exports.Set("neuronPoolForward", Napi::Function::New<guarded<NeuronPoolForward>>(env, "neuronPoolForward"));
  exports.Set("neuronPoolBackward", Napi::Function::New<guarded<NeuronPoolBackward>>(env, "neuronPoolBackward"));
  exports.Set("mseRateLoss", Napi::Function::New<guarded<RateLoss<false>>>(env, "mseRateLoss"));
  exports.Set("crossEntropyRateLoss", Napi::Function::New<guarded<RateLoss<true>>>(env, "crossEntropyRateLoss"));
  exports.Set("repeatLeading", Napi::Function::New<guarded<RepeatLeading>>(env, "repeatLeading"));
  exports.Set("sumLeading", Napi::Function::New<guarded<SumLeading>>(env, "sumLeading"));
}

}  // namespace ikun::napi
