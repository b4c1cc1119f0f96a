// Bindings for the CUDA devices: how many, what they are, the caching allocator's statistics and cache,
// and waiting for queued work. Kernels are not here: every op binding dispatches by device itself.
#include "../cuda/precision.h"
#include "args.h"

namespace ikun::napi {
namespace {

int deviceArg(const Napi::CallbackInfo& info, size_t index) {
  const double d = numberArg(info, index, "device");
  if (d != double(int(d)) || d < 0 || int(d) >= cuda::deviceCount())
    throw Napi::RangeError::New(info.Env(), "cuda:" + std::to_string(d) + " does not exist (" +
                                                std::to_string(cuda::deviceCount()) + " CUDA device(s) visible)");
  return int(d);
}

Napi::Value DeviceCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cuda::deviceCount()); }

Napi::Value Emulated(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cuda::emulated()); }

// cudaDeviceInfo(device) -> { name, totalMemory, major, minor, multiprocessors }
Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  const cuda::DeviceInfo d = cuda::deviceInfo(deviceArg(info, 0));
  auto o = Napi::Object::New(info.Env());
  o.Set("name", d.name);
  o.Set("totalMemory", double(d.totalMemory));
  o.Set("major", d.major);
  o.Set("minor", d.minor);
  o.Set("multiprocessors", d.multiprocessors);
  return o;
}

// cudaMemoryStats(device) -> { allocated, reserved, peakAllocated } in bytes
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  const cuda::MemoryStats s = cuda::memoryStats(deviceArg(info, 0));
  auto o = Napi::Object::New(info.Env());
  o.Set("allocated", double(s.allocated));
  o.Set("reserved", double(s.reserved));
  o.Set("peakAllocated", double(s.peakAllocated));
  return o;
}

// cudaRuntimeCounters(device) -> what the host asked of the device since the process started (runtime.h)
Napi::Value RuntimeCounters(const Napi::CallbackInfo& info) {
  const cuda::RuntimeCounters c = cuda::runtimeCounters(deviceArg(info, 0));
  auto o = Napi::Object::New(info.Env());
  o.Set("kernelLaunches", double(c.kernelLaunches));
  o.Set("memoryOps", double(c.memoryOps));
  o.Set("hostToDeviceCopies", double(c.hostToDeviceCopies));
  o.Set("deviceToHostCopies", double(c.deviceToHostCopies));
  o.Set("hostWaits", double(c.hostWaits));
  o.Set("deviceAllocations", double(c.deviceAllocations));
  return o;
}

Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
  cuda::resetPeakMemory(deviceArg(info, 0));
  return info.Env().Undefined();
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  const int device = deviceArg(info, 0);
  const size_t reservedBefore = cuda::memoryStats(device).reserved;
  cuda::emptyCache(device);
  const int64_t change = int64_t(cuda::memoryStats(device).reserved) - int64_t(reservedBefore);
  reportDeviceReservedChange(info.Env(), *info.Env().GetInstanceData<AddonData>()->liveStorages, change);
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  cuda::synchronize(deviceArg(info, 0));
  return info.Env().Undefined();
}

// cudaSetPrecision('tf32' | 'fp32' | 'bf16') / cudaPrecision(): how CUDA convolutions and matrix products run (float32)
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (name == "tf32") cuda::setCudaPrecision(cuda::CudaPrecision::Tf32);
  else if (name == "fp32") cuda::setCudaPrecision(cuda::CudaPrecision::Fp32);
  else if (name == "bf16") cuda::setCudaPrecision(cuda::CudaPrecision::Bf16);
  else throw Napi::RangeError::New(env, "precision must be 'tf32', 'fp32' or 'bf16'");
  return env.Undefined();
}

Napi::Value Precision(const Napi::CallbackInfo& info) {
  switch (cuda::cudaPrecision()) {
    case cuda::CudaPrecision::Tf32: return Napi::String::New(info.Env(), "tf32");
    case cuda::CudaPrecision::Bf16: return Napi::String::New(info.Env(), "bf16");
    default: return Napi::String::New(info.Env(), "fp32");
  }
}

// cudaMmaLayoutCheck(device) -> { tf32, bf16 }: the largest error of each tensor-core wrapper on known matrices (0: right)
Napi::Value MmaLayoutCheck(const Napi::CallbackInfo& info) {
  const int device = deviceArg(info, 0);
  cuda::DeviceGuard guard(device);
  const cuda::MmaLayoutErrors errors = cuda::mmaLayoutCheck();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("tf32", Napi::Number::New(info.Env(), errors.tf32));
  result.Set("bf16", Napi::Number::New(info.Env(), errors.bf16));
  return result;
}

// cudaSetOpProfiling(enabled): CUDA events around every op (bench:gpu)
Napi::Value SetOpProfiling(const Napi::CallbackInfo& info) {
  cuda::setOpProfiling(boolArg(info, 0, "enabled"));
  return info.Env().Undefined();
}

// cudaTakeOpProfile(device) -> [{ op, ms, calls }] since profiling began or the last take (waits for the device)
Napi::Value TakeOpProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto times = cuda::takeOpProfile(deviceArg(info, 0));
  auto list = Napi::Array::New(env, times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    auto o = Napi::Object::New(env);
    o.Set("op", times[i].op);
    o.Set("ms", times[i].milliseconds);
    o.Set("calls", double(times[i].calls));
    list.Set(uint32_t(i), o);
  }
  return list;
}

}  // namespace

void registerCudaOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaDeviceCount", Napi::Function::New<guarded<DeviceCount>>(env, "cudaDeviceCount"));
  exports.Set("cudaEmulated", Napi::Function::New<guarded<Emulated>>(env, "cudaEmulated"));
  exports.Set("cudaDeviceInfo", Napi::Function::New<guarded<DeviceInfo>>(env, "cudaDeviceInfo"));
  exports.Set("cudaMemoryStats", Napi::Function::New<guarded<MemoryStats>>(env, "cudaMemoryStats"));
  exports.Set("cudaRuntimeCounters", Napi::Function::New<guarded<RuntimeCounters>>(env, "cudaRuntimeCounters"));
  exports.Set("cudaResetPeakMemory", Napi::Function::New<guarded<ResetPeakMemory>>(env, "cudaResetPeakMemory"));
  exports.Set("cudaEmptyCache", Napi::Function::New<guarded<EmptyCache>>(env, "cudaEmptyCache"));
  exports.Set("cudaSynchronize", Napi::Function::New<guarded<Synchronize>>(env, "cudaSynchronize"));
  exports.Set("cudaSetPrecision", Napi::Function::New<guarded<SetPrecision>>(env, "cudaSetPrecision"));
  exports.Set("cudaPrecision", Napi::Function::New<guarded<Precision>>(env, "cudaPrecision"));
  exports.Set("cudaSetOpProfiling", Napi::Function::New<guarded<SetOpProfiling>>(env, "cudaSetOpProfiling"));
  exports.Set("cudaTakeOpProfile", Napi::Function::New<guarded<TakeOpProfile>>(env, "cudaTakeOpProfile"));
  exports.Set("cudaMmaLayoutCheck", Napi::Function::New<guarded<MmaLayoutCheck>>(env, "cudaMmaLayoutCheck"));
}

}  // namespace ikun::napi
