#include "storage.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "../cpu/host_allocator.h"
#include "../cpu/kernels.h"
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
                     });
}

// new Storage(dtypeCode, count, zeroFill)
Storage::Storage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Storage>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean())
    throw Napi::TypeError::New(env, "Storage(dtype: number, count: number, zero: boolean)");
  int code = info[0].As<Napi::Number>().Int32Value();
  if (code < 0 || code > 2) throw Napi::RangeError::New(env, "Storage: unknown dtype code " + std::to_string(code));
  dtype_ = static_cast<DType>(code);
  double count = info[1].As<Napi::Number>().DoubleValue();
  if (!(count >= 0) || count > 9.0e15 || count != static_cast<double>(static_cast<int64_t>(count)))
    throw Napi::RangeError::New(env, "Storage: count must be a non-negative integer");
  count_ = static_cast<size_t>(count);
  size_t bytes = count_ * dtypeSize(dtype_);
  if (bytes == 0) return;
  data_ = cpu::hostAllocate(bytes);
  if (!data_)
    throw Napi::RangeError::New(env, "out of host memory: could not allocate " + std::to_string(bytes) +
                                         " bytes for a tensor; use a smaller batch or model");
  if (info[2].As<Napi::Boolean>().Value()) std::memset(data_, 0, bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
}

Storage::~Storage() { release(); }

void Storage::release() {
  if (!data_) return;
  cpu::hostFree(data_, count_ * dtypeSize(dtype_));
  data_ = nullptr;
  // The C call, not Napi::MemoryManagement: this also runs from the garbage collector's finalizer while
  // an environment (a worker thread, a process) shuts down, where the call can fail, and the C++ wrapper
  // would then throw out of a destructor and abort the process. The count only guides V8's GC pacing.
  if (env_) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env_, -static_cast<int64_t>(count_ * dtypeSize(dtype_)), &ignored);
  }
}

static void requireAlive(Napi::Env env, const Storage* s) {
  if (s->disposed()) throw Napi::Error::New(env, "tensor has been disposed; it can no longer be used");
}

Napi::Value Storage::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  size_t bytes = count_ * dtypeSize(dtype_);
  auto buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buffer.Data(), data_, bytes);
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
  auto bytes = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  if (count_) std::memcpy(data_, bytes, count_ * dtypeSize(dtype_));
}

// Fill and CopyFrom run the thread pool, which may throw (e.g. std::system_error); as JS errors please.
template <class Fn>
static void asJsError(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("native op failed: ") + e.what());
  }
}

void Storage::Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  asJsError(env, [&] { FillChecked(info); });
}

void Storage::FillChecked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  double value = numberArg(info, 0, "value");
  switch (dtype_) {
    case DType::Float32: cpu::fill<float>(int64_t(count_), float(value), as<float>()); break;
    case DType::Float64: cpu::fill<double>(int64_t(count_), value, as<double>()); break;
    default: for (size_t i = 0; i < count_; ++i) as<int32_t>()[i] = int32_t(value);
  }
}

// copyFrom(other): same element count; converts between float32 and float64.
void Storage::CopyFrom(const Napi::CallbackInfo& info) {
  asJsError(info.Env(), [&] { CopyFromChecked(info); });
}

void Storage::CopyFromChecked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireAlive(env, this);
  Storage* src = storageArg(info, 0, "source");
  if (src->count() != count_) throw Napi::RangeError::New(env, "copyFrom: element counts differ");
  if (src == this) return;
  if (src->dtype() == dtype_) {
    std::memcpy(data_, src->raw(), count_ * dtypeSize(dtype_));
    return;
  }
  if (dtype_ == DType::Int32 || src->dtype() == DType::Int32) throw Napi::TypeError::New(env, "copyFrom: cannot convert int32 storage");
  float* toFloat = dtype_ == DType::Float32 ? as<float>() : nullptr;
  double* toDouble = dtype_ == DType::Float64 ? as<double>() : nullptr;
  if (src->dtype() == DType::Float32) cpu::convert<float>(int64_t(count_), src->as<float>(), toFloat, toDouble);
  else cpu::convert<double>(int64_t(count_), src->as<double>(), toFloat, toDouble);
}

void Storage::Dispose(const Napi::CallbackInfo&) {
  disposed_ = true;
  release();
}
Napi::Value Storage::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }
Napi::Value Storage::ByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(count_ * dtypeSize(dtype_)));
}

void registerStorage(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = Storage::Define(env);
  data->storageConstructor = Napi::Persistent(ctor);
  exports.Set("Storage", ctor);
}

}  // namespace ikun::napi
