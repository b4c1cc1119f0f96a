// Bindings for the spiking parts: multi-step neurons, losses on firing rates, and the time-axis
// helpers (repeat an input over T, sum or mean over T).
#include <cmath>
#include <memory>

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
  requireCount(env, x, p.staticInput ? p.width : p.steps * p.width, "x");
  for (Storage* s : {spikes, h}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  dispatch(env, "neuronForward", {x, spikes, h}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, neuronForward<T>(p, ptr<T>(x), ptr<T>(spikes), ptr<T>(h)));
  });
  return env.Undefined();
}

// neuronBackward(dSpikes, h, dx, params)
Napi::Value NeuronBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *ds = storageArg(info, 0, "dSpikes"), *h = storageArg(info, 1, "h"), *dx = storageArg(info, 2, "dx");
  NeuronParams p = neuronParams(info, 3);
  requireCount(env, dx, p.staticInput ? p.width : p.steps * p.width, "dx");
  for (Storage* s : {ds, h}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  dispatch(env, "neuronBackward", {ds, h, dx}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, neuronBackward<T>(p, ptr<T>(ds), ptr<T>(h), ptr<T>(dx)));
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

// The fused BatchNorm of neuronPool*: { gamma, beta, mean, invStd } (per-channel storages, channels dividing the
// planes), or null.
struct NormalisationArg {
  Storage *gamma = nullptr, *beta = nullptr, *mean = nullptr, *invStd = nullptr;
  int64_t channels = 1;
  template <class T>
  InputNormalisation<T> as() const {
    if (!gamma) return {};
    return InputNormalisation<T>{ptr<T>(gamma), ptr<T>(beta), ptr<T>(mean), ptr<T>(invStd), channels};
  }
};

Storage* storageProperty(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->storageConstructor.Value()))
    throw Napi::TypeError::New(env, std::string("normalisation: '") + key + "' must be a native Storage");
  Storage* s = Storage::Unwrap(v.As<Napi::Object>());
  if (s->disposed()) throw Napi::Error::New(env, std::string("normalisation: '") + key + "' has been disposed");
  return s;
}

NormalisationArg normalisationArg(const Napi::CallbackInfo& info, size_t index, const Pool2dShape& pool) {
  Napi::Env env = info.Env();
  NormalisationArg n;
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) return n;
  auto o = objectArg(info, index, "normalisation");
  n.gamma = storageProperty(env, o, "gamma"), n.beta = storageProperty(env, o, "beta"), n.mean = storageProperty(env, o, "mean");
  n.invStd = storageProperty(env, o, "invStd");
  n.channels = int64_t(n.gamma->count());
  if (n.channels < 1 || pool.planes % n.channels != 0) throw Napi::RangeError::New(env, "normalisation: the channels must divide the planes");
  for (Storage* t : {n.beta, n.mean, n.invStd}) requireCount(env, t, n.channels, "normalisation tensor");
  return n;
}

// neuronPoolForward(x, pooled, params, [planes, H, W, kernel, stride], normalisation | null) -> the spike
// count as a new float64 storage on x's device whose values add up to it (one partial count per block on
// CUDA, see cuda::neuronPoolForward; one value on the CPU). Nothing waits for the GPU: the count is added
// where it is read (sum, sumsInto).
Napi::Value NeuronPoolForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *pooled = storageArg(info, 1, "pooled");
  NeuronParams p = neuronParams(info, 2);
  Pool2dShape s = fusedPoolShape(info, 3, p);
  const NormalisationArg norm = normalisationArg(info, 4, s);
  if (info.Length() > 5 && !info[5].IsUndefined())
    throw Napi::TypeError::New(env, "neuronPoolForward: the spike count is its result, not an accumulator argument");
  const int64_t outCount = p.steps * s.planes * s.outHeight() * s.outWidth();
  requireCount(env, x, p.staticInput ? p.width : p.steps * p.width, "x");
  requireCount(env, pooled, outCount, "pooled");
  Napi::Object counts;
  dispatch(env, "neuronPoolForward", {x, pooled, norm.gamma, norm.beta, norm.mean, norm.invStd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if constexpr (decltype(device)::cuda) {
#if defined(IKUN_WITH_CUDA)
      counts = Storage::Create(env, DType::Float64, cuda::neuronPoolCountSlots(s), x->device());
      cuda::neuronPoolForward<T>(p, s, ptr<T>(x), ptr<T>(pooled), Storage::Unwrap(counts)->as<double>(), norm.as<T>());
#endif
    } else {
      counts = Storage::Create(env, DType::Float64, 1, -1);
      Storage::Unwrap(counts)->as<double>()[0] = cpu::neuronPoolForward<T>(p, s, ptr<T>(x), ptr<T>(pooled), norm.as<T>());
    }
  });
  return counts;
}

// neuronPoolBackward(x, dPooled, dx, params, dims, normalisation | null): each window's maximum is found again from
// the recomputed spikes, so nothing but x is kept from the forward.
Napi::Value NeuronPoolBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *dp = storageArg(info, 1, "dPooled"), *dx = storageArg(info, 2, "dx");
  NeuronParams p = neuronParams(info, 3);
  Pool2dShape s = fusedPoolShape(info, 4, p);
  const NormalisationArg norm = normalisationArg(info, 5, s);
  const int64_t outCount = p.steps * s.planes * s.outHeight() * s.outWidth(), inCount = p.staticInput ? p.width : p.steps * p.width;
  requireCount(env, x, inCount, "x"), requireCount(env, dx, inCount, "dx");
  requireCount(env, dp, outCount, "dPooled");
  dispatch(env, "neuronPoolBackward", {x, dp, dx, norm.gamma, norm.beta, norm.mean, norm.invStd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, neuronPoolBackward<T>(p, s, ptr<T>(x), ptr<T>(dp), ptr<T>(dx), norm.as<T>()));
  });
  return env.Undefined();
}

// Labels of a loss: an Int32Array in host memory (checked here) or an int32 Storage (checked here when it is in
// host memory; on a device a label out of range makes the loss NaN).
struct LabelsArg {
  Storage* storage = nullptr;
  const int32_t* host = nullptr;
  int64_t count = 0;
};

LabelsArg labelsArg(const Napi::CallbackInfo& info, size_t index, int64_t classes) {
  Napi::Env env = info.Env();
  LabelsArg labels;
  if (index < info.Length() && info[index].IsTypedArray()) {
    auto array = info[index].As<Napi::TypedArray>();
    if (array.TypedArrayType() != napi_int32_array) throw Napi::TypeError::New(env, "labels must be an Int32Array or an int32 Storage");
    auto ints = info[index].As<Napi::Int32Array>();
    labels.host = ints.Data();
    labels.count = int64_t(ints.ElementLength());
  } else {
    labels.storage = storageArg(info, index, "labels");
    requireInt32(env, labels.storage, "labels");
    labels.count = int64_t(labels.storage->count());
    if (labels.storage->device() < 0) labels.host = labels.storage->as<int32_t>();
  }
  if (labels.host)
    for (int64_t i = 0; i < labels.count; ++i)
      if (labels.host[i] < 0 || labels.host[i] >= classes) throw Napi::RangeError::New(env, "labels: value out of range");
  return labels;
}

// The labels as device memory of `device`: the storage's own, or host labels copied into `upload`.
const int32_t* deviceLabels(const LabelsArg& labels, int device, std::unique_ptr<cuda::DeviceBlock>& upload) {
  if (labels.storage && labels.storage->device() == device) return labels.storage->as<int32_t>();
  upload = std::make_unique<cuda::DeviceBlock>(device, size_t(labels.count) * sizeof(int32_t));
  cuda::copyHostToDevice(device, upload->get(), labels.host, size_t(labels.count) * sizeof(int32_t));
  return upload->as<int32_t>();
}

enum class RateOp { Mse, CrossEntropy, Correct };

// mseRateLoss / crossEntropyRateLoss(rate, labels, grad, [batch, classes], accumulator?, slot?, scale?) -> loss
// countCorrect(rate, labels, [batch, classes], accumulator?, slot?, scale?) -> correct predictions
template <RateOp Op>
Napi::Value RateReduction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr bool hasGrad = Op != RateOp::Correct;
  Storage *rate = storageArg(info, 0, "rate"), *grad = hasGrad ? storageArg(info, 2, "grad") : nullptr;
  auto d = intsArg(info, hasGrad ? 3 : 2, 2, "loss dims");
  NumberResult result(info, hasGrad ? 4 : 3);
  const LabelsArg labels = labelsArg(info, 1, d[1]);
  requireCount(env, rate, d[0] * d[1], "rate"), requireCount(env, grad, d[0] * d[1], "grad");
  if (labels.count != d[0]) throw Napi::RangeError::New(env, "labels: one label per sample expected");
  Napi::Value out = env.Undefined();
  const char* name = Op == RateOp::Mse ? "mseRateLoss" : Op == RateOp::CrossEntropy ? "crossEntropyRateLoss" : "countCorrect";
  dispatch(env, name, {rate, grad}, {labels.storage, result.accumulator()}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if constexpr (decltype(device)::cuda) {
#if defined(IKUN_WITH_CUDA)
      std::unique_ptr<cuda::DeviceBlock> upload;
      const int32_t* y = deviceLabels(labels, rate->device(), upload);
      const cuda::DeviceResult target = result.onDevice(rate->device());
      if (Op == RateOp::Mse) cuda::mseRateLoss<T>(d[0], d[1], ptr<T>(rate), y, ptr<T>(grad), target);
      else if (Op == RateOp::CrossEntropy) cuda::crossEntropyRateLoss<T>(d[0], d[1], ptr<T>(rate), y, ptr<T>(grad), target);
      else cuda::countCorrect<T>(d[0], d[1], ptr<T>(rate), y, target);
      out = result.fromDevice(env);
#endif
    } else {
      double value;
      if (Op == RateOp::Mse) value = cpu::mseRateLoss<T>(d[0], d[1], ptr<T>(rate), labels.host, ptr<T>(grad));
      else if (Op == RateOp::CrossEntropy) value = cpu::crossEntropyRateLoss<T>(d[0], d[1], ptr<T>(rate), labels.host, ptr<T>(grad));
      else value = cpu::countCorrect<T>(d[0], d[1], ptr<T>(rate), labels.host);
      out = result.fromHost(env, value);
    }
  });
  return out;
}

// repeatLeading(x, y, steps, width, scale): y[t, i] = scale x[i]
Napi::Value RepeatLeading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  auto d = intsArg(info, 2, 2, "dims");
  double scale = numberArg(info, 3, "scale");
  requireCount(env, x, d[1], "x"), requireCount(env, y, d[0] * d[1], "y");
  dispatch(env, "repeatLeading", {x, y}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, repeatLeading<T>(d[0], d[1], T(scale), ptr<T>(x), ptr<T>(y)));
  });
  return env.Undefined();
}

// sumLeading(x, y, [steps, width], scale): y[i] = scale sum_t x[t, i]
Napi::Value SumLeading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  auto d = intsArg(info, 2, 2, "dims");
  double scale = numberArg(info, 3, "scale");
  requireCount(env, x, d[0] * d[1], "x"), requireCount(env, y, d[1], "y");
  dispatch(env, "sumLeading", {x, y}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, sumLeading<T>(d[0], d[1], T(scale), ptr<T>(x), ptr<T>(y)));
  });
  return env.Undefined();
}

}  // namespace

void registerSpikingOps(Napi::Env env, Napi::Object exports) {
  exports.Set("neuronForward", Napi::Function::New<guarded<NeuronForward>>(env, "neuronForward"));
  exports.Set("neuronBackward", Napi::Function::New<guarded<NeuronBackward>>(env, "neuronBackward"));
  exports.Set("neuronPoolForward", Napi::Function::New<guarded<NeuronPoolForward>>(env, "neuronPoolForward"));
  exports.Set("neuronPoolBackward", Napi::Function::New<guarded<NeuronPoolBackward>>(env, "neuronPoolBackward"));
  exports.Set("mseRateLoss", Napi::Function::New<guarded<RateReduction<RateOp::Mse>>>(env, "mseRateLoss"));
  exports.Set("crossEntropyRateLoss", Napi::Function::New<guarded<RateReduction<RateOp::CrossEntropy>>>(env, "crossEntropyRateLoss"));
  exports.Set("countCorrect", Napi::Function::New<guarded<RateReduction<RateOp::Correct>>>(env, "countCorrect"));
  exports.Set("repeatLeading", Napi::Function::New<guarded<RepeatLeading>>(env, "repeatLeading"));
  exports.Set("sumLeading", Napi::Function::New<guarded<SumLeading>>(env, "sumLeading"));
}

}  // namespace ikun::napi
