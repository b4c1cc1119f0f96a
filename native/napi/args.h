// Argument helpers for the bindings. The TypeScript layer has validated shapes, values, dtypes and
// devices; these checks only guard against misuse of the raw binding (a crash would take the whole
// process down).
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu/kernels.h"
#include "../cuda/kernels.h"
#include "../cuda/runtime.h"
#include "storage.h"

namespace ikun::napi {

struct AddonData {
  Napi::FunctionReference storageConstructor;
  std::shared_ptr<LiveStorages> liveStorages = std::make_shared<LiveStorages>();
};

Storage* storageArg(const Napi::CallbackInfo& info, size_t index, const char* name);
Storage* optionalStorageArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// An array of Storage (entries may be null when allowNull).
std::vector<Storage*> storageListArg(const Napi::CallbackInfo& info, size_t index, const char* name, bool allowNull = false);
std::vector<int64_t> intsArg(const Napi::CallbackInfo& info, size_t index, size_t expected, const char* name);
double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name);
bool boolArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Fields of an options object passed to the binding; `what` names the object in errors.
Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* what);
double numberProperty(Napi::Env env, Napi::Object o, const char* key, const char* what);
bool boolProperty(Napi::Env env, Napi::Object o, const char* key, const char* what);
void requireSameDType(Napi::Env env, std::initializer_list<Storage*> storages);
void requireCount(Napi::Env env, Storage* s, int64_t count, const char* name);
void requireInt32(Napi::Env env, Storage* s, const char* name);

template <class T> T* ptr(Storage* s) { return s ? s->as<T>() : nullptr; }

// The device tags the dispatch hands to a binding's body.
struct OnCpu {
  static constexpr bool cuda = false;
};
struct OnCuda {
  static constexpr bool cuda = true;
};

// Runs `call` (a kernel call without its namespace) on the CPU or CUDA kernels, by the device tag:
//   IKUN_RUN(device, conv2dForward<T>(s, ptr<T>(x), ...));
// In a build without CUDA the CUDA branch is never instantiated.
#define IKUN_RUN(device, ...)                                                             \
  [&]() {                                                                                 \
    if constexpr (decltype(device)::cuda) return ::ikun::cuda::__VA_ARGS__;               \
    else return ::ikun::cpu::__VA_ARGS__;                                                 \
  }()

// The device of the storages, all of which must be on one device (a message naming both otherwise).
// `op` names the op in errors. Null entries are skipped.
int commonDevice(Napi::Env env, const char* op, std::initializer_list<Storage*> storages);
int commonDevice(Napi::Env env, const char* op, const std::vector<Storage*>& storages);

// The one dispatch of every binding: calls fn(T{}, device) with T = float or double from the dtype of
// `floats` (all the same) and device = OnCpu{} or OnCuda{} from the device of `floats` and `others` (all
// the same; `others` are storages of other dtypes, such as int32 argmax). For CUDA the device is made
// current on this thread first, so the kernels queue on its stream.
template <class Fn>
void dispatch(Napi::Env env, const char* op, std::initializer_list<Storage*> floats, std::initializer_list<Storage*> others,
              Fn&& fn) {
  Storage* first = nullptr;
  for (Storage* s : floats)
    if (s && !first) first = s;
  if (!first) throw Napi::TypeError::New(env, std::string(op) + ": no tensor given");
  requireSameDType(env, floats);
  std::vector<Storage*> all(floats);
  all.insert(all.end(), others.begin(), others.end());
  const int device = commonDevice(env, op, all);
  auto run = [&](auto device) {
    switch (first->dtype()) {
      case DType::Float32: fn(float{}, device); break;
      case DType::Float64: fn(double{}, device); break;
      default: throw Napi::TypeError::New(env, std::string(op) + ": expected float32 or float64 tensors");
    }
  };
  if (device < 0) return run(OnCpu{});
#if defined(IKUN_WITH_CUDA)
  cuda::DeviceGuard guard(device);
  cuda::OpTimer timer(device, op);
  run(OnCuda{});
#else
  throw Napi::Error::New(env, std::string(op) + ": this build of ikun has no CUDA support");
#endif
}

template <class Fn>
void dispatch(Napi::Env env, const char* op, std::initializer_list<Storage*> floats, Fn&& fn) {
  dispatch(env, op, floats, {}, std::forward<Fn>(fn));
}

// The dispatch of ops that also take int32 tensors (the tensor basics): T = float, double or int32_t by
// the dtype of `typed`; the device from all of `storages` (which must share it).
template <class Fn>
void dispatchNumeric(Napi::Env env, const char* op, Storage* typed, std::initializer_list<Storage*> storages, Fn&& fn) {
  const int device = commonDevice(env, op, storages);
  auto run = [&](auto device) {
    switch (typed->dtype()) {
      case DType::Float32: fn(float{}, device); break;
      case DType::Float64: fn(double{}, device); break;
      default: fn(int32_t{}, device); break;
    }
  };
  if (device < 0) return run(OnCpu{});
#if defined(IKUN_WITH_CUDA)
  cuda::DeviceGuard guard(device);
  cuda::OpTimer timer(device, op);
  run(OnCuda{});
#else
  throw Napi::Error::New(env, std::string(op) + ": this build of ikun has no CUDA support");
#endif
}

// Where an op that computes a number puts it. The binding's optional trailing arguments
// (accumulator: float64 Storage on the op's device, slot: index, scale: number) make it add
// value * scale to accumulator[slot] and return undefined, without waiting for the device; without
// them the value is returned (for CUDA that waits for the device).
class NumberResult {
 public:
  NumberResult(const Napi::CallbackInfo& info, size_t index);
  ~NumberResult();
  NumberResult(const NumberResult&) = delete;
  NumberResult& operator=(const NumberResult&) = delete;
  // The CPU kernels return the number: deliver it.
  Napi::Value fromHost(Napi::Env env, double value);
#if defined(IKUN_WITH_CUDA)
  // The CUDA kernels write it to device memory: where, and (after the kernel was queued) the result.
  cuda::DeviceResult onDevice(int device);
  Napi::Value fromDevice(Napi::Env env);
#endif
  Storage* accumulator() const { return accumulator_; }

 private:
  Storage* accumulator_ = nullptr;
  int64_t slot_ = 0;
  double scale_ = 1;
  int device_ = -1;
  double* scratch_ = nullptr;
};

// Converts C++ exceptions from kernels (bad_alloc from a workspace, a CUDA error, device out of memory)
// into JS errors instead of letting them abort the process.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return Fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of host memory in a native op; use a smaller batch or model");
  } catch (const cuda::OutOfMemoryError& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("native op failed: ") + e.what());
  }
}

void registerStorage(Napi::Env env, Napi::Object exports, AddonData* data);
void registerNnOps(Napi::Env env, Napi::Object exports);
void registerSpikingOps(Napi::Env env, Napi::Object exports);
void registerUtilOps(Napi::Env env, Napi::Object exports);
void registerOptimOps(Napi::Env env, Napi::Object exports);
void registerTangentOps(Napi::Env env, Napi::Object exports);
void registerCudaOps(Napi::Env env, Napi::Object exports);
void registerTensorOps(Napi::Env env, Napi::Object exports);
void registerBuildInfo(Napi::Env env, Napi::Object exports);

}  // namespace ikun::napi
