// Bindings for the forward-mode (R-op) tangents behind Hessian-vector products: neurons, BatchNorm and
// max-pool (convolutions and linear layers reuse their forward/backward kernels, being bilinear).
#include "args.h"

namespace ikun::napi {

NeuronParams neuronParams(const Napi::CallbackInfo& info, size_t index);  // ops_spiking.cpp
void requireArgmaxInPlane(Napi::Env env, Storage* argmax, const Pool2dShape& s);  // ops_nn.cpp

namespace {

// neuronForwardTangent(h, xDot, hDot, sDot, params)
Napi::Value NeuronForwardTangent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *h = storageArg(info, 0, "h"), *xd = storageArg(info, 1, "xDot"), *hd = storageArg(info, 2, "hDot"),
          *sd = storageArg(info, 3, "sDot");
  NeuronParams p = neuronParams(info, 4);
  requireCount(env, xd, p.staticInput ? p.width : p.steps * p.width, "xDot");
  for (Storage* s : {h, hd, sd}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  dispatch(env, "neuronForwardTangent", {h, xd, hd, sd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, neuronForwardTangent<T>(p, ptr<T>(h), ptr<T>(xd), ptr<T>(hd), ptr<T>(sd)));
  });
  return env.Undefined();
}

// neuronBackwardTangent(h, hDot, dSpikes, dSpikesDot, dx, dxDot, params)
Napi::Value NeuronBackwardTangent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *h = storageArg(info, 0, "h"), *hd = storageArg(info, 1, "hDot"), *ds = storageArg(info, 2, "dSpikes"),
          *dsd = storageArg(info, 3, "dSpikesDot"), *dx = storageArg(info, 4, "dx"), *dxd = storageArg(info, 5, "dxDot");
  NeuronParams p = neuronParams(info, 6);
  for (Storage* s : {h, hd, ds, dsd}) requireCount(env, s, p.steps * p.width, "neuron tensor");
  for (Storage* s : {dx, dxd}) requireCount(env, s, p.staticInput ? p.width : p.steps * p.width, "input gradient");
  dispatch(env, "neuronBackwardTangent", {h, hd, ds, dsd, dx, dxd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, neuronBackwardTangent<T>(p, ptr<T>(h), ptr<T>(hd), ptr<T>(ds), ptr<T>(dsd), ptr<T>(dx), ptr<T>(dxd)));
  });
  return env.Undefined();
}

// maxPool2dGather(x, argmax, y, [planes, H, W, kernel, stride])
Napi::Value MaxPool2dGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *arg = storageArg(info, 1, "argmax"), *y = storageArg(info, 2, "y");
  auto d = intsArg(info, 3, 5, "maxpool dims");
  Pool2dShape s{d[0], d[1], d[2], d[3], d[4]};
  if (s.kernel < 1 || s.stride < 1 || s.outHeight() < 1 || s.outWidth() < 1) throw Napi::RangeError::New(env, "maxpool2d: invalid geometry");
  requireInt32(env, arg, "maxpool2d: argmax");
  int64_t outCount = s.planes * s.outHeight() * s.outWidth();
  requireCount(env, x, s.planes * s.inHeight * s.inWidth, "x"), requireCount(env, arg, outCount, "argmax"), requireCount(env, y, outCount, "y");
  requireArgmaxInPlane(env, arg, s);
  dispatch(env, "maxPool2dGather", {x, y}, {arg}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, maxPool2dGather<T>(s, ptr<T>(x), ptr<int32_t>(arg), ptr<T>(y)));
  });
  return env.Undefined();
}

BatchNormShape bnShape(const Napi::CallbackInfo& info, size_t index) {
  auto d = intsArg(info, index, 3, "batchnorm dims");
  return {d[0], d[1], d[2]};
}

// batchNormForwardTangent(x, xDot, gamma, gammaDot | null, betaDot | null, savedMean, savedInvStd, yDot, dims, training)
Napi::Value BatchNormForwardTangent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *xd = storageArg(info, 1, "xDot"), *g = storageArg(info, 2, "weight"),
          *gd = optionalStorageArg(info, 3, "weightDot"), *bd = optionalStorageArg(info, 4, "biasDot"),
          *mean = storageArg(info, 5, "savedMean"), *invStd = storageArg(info, 6, "savedInvStd"), *yd = storageArg(info, 7, "yDot");
  BatchNormShape s = bnShape(info, 8);
  bool training = boolArg(info, 9, "training");
  int64_t n = s.batch * s.channels * s.spatial;
  for (Storage* t : {x, xd, yd}) requireCount(env, t, n, "activation");
  for (Storage* t : {g, gd, bd, mean, invStd}) requireCount(env, t, s.channels, "per-channel tensor");
  dispatch(env, "batchNormForwardTangent", {x, xd, g, gd, bd, mean, invStd, yd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, batchNormForwardTangent<T>(s, training, ptr<T>(x), ptr<T>(xd), ptr<T>(g), ptr<T>(gd), ptr<T>(bd),
                                                ptr<T>(mean), ptr<T>(invStd), ptr<T>(yd)));
  });
  return env.Undefined();
}

// batchNormBackwardTangent(x, xDot, gamma, gammaDot | null, savedMean, savedInvStd, dy, dyDot, dx, dxDot,
//                          dgammaDot, dbetaDot, dims, training)
Napi::Value BatchNormBackwardTangent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *xd = storageArg(info, 1, "xDot"), *g = storageArg(info, 2, "weight"),
          *gd = optionalStorageArg(info, 3, "weightDot"), *mean = storageArg(info, 4, "savedMean"),
          *invStd = storageArg(info, 5, "savedInvStd"), *dy = storageArg(info, 6, "dy"), *dyd = storageArg(info, 7, "dyDot"),
          *dx = storageArg(info, 8, "dx"), *dxd = storageArg(info, 9, "dxDot"), *dgd = storageArg(info, 10, "dweightDot"),
          *dbd = storageArg(info, 11, "dbiasDot");
  BatchNormShape s = bnShape(info, 12);
  bool training = boolArg(info, 13, "training");
  int64_t n = s.batch * s.channels * s.spatial;
  for (Storage* t : {x, xd, dy, dyd, dx, dxd}) requireCount(env, t, n, "activation");
  for (Storage* t : {g, gd, mean, invStd, dgd, dbd}) requireCount(env, t, s.channels, "per-channel tensor");
  dispatch(env, "batchNormBackwardTangent", {x, xd, g, gd, mean, invStd, dy, dyd, dx, dxd, dgd, dbd}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, batchNormBackwardTangent<T>(s, training, ptr<T>(x), ptr<T>(xd), ptr<T>(g), ptr<T>(gd), ptr<T>(mean),
                                                 ptr<T>(invStd), ptr<T>(dy), ptr<T>(dyd), ptr<T>(dx), ptr<T>(dxd), ptr<T>(dgd),
                                                 ptr<T>(dbd)));
  });
  return env.Undefined();
}

}  // namespace

void registerTangentOps(Napi::Env env, Napi::Object exports) {
  exports.Set("neuronForwardTangent", Napi::Function::New<guarded<NeuronForwardTangent>>(env, "neuronForwardTangent"));
  exports.Set("neuronBackwardTangent", Napi::Function::New<guarded<NeuronBackwardTangent>>(env, "neuronBackwardTangent"));
  exports.Set("maxPool2dGather", Napi::Function::New<guarded<MaxPool2dGather>>(env, "maxPool2dGather"));
  exports.Set("batchNormForwardTangent", Napi::Function::New<guarded<BatchNormForwardTangent>>(env, "batchNormForwardTangent"));
  exports.Set("batchNormBackwardTangent", Napi::Function::New<guarded<BatchNormBackwardTangent>>(env, "batchNormBackwardTangent"));
}

}  // namespace ikun::napi
