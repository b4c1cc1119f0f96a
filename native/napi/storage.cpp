#include "storage.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../cpu/host_allocator.h"
#include "../cpu/kernels.h"
#include "../cuda/kernels.h"
#include "../cuda/runtime.h"
#include "args.h"

namespace ikun::napi {

size_t dtypeSize(DType dtype) { return dtype == DType::Float64 ? 8 : 4; }
const char* dtypeName(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    default: return "int32";
  }
}
std::string deviceName(int device) { return device < 0 ? "cpu" : "cuda:" + std::to_string(device); }

Napi::Function Storage::Define(Napi::Env env) {
  return DefineClass(env, "Storage",
                     {
                         InstanceMethod<&Storage::Read>("read"),
                         InstanceMethod<&Storage::Write>("write"),
                         InstanceMethod<&Storage::Fill>("fill"),
                         InstanceMethod<&Storage::CopyFrom>("copyFrom"),
                         InstanceMethod<&Storage::Dispose>("dispose"),
                         InstanceAccessor<&Storage::IsDisposed>("disposed"),
                         InstanceAccessor<&Storage::ByteLength>("byteLength"),
                         InstanceAccessor<&Storage::DeviceIndex>("device"),
                     });
}

// Storage errors as JS errors (the thread pool, CUDA and the allocators throw C++ exceptions).
template <class Fn>
static void asJsError(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// new Storage(dtypeCode, count, zeroFill, device = -1)
Storage::Storage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Storage>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean())
    throw Napi::TypeError::New(env, "Storage(dtype: number, count: number, zero: boolean, device?: number)");
  int code = info[0].As<Napi::Number>().Int32Value();
  if (code < 0 || code > 2) throw Napi::RangeError::New(env, "Storage: unknown dtype code " + std::to_string(code));
  dtype_ = static_cast<DType>(code);
  double count = info[1].As<Napi::Number>().DoubleValue();
  if (!(count >= 0) || count > 9.0e15 || count != static_cast<double>(static_cast<int64_t>(count)))
    throw Napi::RangeError::New(env, "Storage: count must be a non-negative integer");
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsNumber()) throw Napi::TypeError::New(env, "Storage: device must be a number (-1 for the CPU)");
    const double device = info[3].As<Napi::Number>().DoubleValue();
    if (device != double(int(device)) || device < -1) throw Napi::RangeError::New(env, "Storage: device must be -1 or a CUDA device index");
    if (device >= 0 && int(device) >= cuda::deviceCount())
      throw Napi::RangeError::New(env, "Storage: " + deviceName(int(device)) + " does not exist (" +
                                           std::to_string(cuda::deviceCount()) + " CUDA device(s) visible)");
    device_ = int(device);
  }
  count_ = static_cast<size_t>(count);
  const size_t size = bytes();
  if (size == 0) return;
  live_ = env.GetInstanceData<AddonData>()->liveStorages;
  // A sweep costs one reference lookup per live storage: run it once per kSweepEvery bytes allocated, so
  // that it is noise next to the work on those bytes, and often enough that collected tensors' memory
  // is reused before more is allocated.
  constexpr size_t kSweepEvery = size_t(16) << 20;
  live_->allocatedSinceSweep += size;
  if (live_->allocatedSinceSweep >= kSweepEvery) {
    live_->allocatedSinceSweep = 0;
    sweepCollected(env, *live_);
  }
  const bool zero = info[2].As<Napi::Boolean>().Value();
  if (device_ >= 0) {
    asJsError(env, [&] {
      const size_t reservedBefore = cuda::memoryStats(device_).reserved;
      data_ = cuda::allocate(device_, size);
      reportDeviceReservedChange(env, *live_, int64_t(cuda::memoryStats(device_).reserved) - int64_t(reservedBefore));
      if (!zero) return;
      try {
        cuda::fillBytes(device_, data_, 0, size);
      } catch (...) {  // the constructor fails: no destructor will free the block
        cuda::release(device_, data_);
        data_ = nullptr;
        throw;
      }
    });
  } else {
    data_ = cpu::hostAllocate(size);
    if (!data_)
      throw Napi::RangeError::New(env, "out of host memory: could not allocate " + std::to_string(size) +
                                           " bytes for a tensor; use a smaller batch or model");
    if (zero) std::memset(data_, 0, size);
    int64_t ignored = 0;
    napi_adjust_external_memory(env, static_cast<int64_t>(size), &ignored);
  }
  liveIndex_ = live_->list.size();
  live_->list.push_back(this);
}

Storage::~Storage() { release(); }

void reportDeviceReservedChange(napi_env env, LiveStorages& live, int64_t change) {
  if (change < 0) change = -std::min(-change, live.reportedDeviceBytes);
  if (change == 0) return;
  live.reportedDeviceBytes += change;
  int64_t ignored = 0;
  napi_adjust_external_memory(env, change, &ignored);  // only guides V8's GC pacing: a failure changes nothing
}

Napi::Object Storage::Create(Napi::Env env, DType dtype, int64_t count, int device) {
  auto* data = env.GetInstanceData<AddonData>();
  return data->storageConstructor.New({Napi::Number::New(env, double(int(dtype))), Napi::Number::New(env, double(count)),
                                       Napi::Boolean::New(env, false), Napi::Number::New(env, double(device))});
}

void Storage::sweepCollected(napi_env env, LiveStorages& live) {
  for (size_t i = live.list.size(); i-- > 0;) {
    Storage* s = live.list[i];
    napi_value value = nullptr;
    // An empty value: the garbage collector has collected the JS object (its finalizer is still to come).
    if (napi_get_reference_value(env, static_cast<napi_ref>(*s), &value) == napi_ok && value == nullptr) s->release();
  }
}

void Storage::release() {
  if (!data_) return;
  if (device_ >= 0) cuda::release(device_, data_);
  else cpu::hostFree(data_, bytes());
  data_ = nullptr;
  if (live_) {  // take this storage off the live list (swap with the last one)
    auto& list = live_->list;
    Storage* moved = list.back();
    list[liveIndex_] = moved;
    moved->liveIndex_ = liveIndex_;
    list.pop_back();
    live_.reset();
  }
  // The C call, not Napi::MemoryManagement: this also runs from the garbage collector's finalizer while
  // an environment (a worker thread, a process) shuts down, where the call can fail, and the C++ wrapper
  // would then throw out of a destructor and abort the process. The count only guides V8's GC pacing.
  // A CUDA block stays in the allocator's reserved memory, which is what was reported for it.
  if (env_ && device_ < 0) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env_, -static_cast<int64_t>(bytes()), &ignored);
  }
}

static void requireAlive(Napi::Env env, const Storage* s) {
  if (s->disposed()) throw Napi::Error::New(env, "tensor has been disposed; it can no longer be used");
}

Napi::Value Storage::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  const size_t size = bytes();
  auto buffer = Napi::ArrayBuffer::New(env, size);
  if (size) {
    if (device_ >= 0) asJsError(env, [&] { cuda::copyDeviceToHost(device_, buffer.Data(), data_, size); });
    else std::memcpy(buffer.Data(), data_, size);
  }
  switch (dtype_) {
    case DType::Float32: return Napi::Float32Array::New(env, count_, buffer, 0);
    case DType::Float64: return Napi::Float64Array::New(env, count_, buffer, 0);
    default: return Napi::Int32Array::New(env, count_, buffer, 0);
  }
}

// write(typedArray) with the storage's own element type and exactly count elements.
void Storage::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "write(data: TypedArray)");
  auto array = info[0].As<Napi::TypedArray>();
  napi_typedarray_type expected = dtype_ == DType::Float32   ? napi_float32_array
                                  : dtype_ == DType::Float64 ? napi_float64_array
                                                             : napi_int32_array;
  if (array.TypedArrayType() != expected) throw Napi::TypeError::New(env, std::string("write: expected a typed array of ") + dtypeName(dtype_));
  if (array.ElementLength() != count_) throw Napi::RangeError::New(env, "write: element count differs from the tensor's");
  auto source = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  if (count_ == 0) return;
  if (device_ >= 0) asJsError(env, [&] { cuda::copyHostToDevice(device_, data_, source, bytes()); });
  else std::memcpy(data_, source, bytes());
}

void Storage::Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  asJsError(env, [&] { FillChecked(info); });
}

void Storage::FillChecked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  double value = numberArg(info, 0, "value");
  if (count_ == 0) return;
  if (device_ >= 0) {
#if defined(IKUN_WITH_CUDA)
    cuda::DeviceGuard guard(device_);
    if (value == 0 && !std::signbit(value)) return cuda::fillBytes(device_, data_, 0, bytes());
    switch (dtype_) {
      case DType::Float32: cuda::fill<float>(int64_t(count_), float(value), as<float>()); break;
      case DType::Float64: cuda::fill<double>(int64_t(count_), value, as<double>()); break;
      default: cuda::fill<int32_t>(int64_t(count_), int32_t(value), as<int32_t>());
    }
#endif
    return;
  }
  switch (dtype_) {
    case DType::Float32: cpu::fill<float>(int64_t(count_), float(value), as<float>()); break;
    case DType::Float64: cpu::fill<double>(int64_t(count_), value, as<double>()); break;
    default: for (size_t i = 0; i < count_; ++i) as<int32_t>()[i] = int32_t(value);
  }
}

// copyFrom(other): same element count, any devices; converts between float32 and float64.
void Storage::CopyFrom(const Napi::CallbackInfo& info) {
  asJsError(info.Env(), [&] { CopyFromChecked(info); });
}

// Host memory holding `count` values of `dtype` converted from `source` (host memory of sourceType).
static std::vector<unsigned char> convertedOnHost(const void* source, DType sourceType, DType dtype, size_t count) {
  std::vector<unsigned char> out(count * dtypeSize(dtype));
  float* toFloat = dtype == DType::Float32 ? reinterpret_cast<float*>(out.data()) : nullptr;
  double* toDouble = dtype == DType::Float64 ? reinterpret_cast<double*>(out.data()) : nullptr;
  if (sourceType == DType::Float32) cpu::convert<float>(int64_t(count), static_cast<const float*>(source), toFloat, toDouble);
  else cpu::convert<double>(int64_t(count), static_cast<const double*>(source), toFloat, toDouble);
  return out;
}

void Storage::CopyFromChecked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  Storage* src = storageArg(info, 0, "source");
  if (src->count() != count_) throw Napi::RangeError::New(env, "copyFrom: element counts differ");
  if (src == this || count_ == 0) return;
  const bool sameType = src->dtype() == dtype_;
  if (!sameType && (dtype_ == DType::Int32 || src->dtype() == DType::Int32))
    throw Napi::TypeError::New(env, "copyFrom: cannot convert int32 storage");
  const size_t size = bytes();
  if (src->device() < 0 && device_ < 0) {
    if (sameType) {
      std::memcpy(data_, src->raw(), size);
      return;
    }
    float* toFloat = dtype_ == DType::Float32 ? as<float>() : nullptr;
    double* toDouble = dtype_ == DType::Float64 ? as<double>() : nullptr;
    if (src->dtype() == DType::Float32) cpu::convert<float>(int64_t(count_), src->as<float>(), toFloat, toDouble);
    else cpu::convert<double>(int64_t(count_), src->as<double>(), toFloat, toDouble);
    return;
  }
#if defined(IKUN_WITH_CUDA)
  if (src->device() == device_) {  // on one CUDA device
    cuda::DeviceGuard guard(device_);
    if (sameType) return cuda::copyDeviceToDevice(device_, data_, src->raw(), size);
    float* toFloat = dtype_ == DType::Float32 ? as<float>() : nullptr;
    double* toDouble = dtype_ == DType::Float64 ? as<double>() : nullptr;
    if (src->dtype() == DType::Float32) cuda::convert<float>(int64_t(count_), src->as<float>(), toFloat, toDouble);
    else cuda::convert<double>(int64_t(count_), src->as<double>(), toFloat, toDouble);
    return;
  }
  if (src->device() < 0) {  // host to device
    if (sameType) return cuda::copyHostToDevice(device_, data_, src->raw(), size);
    const auto converted = convertedOnHost(src->raw(), src->dtype(), dtype_, count_);
    return cuda::copyHostToDevice(device_, data_, converted.data(), size);
  }
  if (device_ < 0) {  // device to host
    if (sameType) return cuda::copyDeviceToHost(src->device(), data_, src->raw(), size);
    std::vector<unsigned char> staged(src->bytes());
    cuda::copyDeviceToHost(src->device(), staged.data(), src->raw(), staged.size());
    const auto converted = convertedOnHost(staged.data(), src->dtype(), dtype_, count_);
    std::memcpy(data_, converted.data(), size);
    return;
  }
  // between two CUDA devices
  if (sameType) return cuda::copyBetweenDevices(device_, data_, src->device(), src->raw(), size);
  std::vector<unsigned char> staged(src->bytes());
  cuda::copyDeviceToHost(src->device(), staged.data(), src->raw(), staged.size());
  const auto converted = convertedOnHost(staged.data(), src->dtype(), dtype_, count_);
  cuda::copyHostToDevice(device_, data_, converted.data(), size);
#else
  throw Napi::Error::New(env, "copyFrom: this build of ikun has no CUDA support");
#endif
}

void Storage::Dispose(const Napi::CallbackInfo&) {
  disposed_ = true;
  release();
}
Napi::Value Storage::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }
Napi::Value Storage::ByteLength(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes())); }
Napi::Value Storage::DeviceIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }

void registerStorage(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = Storage::Define(env);
  data->storageConstructor = Napi::Persistent(ctor);
  exports.Set("Storage", ctor);
}

}  // namespace ikun::napi
