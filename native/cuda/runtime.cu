// Devices, streams, the caching device allocator and host/device copies (runtime.h).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "device.cuh"
#include "errors.h"
#include "precision.h"
#include "runtime.h"
#include "stream.cuh"

#if defined(IKUN_CUDA_EMULATED) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace ikun::cuda {
namespace {

// The emulated device's sanitizer programs (native/tests): its device memory is host memory under
// AddressSanitizer, which would miss a kernel reading past a tensor's end into the block's rounding, or a
// released tensor that waits in the cache. So there, the bytes of a block past those asked for, and a whole
// block while cached, are poisoned. Nothing in any other build.
#if defined(IKUN_CUDA_EMULATED) && defined(__SANITIZE_ADDRESS__)
void poisonUnused(void* block, size_t bytes, size_t blockSize) {
  ASAN_UNPOISON_MEMORY_REGION(block, bytes);
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(block) + bytes, blockSize - bytes);
}
void unpoison(void* block, size_t blockSize) { ASAN_UNPOISON_MEMORY_REGION(block, blockSize); }
#else
void poisonUnused(void*, size_t, size_t) {}
void unpoison(void*, size_t) {}
#endif

std::string formatBytes(double bytes) {
  char text[64];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(text, sizeof text, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024) std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1024.0 * 1024));
  else if (bytes >= 1024.0) std::snprintf(text, sizeof text, "%.1f KiB", bytes / 1024.0);
  else std::snprintf(text, sizeof text, "%.0f bytes", bytes);
  return text;
}

// Sizes are rounded so that blocks of similar tensors can be reused for each other: to 512 bytes below
// 1 MiB, to 64 KiB below 64 MiB, to 2 MiB above.
size_t roundedSize(size_t bytes) {
  const size_t unit = bytes < (size_t(1) << 20) ? 512 : bytes < (size_t(64) << 20) ? (size_t(64) << 10) : (size_t(2) << 20);
  return (bytes + unit - 1) / unit * unit;
}

// A cached block serves a request when it wastes at most a quarter of it.
bool reusable(size_t block, size_t wanted) { return block <= wanted + wanted / 4 + 512; }

// Pinned host buffers through which small host-to-device copies go, so that the copy is asynchronous and
// the caller's memory can be reused at once. A buffer is reused once its last copy has completed.
struct StagingBuffer {
  void* data = nullptr;
  size_t size = 0;
  cudaEvent_t done = nullptr;
};
constexpr size_t kStagingLimit = size_t(256) << 20;  // pinned bytes per device at most
constexpr size_t kLargestStaged = size_t(32) << 20;  // larger copies go straight from pageable memory

struct OpRecord {
  const char* op;
  cudaEvent_t start, end;
};

struct DeviceState {
  std::vector<OpRecord> profile;  // with mutex held
  std::once_flag started;
  cudaStream_t stream = nullptr;
  std::mutex mutex;
  std::multimap<size_t, void*> cached;        // block size -> block
  std::unordered_map<void*, size_t> live;     // block -> block size
  size_t allocated = 0, cachedBytes = 0, peak = 0;
  std::vector<StagingBuffer> staging;
  size_t stagingBytes = 0;
  // RuntimeCounters, relaxed atomics: kernels launch from any thread with the device current
  std::atomic<int64_t> kernelLaunches{0}, memoryOps{0}, hostToDeviceCopies{0}, deviceToHostCopies{0}, hostWaits{0},
      deviceAllocations{0};
};

void count(std::atomic<int64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

int countDevices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error: no driver or no device is not a failure of ikun
    return 0;
  }
  return count;
}

// Never destroyed: finalizers of tensors may release memory while the process exits, after static
// destructors would have run; the driver reclaims everything at exit.
std::vector<DeviceState*>& states() {
  static auto* all = [] {
    auto* v = new std::vector<DeviceState*>();
    for (int i = 0, n = countDevices(); i < n; ++i) v->push_back(new DeviceState());
    return v;
  }();
  return *all;
}

thread_local int currentOnThread = -1;

DeviceState& state(int device) {
  auto& all = states();
  if (device < 0 || device >= int(all.size()))
    throw std::out_of_range("cuda:" + std::to_string(device) + " does not exist (" + std::to_string(all.size()) +
                            " CUDA device(s) visible)");
  DeviceState& s = *all[size_t(device)];
  std::call_once(s.started, [&] {
    check(cudaSetDevice(device), "cudaSetDevice");
    currentOnThread = device;
    check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  });
  return s;
}

void makeCurrent(int device) {
  if (currentOnThread == device) return;
  state(device);
  check(cudaSetDevice(device), "cudaSetDevice");
  currentOnThread = device;
}

// With s.mutex held.
void freeCached(int device, DeviceState& s) {
  makeCurrent(device);
  for (auto& [size, block] : s.cached) {
    unpoison(block, size);
    cudaFree(block);  // cudaFree waits for the device first
  }
  s.cached.clear();
  s.cachedBytes = 0;
}

std::string outOfMemoryMessage(int device, DeviceState& s, size_t wanted) {
  size_t freeBytes = 0, totalBytes = 0;
  cudaMemGetInfo(&freeBytes, &totalBytes);
  cudaGetLastError();
  return "CUDA out of memory on cuda:" + std::to_string(device) + ": could not allocate " + formatBytes(double(wanted)) +
         "; ikun's tensors hold " + formatBytes(double(s.allocated)) + " on this device (its cache was emptied and the " +
         "allocation retried), and the device has " + formatBytes(double(freeBytes)) + " free of " +
         formatBytes(double(totalBytes)) + ". Free tensors you no longer need (tensor.dispose()), use a smaller batch or " +
         "model, or use another device.";
}

}  // namespace

int deviceCount() { return int(states().size()); }

bool emulated() {
#if defined(IKUN_CUDA_EMULATED)
  return true;
#else
  return false;
#endif
}

DeviceInfo deviceInfo(int device) {
  state(device);
  cudaDeviceProp props{};
  check(cudaGetDeviceProperties(&props, device), "cudaGetDeviceProperties");
  DeviceInfo info;
  info.name = props.name;
  info.totalMemory = props.totalGlobalMem;
  info.major = props.major;
  info.minor = props.minor;
  info.multiprocessors = props.multiProcessorCount;
  return info;
}

void* allocate(int device, size_t bytes) {
  if (bytes == 0) return nullptr;
  DeviceState& s = state(device);
  const size_t size = roundedSize(bytes);
  std::lock_guard<std::mutex> lock(s.mutex);
  void* block = nullptr;
  size_t blockSize = size;
  auto it = s.cached.lower_bound(size);
  if (it != s.cached.end() && reusable(it->first, size)) {
    block = it->second;
    blockSize = it->first;
    s.cached.erase(it);
    s.cachedBytes -= blockSize;
  } else {
    makeCurrent(device);
    cudaError_t status = cudaMalloc(&block, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      freeCached(device, s);
      status = cudaMalloc(&block, size);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw OutOfMemoryError(outOfMemoryMessage(device, s, bytes));
    }
    check(status, "cudaMalloc");
    count(s.deviceAllocations);
  }
  poisonUnused(block, bytes, blockSize);
  s.live.emplace(block, blockSize);
  s.allocated += blockSize;
  s.peak = std::max(s.peak, s.allocated);
  return block;
}

void release(int device, void* block) noexcept {
  if (!block) return;
  auto& all = states();
  if (device < 0 || device >= int(all.size())) return;
  DeviceState& s = *all[size_t(device)];
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.live.find(block);
  if (it == s.live.end()) return;
  s.allocated -= it->second;
  s.cachedBytes += it->second;
  poisonUnused(block, 0, it->second);
  s.cached.emplace(it->second, block);
  s.live.erase(it);
}

MemoryStats memoryStats(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  return MemoryStats{s.allocated, s.allocated + s.cachedBytes, s.peak};
}

RuntimeCounters runtimeCounters(int device) {
  const DeviceState& s = state(device);
  auto read = [](const std::atomic<int64_t>& c) { return c.load(std::memory_order_relaxed); };
  return RuntimeCounters{read(s.kernelLaunches), read(s.memoryOps), read(s.hostToDeviceCopies), read(s.deviceToHostCopies),
                         read(s.hostWaits), read(s.deviceAllocations)};
}

void resetPeakMemory(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.peak = s.allocated;
}

void emptyCache(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  freeCached(device, s);
  std::vector<StagingBuffer> busy;
  for (StagingBuffer& b : s.staging) {
    if (cudaEventQuery(b.done) == cudaSuccess) {
      cudaFreeHost(b.data);
      cudaEventDestroy(b.done);
      s.stagingBytes -= b.size;
    } else {
      busy.push_back(b);
    }
  }
  cudaGetLastError();
  s.staging = busy;
}

void copyHostToDevice(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  DeviceState& s = state(device);
  makeCurrent(device);
  count(s.hostToDeviceCopies);
  if (bytes > kLargestStaged) {
    // From pageable memory the runtime copies into its own staging before it returns.
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s.stream), "cudaMemcpyAsync (host to device)");
    return;
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  StagingBuffer* slot = nullptr;
  for (StagingBuffer& b : s.staging)
    if (b.size >= bytes && cudaEventQuery(b.done) == cudaSuccess && (!slot || b.size < slot->size)) slot = &b;
  cudaGetLastError();  // a query of a pending event leaves cudaErrorNotReady behind
  if (!slot && s.stagingBytes + bytes <= kStagingLimit) {
    StagingBuffer b;
    b.size = std::max(bytes, size_t(1) << 16);
    check(cudaMallocHost(&b.data, b.size), "cudaMallocHost (staging)");
    check(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming), "cudaEventCreate");
    s.stagingBytes += b.size;
    s.staging.push_back(b);
    slot = &s.staging.back();
  }
  if (!slot) {
    for (StagingBuffer& b : s.staging)
      if (b.size >= bytes) {
        count(s.hostWaits);
        check(cudaEventSynchronize(b.done), "cudaEventSynchronize (staging)");
        slot = &b;
        break;
      }
  }
  if (!slot) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s.stream), "cudaMemcpyAsync (host to device)");
    return;
  }
  std::memcpy(slot->data, src, bytes);
  check(cudaMemcpyAsync(dst, slot->data, bytes, cudaMemcpyHostToDevice, s.stream), "cudaMemcpyAsync (host to device)");
  check(cudaEventRecord(slot->done, s.stream), "cudaEventRecord (staging)");
}

void copyDeviceToHost(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  DeviceState& s = state(device);
  makeCurrent(device);
  count(s.deviceToHostCopies);
  count(s.hostWaits);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s.stream), "cudaMemcpyAsync (device to host)");
  check(cudaStreamSynchronize(s.stream), "reading a CUDA tensor (cudaStreamSynchronize)");
}

void copyDeviceToDevice(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  DeviceState& s = state(device);
  makeCurrent(device);
  count(s.memoryOps);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s.stream), "cudaMemcpyAsync (device to device)");
}

void copyBetweenDevices(int dstDevice, void* dst, int srcDevice, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (dstDevice == srcDevice) return copyDeviceToDevice(dstDevice, dst, src, bytes);
  // Through the host: correct on every system (no peer access needed); this is not a hot path.
  std::vector<unsigned char> host(bytes);
  copyDeviceToHost(srcDevice, host.data(), src, bytes);
  copyHostToDevice(dstDevice, dst, host.data(), bytes);
  synchronize(dstDevice);
}

void fillBytes(int device, void* dst, int value, size_t bytes) {
  if (bytes == 0) return;
  DeviceState& s = state(device);
  makeCurrent(device);
  count(s.memoryOps);
  check(cudaMemsetAsync(dst, value, bytes, s.stream), "cudaMemsetAsync");
}

void synchronize(int device) {
  DeviceState& s = state(device);
  makeCurrent(device);
  count(s.hostWaits);
  check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize (a kernel queued earlier may have failed)");
}

DeviceGuard::DeviceGuard(int device) : previous_(currentOnThread) { makeCurrent(device); }
DeviceGuard::~DeviceGuard() {}

int currentDevice() {
  if (currentOnThread < 0) throw std::logic_error("ikun: a CUDA kernel was launched without a current device");
  return currentOnThread;
}

cudaStream_t currentStream() { return state(currentDevice()).stream; }

void countKernelLaunch() noexcept {
  const int device = currentOnThread;
  auto& all = states();
  if (device >= 0 && device < int(all.size())) count(all[size_t(device)]->kernelLaunches);
}

namespace {
std::atomic<int> precisionSetting{int(CudaPrecision::Tf32)};
}  // namespace

namespace {
std::atomic<bool> profiling{false};
}  // namespace

void setOpProfiling(bool enabled) { profiling.store(enabled); }

OpTimer::OpTimer(int device, const char* op) : device_(device) {
  if (!profiling.load(std::memory_order_relaxed)) return;
  DeviceState& s = state(device);
  OpRecord r{op, nullptr, nullptr};
  check(cudaEventCreate(&r.start), "cudaEventCreate (profile)");
  check(cudaEventCreate(&r.end), "cudaEventCreate (profile)");
  check(cudaEventRecord(r.start, s.stream), "cudaEventRecord (profile)");
  std::lock_guard<std::mutex> lock(s.mutex);
  index_ = int(s.profile.size());
  s.profile.push_back(r);
}

OpTimer::~OpTimer() {
  if (index_ < 0) return;
  DeviceState& s = state(device_);
  std::lock_guard<std::mutex> lock(s.mutex);
  cudaEventRecord(s.profile[size_t(index_)].end, s.stream);
}

std::vector<OpTime> takeOpProfile(int device) {
  DeviceState& s = state(device);
  synchronize(device);
  std::vector<OpRecord> records;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    records.swap(s.profile);
  }
  std::vector<OpTime> times;
  for (const OpRecord& r : records) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, r.start, r.end), "cudaEventElapsedTime (profile)");
    cudaEventDestroy(r.start);
    cudaEventDestroy(r.end);
    auto it = std::find_if(times.begin(), times.end(), [&](const OpTime& t) { return t.op == r.op; });
    if (it == times.end()) times.push_back(OpTime{r.op, double(ms), 1});
    else it->milliseconds += double(ms), it->calls += 1;
  }
  return times;
}

CudaPrecision cudaPrecision() { return CudaPrecision(precisionSetting.load(std::memory_order_relaxed)); }
void setCudaPrecision(CudaPrecision precision) { precisionSetting.store(int(precision), std::memory_order_relaxed); }

}  // namespace ikun::cuda
