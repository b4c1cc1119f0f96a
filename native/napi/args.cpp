#include "args.h"

#include <algorithm>
#include <cmath>

namespace ikun::napi {

static std::string argLabel(size_t index, const char* name) {
  return std::string("argument ") + std::to_string(index) + " (" + name + ")";
}

Storage* optionalStorageArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) return nullptr;
  auto* data = env.GetInstanceData<AddonData>();
  if (!info[index].IsObject() || !info[index].As<Napi::Object>().InstanceOf(data->storageConstructor.Value()))
    throw Napi::TypeError::New(env, argLabel(index, name) + " must be a native Storage");
  Storage* s = Storage::Unwrap(info[index].As<Napi::Object>());
  if (s->disposed()) throw Napi::Error::New(env, std::string(name) + ": tensor has been disposed; it can no longer be used");
  return s;
}

Storage* storageArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Storage* s = optionalStorageArg(info, index, name);
  if (!s) throw Napi::TypeError::New(info.Env(), argLabel(index, name) + " is required");
  return s;
}

std::vector<int64_t> intsArg(const Napi::CallbackInfo& info, size_t index, size_t expected, const char* name) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsArray()) throw Napi::TypeError::New(env, argLabel(index, name) + " must be an array of integers");
  auto array = info[index].As<Napi::Array>();
  if (array.Length() != expected)
    throw Napi::RangeError::New(env, argLabel(index, name) + " must have " + std::to_string(expected) + " entries");
  std::vector<int64_t> values(expected);
  // Every count a kernel derives is a product of some of these: bounding the product of all of them
  // (zeros counted as one) keeps every such count exact and far from int64 overflow.
  double product = 1;
  for (uint32_t i = 0; i < expected; ++i) {
    Napi::Value v = array[i];
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 0) || d != std::floor(d) || d > 2147483647.0)
      throw Napi::RangeError::New(env, argLabel(index, name) + " must hold integers in [0, 2^31)");
    product *= std::max(1.0, d);
    if (product > 9007199254740992.0) throw Napi::RangeError::New(env, argLabel(index, name) + ": sizes too large");
    values[i] = static_cast<int64_t>(d);
  }
  return values;
}

double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), argLabel(index, name) + " must be a number");
  return info[index].As<Napi::Number>().DoubleValue();
}

bool boolArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsBoolean()) throw Napi::TypeError::New(info.Env(), argLabel(index, name) + " must be a boolean");
  return info[index].As<Napi::Boolean>().Value();
}

Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index >= info.Length() || !info[index].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an object");
  return info[index].As<Napi::Object>();
}

double numberProperty(Napi::Env env, Napi::Object o, const char* key, const char* what) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + ": '" + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool boolProperty(Napi::Env env, Napi::Object o, const char* key, const char* what) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, std::string(what) + ": '" + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

void requireSameDType(Napi::Env env, std::initializer_list<Storage*> storages) {
  const Storage* first = nullptr;
  for (Storage* s : storages) {
    if (!s) continue;
    if (!first) first = s;
    else if (s->dtype() != first->dtype())
      throw Napi::TypeError::New(env, std::string("dtype mismatch: ") + dtypeName(first->dtype()) + " and " + dtypeName(s->dtype()));
  }
}

std::vector<Storage*> storageListArg(const Napi::CallbackInfo& info, size_t index, const char* name, bool allowNull) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsArray()) throw Napi::TypeError::New(env, argLabel(index, name) + " must be an array of Storage");
  auto array = info[index].As<Napi::Array>();
  auto* data = env.GetInstanceData<AddonData>();
  std::vector<Storage*> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (allowNull && (v.IsNull() || v.IsUndefined())) {
      result.push_back(nullptr);
      continue;
    }
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->storageConstructor.Value()))
      throw Napi::TypeError::New(env, argLabel(index, name) + "[" + std::to_string(i) + "] must be a native Storage");
    Storage* s = Storage::Unwrap(v.As<Napi::Object>());
    if (s->disposed()) throw Napi::Error::New(env, std::string(name) + "[" + std::to_string(i) + "]: tensor has been disposed");
    result.push_back(s);
  }
  return result;
}

int commonDevice(Napi::Env env, const char* op, const std::vector<Storage*>& storages) {
  const Storage* first = nullptr;
  for (Storage* s : storages) {
    if (!s) continue;
    if (!first) first = s;
    else if (s->device() != first->device())
      throw Napi::Error::New(env, std::string(op) + ": tensors on different devices (" + deviceName(first->device()) + " and " +
                                      deviceName(s->device()) + "); move them to one device with .to(device)");
  }
  return first ? first->device() : -1;
}

int commonDevice(Napi::Env env, const char* op, std::initializer_list<Storage*> storages) {
  return commonDevice(env, op, std::vector<Storage*>(storages));
}

void requireInt32(Napi::Env env, Storage* s, const char* name) {
  if (s && s->dtype() != DType::Int32) throw Napi::TypeError::New(env, std::string(name) + " storage must be int32");
}

NumberResult::~NumberResult() {
#if defined(IKUN_WITH_CUDA)
  if (scratch_) cuda::release(device_, scratch_);
#endif
}

NumberResult::NumberResult(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  accumulator_ = optionalStorageArg(info, index, "accumulator");
  if (!accumulator_) return;
  if (accumulator_->dtype() != DType::Float64) throw Napi::TypeError::New(env, "accumulator must be a float64 storage");
  const double slot = numberArg(info, index + 1, "slot");
  if (!(slot >= 0) || slot != std::floor(slot) || slot >= double(accumulator_->count()))
    throw Napi::RangeError::New(env, "slot must index the accumulator");
  slot_ = int64_t(slot);
  scale_ = numberArg(info, index + 2, "scale");
}

Napi::Value NumberResult::fromHost(Napi::Env env, double value) {
  if (!accumulator_) return Napi::Number::New(env, value);
  if (accumulator_->device() >= 0) throw Napi::Error::New(env, "the accumulator must be on the op's device (cpu)");
  accumulator_->as<double>()[slot_] += value * scale_;
  return env.Undefined();
}

#if defined(IKUN_WITH_CUDA)
cuda::DeviceResult NumberResult::onDevice(int device) {
  device_ = device;
  if (accumulator_) {
    if (accumulator_->device() != device)
      throw std::invalid_argument("the accumulator is on " + deviceName(accumulator_->device()) + ", the op on " + deviceName(device));
    return cuda::DeviceResult{accumulator_->as<double>() + slot_, scale_, true};
  }
  scratch_ = static_cast<double*>(cuda::allocate(device, sizeof(double)));
  return cuda::DeviceResult{scratch_, 1.0, false};
}

Napi::Value NumberResult::fromDevice(Napi::Env env) {
  if (accumulator_) return env.Undefined();
  double value = 0;
  cuda::copyDeviceToHost(device_, &value, scratch_, sizeof(double));
  return Napi::Number::New(env, value);
}
#endif

void requireCount(Napi::Env env, Storage* s, int64_t count, const char* name) {
  if (s && static_cast<int64_t>(s->count()) < count)
    throw Napi::RangeError::New(env, std::string(name) + ": storage holds " + std::to_string(s->count()) +
                                         " elements, the op needs " + std::to_string(count));
}

}  // namespace ikun::napi
