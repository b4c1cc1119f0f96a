// Argument helpers for the bindings. The TypeScript layer has validated shapes and values; these checks
// only guard against misuse of the raw binding (a crash would take the whole process down).
#pragma once
#include <napi.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage.h"

namespace ikun::napi {

struct AddonData {
  Napi::FunctionReference storageConstructor;
};

Storage* storageArg(const Napi::CallbackInfo& info, size_t index, const char* name);
Storage* optionalStorageArg(const Napi::CallbackInfo& info, size_t index, const char* name);
std::vector<int64_t> intsArg(const Napi::CallbackInfo& info, size_t index, size_t expected, const char* name);
double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name);
bool boolArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Fields of an options object passed to the binding; `what` names the object in errors.
Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* what);
double numberProperty(Napi::Env env, Napi::Object o, const char* key, const char* what);
bool boolProperty(Napi::Env env, Napi::Object o, const char* key, const char* what);
void requireSameDType(Napi::Env env, std::initializer_list<Storage*> storages);
void requireCount(Napi::Env env, Storage* s, int64_t count, const char* name);

template <class T> T* ptr(Storage* s) { return s ? s->as<T>() : nullptr; }

// Calls fn(T{}) with T = float or double according to the storage's dtype.
template <class Fn>
void dispatchFloat(Napi::Env env, Storage* s, Fn&& fn) {
  switch (s->dtype()) {
    case DType::Float32: fn(float{}); break;
    case DType::Float64: fn(double{}); break;
    default: throw Napi::TypeError::New(env, "expected a float32 or float64 tensor");
  }
}

// Converts C++ exceptions from kernels (bad_alloc from a workspace, say) into JS errors instead of
// letting them abort the process.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return Fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of host memory in a native op; use a smaller batch or model");
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
void registerTensorOps(Napi::Env env, Napi::Object exports);

}  // namespace ikun::napi
