// Bindings for the stateless layers: conv2d, linear, batchnorm, max-pool.
#include <cmath>

#include "args.h"

namespace ikun::napi {
namespace {

// dims: [batch, inChannels, inHeight, inWidth, outChannels, kernelHeight, kernelWidth, stride, padding]
Conv2dShape conv2dShape(const Napi::CallbackInfo& info, size_t index) {
  auto d = intsArg(info, index, 9, "conv2d dims");
  Conv2dShape s{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]};
  if (s.stride < 1 || s.kernelHeight < 1 || s.kernelWidth < 1 || s.outHeight() < 1 || s.outWidth() < 1)
    throw Napi::RangeError::New(info.Env(), "conv2d: invalid geometry");
  return s;
}

struct ConvCounts {
  int64_t x, w, y;
};
ConvCounts convCounts(const Conv2dShape& s) {
  return {s.batch * s.inChannels * s.inHeight * s.inWidth, s.outChannels * s.patchSize(),
          s.batch * s.outChannels * s.outHeight() * s.outWidth()};
}

// conv2dForward(x, w, bias | null, y, dims)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *w = storageArg(info, 1, "weight"), *b = optionalStorageArg(info, 2, "bias"),
          *y = storageArg(info, 3, "y");
  Conv2dShape s = conv2dShape(info, 4);
  auto c = convCounts(s);
  requireCount(env, x, c.x, "x"), requireCount(env, w, c.w, "weight"), requireCount(env, b, s.outChannels, "bias"), requireCount(env, y, c.y, "y");
  dispatch(env, "conv2dForward", {x, w, b, y}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, conv2dForward<T>(s, ptr<T>(x), ptr<T>(w), ptr<T>(b), ptr<T>(y)));
  });
  return env.Undefined();
}

// conv2dBackwardInput(dy, w, dx, dims)
Napi::Value Conv2dBackwardInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *dy = storageArg(info, 0, "dy"), *w = storageArg(info, 1, "weight"), *dx = storageArg(info, 2, "dx");
  Conv2dShape s = conv2dShape(info, 3);
  auto c = convCounts(s);
  requireCount(env, dy, c.y, "dy"), requireCount(env, w, c.w, "weight"), requireCount(env, dx, c.x, "dx");
  dispatch(env, "conv2dBackwardInput", {dy, w, dx}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, conv2dBackwardInput<T>(s, ptr<T>(dy), ptr<T>(w), ptr<T>(dx)));
  });
  return env.Undefined();
}

// conv2dBackwardWeight(x, dy, dw, dbias | null, dims): accumulates
Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *dy = storageArg(info, 1, "dy"), *dw = storageArg(info, 2, "dweight"),
          *db = optionalStorageArg(info, 3, "dbias");
  Conv2dShape s = conv2dShape(info, 4);
  auto c = convCounts(s);
  requireCount(env, x, c.x, "x"), requireCount(env, dy, c.y, "dy"), requireCount(env, dw, c.w, "dweight"), requireCount(env, db, s.outChannels, "dbias");
  dispatch(env, "conv2dBackwardWeight", {x, dy, dw, db}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, conv2dBackwardWeight<T>(s, ptr<T>(x), ptr<T>(dy), ptr<T>(dw), ptr<T>(db)));
  });
  return env.Undefined();
}

LinearShape linearShape(const Napi::CallbackInfo& info, size_t index) {
  auto d = intsArg(info, index, 3, "linear dims");
  return {d[0], d[1], d[2]};
}

// linearForward(x, w, bias | null, y, [batch, in, out])
Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *w = storageArg(info, 1, "weight"), *b = optionalStorageArg(info, 2, "bias"),
          *y = storageArg(info, 3, "y");
  LinearShape s = linearShape(info, 4);
  requireCount(env, x, s.batch * s.inFeatures, "x"), requireCount(env, w, s.outFeatures * s.inFeatures, "weight");
  requireCount(env, b, s.outFeatures, "bias"), requireCount(env, y, s.batch * s.outFeatures, "y");
  dispatch(env, "linearForward", {x, w, b, y}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, linearForward<T>(s, ptr<T>(x), ptr<T>(w), ptr<T>(b), ptr<T>(y)));
  });
  return env.Undefined();
}

// linearBackwardInput(dy, w, dx, dims)
Napi::Value LinearBackwardInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *dy = storageArg(info, 0, "dy"), *w = storageArg(info, 1, "weight"), *dx = storageArg(info, 2, "dx");
  LinearShape s = linearShape(info, 3);
  requireCount(env, dy, s.batch * s.outFeatures, "dy"), requireCount(env, w, s.outFeatures * s.inFeatures, "weight");
  requireCount(env, dx, s.batch * s.inFeatures, "dx");
  dispatch(env, "linearBackwardInput", {dy, w, dx}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, linearBackwardInput<T>(s, ptr<T>(dy), ptr<T>(w), ptr<T>(dx)));
  });
  return env.Undefined();
}

// linearBackwardWeight(x, dy, dw, dbias | null, dims): accumulates
Napi::Value LinearBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *dy = storageArg(info, 1, "dy"), *dw = storageArg(info, 2, "dweight"),
          *db = optionalStorageArg(info, 3, "dbias");
  LinearShape s = linearShape(info, 4);
  requireCount(env, x, s.batch * s.inFeatures, "x"), requireCount(env, dy, s.batch * s.outFeatures, "dy");
  requireCount(env, dw, s.outFeatures * s.inFeatures, "dweight"), requireCount(env, db, s.outFeatures, "dbias");
  dispatch(env, "linearBackwardWeight", {x, dy, dw, db}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, linearBackwardWeight<T>(s, ptr<T>(x), ptr<T>(dy), ptr<T>(dw), ptr<T>(db)));
  });
  return env.Undefined();
}

BatchNormShape batchNormShape(const Napi::CallbackInfo& info, size_t index) {
  auto d = intsArg(info, index, 3, "batchnorm dims");
  return {d[0], d[1], d[2]};
}

// batchNormForward(x, gamma, beta, runningMean, runningVar, y | null, savedMean, savedInvStd, dims, training, momentum, eps,
//                  replicas, batchesTracked?); y null: the statistics only; batchesTracked (a float64 scalar on x's
//                  device, training only) counts the batch in the same launch as the statistics
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *gamma = storageArg(info, 1, "weight"), *beta = storageArg(info, 2, "bias"),
          *rm = storageArg(info, 3, "running_mean"), *rv = storageArg(info, 4, "running_var"), *y = optionalStorageArg(info, 5, "y"),
          *mean = storageArg(info, 6, "savedMean"), *invStd = storageArg(info, 7, "savedInvStd");
  BatchNormShape s = batchNormShape(info, 8);
  bool training = boolArg(info, 9, "training");
  if (training && s.batch * s.spatial < 1) throw Napi::RangeError::New(env, "batchnorm: training needs at least one value per channel");
  double momentum = numberArg(info, 10, "momentum"), eps = numberArg(info, 11, "eps");
  double replicas = numberArg(info, 12, "replicas");
  if (!(replicas >= 1) || replicas != std::floor(replicas)) throw Napi::RangeError::New(env, "batchnorm: replicas must be an integer >= 1");
  Storage* batchesTracked = optionalStorageArg(info, 13, "num_batches_tracked");
  if (batchesTracked) {
    if (!training) throw Napi::Error::New(env, "batchnorm: num_batches_tracked counts training batches only; pass null in evaluation");
    if (batchesTracked->dtype() != DType::Float64 || batchesTracked->count() != 1)
      throw Napi::TypeError::New(env, "batchnorm: num_batches_tracked must be a float64 scalar");
  }
  int64_t n = s.batch * s.channels * s.spatial;
  requireCount(env, x, n, "x"), requireCount(env, y, n, "y");
  for (Storage* p : {gamma, beta, rm, rv, mean, invStd}) requireCount(env, p, s.channels, "per-channel tensor");
  dispatch(env, "batchNormForward", {x, gamma, beta, rm, rv, y, mean, invStd}, {batchesTracked}, [&](auto tag, auto device) {
    using T = decltype(tag);
    if (training)
      IKUN_RUN(device, batchNormForwardTrain<T>(s, ptr<T>(x), ptr<T>(gamma), ptr<T>(beta), ptr<T>(rm), ptr<T>(rv), momentum,
                                                eps, int64_t(replicas), ptr<T>(y), ptr<T>(mean), ptr<T>(invStd),
                                                ptr<double>(batchesTracked)));
    else
      IKUN_RUN(device, batchNormForwardEval<T>(s, ptr<T>(x), ptr<T>(gamma), ptr<T>(beta), ptr<T>(rm), ptr<T>(rv), eps, ptr<T>(y),
                                               ptr<T>(mean), ptr<T>(invStd)));
  });
  return env.Undefined();
}

// batchNormBackward(dy, x, gamma, savedMean, savedInvStd, dx | null, dgamma, dbeta, dims, training)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *dy = storageArg(info, 0, "dy"), *x = storageArg(info, 1, "x"), *gamma = storageArg(info, 2, "weight"),
          *mean = storageArg(info, 3, "savedMean"), *invStd = storageArg(info, 4, "savedInvStd"),
          *dx = optionalStorageArg(info, 5, "dx"), *dgamma = storageArg(info, 6, "dweight"), *dbeta = storageArg(info, 7, "dbias");
  BatchNormShape s = batchNormShape(info, 8);
  bool training = boolArg(info, 9, "training");
  int64_t n = s.batch * s.channels * s.spatial;
  requireCount(env, dy, n, "dy"), requireCount(env, x, n, "x"), requireCount(env, dx, n, "dx");
  for (Storage* p : {gamma, mean, invStd, dgamma, dbeta}) requireCount(env, p, s.channels, "per-channel tensor");
  dispatch(env, "batchNormBackward", {dy, x, gamma, mean, invStd, dx, dgamma, dbeta}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, batchNormBackward<T>(s, training, ptr<T>(dy), ptr<T>(x), ptr<T>(gamma), ptr<T>(mean), ptr<T>(invStd),
                                          ptr<T>(dx), ptr<T>(dgamma), ptr<T>(dbeta)));
  });
  return env.Undefined();
}

Pool2dShape poolShape(const Napi::CallbackInfo& info, size_t index) {
  auto d = intsArg(info, index, 5, "maxpool dims");
  Pool2dShape s{d[0], d[1], d[2], d[3], d[4]};
  if (s.kernel < 1 || s.stride < 1 || s.outHeight() < 1 || s.outWidth() < 1)
    throw Napi::RangeError::New(info.Env(), "maxpool2d: invalid geometry");
  return s;
}

}  // namespace

// argmax values index into an input plane; a storage filled by hand must not send the kernels out of bounds.
// (Device memory cannot be read here without waiting for the device: the CUDA kernels skip bad offsets.)
void requireArgmaxInPlane(Napi::Env env, Storage* argmax, const Pool2dShape& s) {
  if (argmax->device() >= 0) return;
  const int64_t count = s.planes * s.outHeight() * s.outWidth(), plane = s.inHeight * s.inWidth;
  const int32_t* a = argmax->as<int32_t>();
  for (int64_t i = 0; i < count; ++i)
    if (a[i] < 0 || a[i] >= plane) throw Napi::RangeError::New(env, "maxpool2d: argmax holds an offset outside the input plane");
}

namespace {

// maxPool2dForward(x, y, argmax, [planes, H, W, kernel, stride])
Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y"), *arg = storageArg(info, 2, "argmax");
  Pool2dShape s = poolShape(info, 3);
  requireInt32(env, arg, "maxpool2d: argmax");
  int64_t outCount = s.planes * s.outHeight() * s.outWidth();
  requireCount(env, x, s.planes * s.inHeight * s.inWidth, "x"), requireCount(env, y, outCount, "y"), requireCount(env, arg, outCount, "argmax");
  dispatch(env, "maxPool2dForward", {x, y}, {arg}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, maxPool2dForward<T>(s, ptr<T>(x), ptr<T>(y), ptr<int32_t>(arg)));
  });
  return env.Undefined();
}

// maxPool2dBackward(dy, argmax, dx, dims)
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *dy = storageArg(info, 0, "dy"), *arg = storageArg(info, 1, "argmax"), *dx = storageArg(info, 2, "dx");
  Pool2dShape s = poolShape(info, 3);
  requireInt32(env, arg, "maxpool2d: argmax");
  int64_t outCount = s.planes * s.outHeight() * s.outWidth();
  requireCount(env, dy, outCount, "dy"), requireCount(env, arg, outCount, "argmax"), requireCount(env, dx, s.planes * s.inHeight * s.inWidth, "dx");
  requireArgmaxInPlane(env, arg, s);
  dispatch(env, "maxPool2dBackward", {dy, dx}, {arg}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, maxPool2dBackward<T>(s, ptr<T>(dy), ptr<int32_t>(arg), ptr<T>(dx)));
  });
  return env.Undefined();
}

}  // namespace

void registerNnOps(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2dForward", Napi::Function::New<guarded<Conv2dForward>>(env, "conv2dForward"));
  exports.Set("conv2dBackwardInput", Napi::Function::New<guarded<Conv2dBackwardInput>>(env, "conv2dBackwardInput"));
  exports.Set("conv2dBackwardWeight", Napi::Function::New<guarded<Conv2dBackwardWeight>>(env, "conv2dBackwardWeight"));
  exports.Set("linearForward", Napi::Function::New<guarded<LinearForward>>(env, "linearForward"));
  exports.Set("linearBackwardInput", Napi::Function::New<guarded<LinearBackwardInput>>(env, "linearBackwardInput"));
  exports.Set("linearBackwardWeight", Napi::Function::New<guarded<LinearBackwardWeight>>(env, "linearBackwardWeight"));
  exports.Set("batchNormForward", Napi::Function::New<guarded<BatchNormForward>>(env, "batchNormForward"));
  exports.Set("batchNormBackward", Napi::Function::New<guarded<BatchNormBackward>>(env, "batchNormBackward"));
  exports.Set("maxPool2dForward", Napi::Function::New<guarded<MaxPool2dForward>>(env, "maxPool2dForward"));
  exports.Set("maxPool2dBackward", Napi::Function::New<guarded<MaxPool2dBackward>>(env, "maxPool2dBackward"));
}

}  // namespace ikun::napi
