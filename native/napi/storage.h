// Storage: a block of native memory on the CPU or a CUDA device, owned by a JS object. Freed by dispose(),
// by the sweep of collected storages (below) or by the object's finalizer (blocks go back to the caching
// allocators); V8 is told of the memory as external memory (a host block's size, a CUDA block's growth of
// the allocator's reserved memory: reportDeviceReservedChange), so that the garbage collector runs when
// tensors hold much memory.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ikun::napi {

class Storage;

// The storages of one environment that still hold memory. Node-API runs the finalizer of a collected
// object only from the event loop (a SetImmediate after the garbage collection), so a training loop that
// never yields would keep the memory of every tensor it dropped without dispose(), however often the
// collector runs. The weak reference of a collected object is cleared by the collection itself, though:
// the sweep finds those storages and gives their memory back at once; the finalizer later finds nothing
// left to free. Shared by the storages, so that it outlives the environment's teardown order.
struct LiveStorages {
  std::vector<Storage*> list;
  size_t allocatedSinceSweep = 0;
  int64_t reportedDeviceBytes = 0;  // CUDA memory reported to V8 as external memory (see reportDeviceReservedChange)
};

// V8 learns of native memory as "external memory" and runs a full garbage collection when it grows by more
// than some 64 MB over what was there after the last one. Host tensors report their bytes. CUDA tensors
// report how much their allocation grew the caching allocator's reserved memory (its cudaMalloc calls), not
// their own bytes: a training step allocates and disposes hundreds of MB of activations that the cache
// serves again every step, and counting those made V8 collect about once per step (427 full collections in
// three epochs of the paper's configuration, over half the host's time). Reserved memory grows only while the
// cache cannot serve, which is exactly when dropped-but-uncollected tensors would need a collection to free
// them. `change` may be negative (emptyCache, or the allocator emptying its cache on out-of-memory); what
// is taken back is at most what this environment reported.
void reportDeviceReservedChange(napi_env env, LiveStorages& live, int64_t change);

enum class DType : int { Float32 = 0, Float64 = 1, Int32 = 2 };

size_t dtypeSize(DType dtype);
const char* dtypeName(DType dtype);
// "cpu" for -1, "cuda:N" for device N.
std::string deviceName(int device);

class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Storage(const Napi::CallbackInfo& info);
  // A new storage of `count` elements on `device`, not zeroed, made as `new Storage(...)` in JS would make
  // it: for an op whose output's length only the native side knows.
  static Napi::Object Create(Napi::Env env, DType dtype, int64_t count, int device);
  ~Storage() override;

  DType dtype() const { return dtype_; }
  size_t count() const { return count_; }
  size_t bytes() const { return count_ * dtypeSize(dtype_); }
  int device() const { return device_; }  // -1: CPU, n >= 0: CUDA device n
  bool disposed() const { return disposed_; }
  template <class T> T* as() const { return static_cast<T*>(data_); }
  void* raw() const { return data_; }
  // Frees the memory of the storages in `live` whose JS object has been collected.
  static void sweepCollected(napi_env env, LiveStorages& live);

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  void Write(const Napi::CallbackInfo& info);
  void Fill(const Napi::CallbackInfo& info);
  void CopyFrom(const Napi::CallbackInfo& info);
  void FillChecked(const Napi::CallbackInfo& info);
  void CopyFromChecked(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value ByteLength(const Napi::CallbackInfo& info);
  Napi::Value DeviceIndex(const Napi::CallbackInfo& info);
  void release();

  void* data_ = nullptr;
  std::shared_ptr<LiveStorages> live_;
  size_t liveIndex_ = 0;  // position in live_->list while data_ is set
  size_t count_ = 0;
  DType dtype_ = DType::Float32;
  int device_ = -1;
  napi_env env_ = nullptr;
  bool disposed_ = false;
};

}  // namespace ikun::napi
