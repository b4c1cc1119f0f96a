// The CUDA runtime as the rest of ikun sees it (plain C++, no CUDA types): devices, the caching device
// allocator, copies between host and device memory, and the device kernels launch on. Implemented in
// runtime.cu (nvcc, or the emulated build); a build without CUDA links runtime_stub.cpp instead, where
// deviceCount() is 0 and everything else throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ikun::cuda {

struct DeviceInfo {
  std::string name;
  size_t totalMemory = 0;
  int major = 0, minor = 0, multiprocessors = 0;
};

struct MemoryStats {
  size_t allocated = 0;      // bytes in blocks held by live tensors (block sizes, after rounding)
  size_t reserved = 0;       // allocated plus blocks cached for reuse
  size_t peakAllocated = 0;  // the most `allocated` has been since the process started or resetPeakMemory
};

// What the host asked of a device since the process started, for checking that a training step queues its
// work and returns: kernels launched, memsets and device-to-device copies queued, copies each way, the
// times the host waited for the device (a read, synchronize(), a staging buffer still in use) and the
// cudaMalloc calls of the caching allocator (a step that reuses cached blocks makes none).
struct RuntimeCounters {
  int64_t kernelLaunches = 0, memoryOps = 0, hostToDeviceCopies = 0, deviceToHostCopies = 0, hostWaits = 0,
          deviceAllocations = 0;
};
RuntimeCounters runtimeCounters(int device);
// Counts a kernel launch on the thread's current device (launch.cuh); nothing without one.
void countKernelLaunch() noexcept;

// Thrown when the device cannot provide memory even after the cache was emptied; the message says how much
// was asked, how much is in use and what to do.
class OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Devices ikun can use; 0 when the build has no CUDA, no driver or no GPU is present. Never throws.
int deviceCount();
DeviceInfo deviceInfo(int device);
// True in the emulated test build, where device 0 is the host-thread emulation of a GPU.
bool emulated();

// The caching allocator: freed blocks are kept per device and handed out again (the stream order of the
// device's one stream makes reuse safe without waiting); when the device runs out, the cache is freed and
// the allocation retried once before OutOfMemoryError is thrown. Blocks are 256-byte aligned.
void* allocate(int device, size_t bytes);
void release(int device, void* block) noexcept;
MemoryStats memoryStats(int device);
void resetPeakMemory(int device);
void emptyCache(int device);

// Copies, in the order of the device's stream. copyHostToDevice returns at once (the data goes through
// pinned staging memory, so src may be reused at once); copyDeviceToHost waits for the stream.
void copyHostToDevice(int device, void* dst, const void* src, size_t bytes);
void copyDeviceToHost(int device, void* dst, const void* src, size_t bytes);
void copyDeviceToDevice(int device, void* dst, const void* src, size_t bytes);
void copyBetweenDevices(int dstDevice, void* dst, int srcDevice, const void* src, size_t bytes);
void fillBytes(int device, void* dst, int value, size_t bytes);
// Waits until all work queued on the device has finished (and reports an asynchronous kernel error).
void synchronize(int device);

// Makes `device` current on this thread for the guard's lifetime: kernels launch on its stream.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

// The device current on this thread (set by DeviceGuard).
int currentDevice();

// Device memory owned for one scope (an op's temporary buffer): back to the cache at the end of the scope,
// which is safe although queued kernels may still use it (the next user queues behind them).
class DeviceBlock {
 public:
  DeviceBlock(int device, size_t bytes) : device_(device), data_(allocate(device, bytes)) {}
  ~DeviceBlock() { release(device_, data_); }
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  void* get() const { return data_; }
  template <class T> T* as() const { return static_cast<T*>(data_); }

 private:
  int device_;
  void* data_;
};

// Per-op timing with CUDA events for bench:gpu: while on, every op a binding queues on a device is bracketed
// by two events on its stream (no waiting); takeOpProfile waits for the device, then returns the time of
// each op name summed over its calls, in order of first appearance, and forgets them.
void setOpProfiling(bool enabled);
struct OpTime {
  std::string op;
  double milliseconds;
  int64_t calls;
};
std::vector<OpTime> takeOpProfile(int device);

class OpTimer {
 public:
  OpTimer(int device, const char* op);
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  int device_;
  int index_ = -1;  // the record in the device's profile, -1 when profiling is off
};

}  // namespace ikun::cuda
