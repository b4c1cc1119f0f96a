// Linked instead of runtime.cu when the addon is built without CUDA: no device is usable.
#include "kernels.h"
#include "precision.h"
#include "runtime.h"

namespace ikun::cuda {
namespace {
[[noreturn]] void noCuda() {
  throw std::runtime_error("this build of ikun has no CUDA support (it was built without nvcc); use device 'cpu'");
}
}  // namespace

int deviceCount() { return 0; }
bool emulated() { return false; }
DeviceInfo deviceInfo(int) { noCuda(); }
void* allocate(int, size_t) { noCuda(); }
void release(int, void*) noexcept {}
MemoryStats memoryStats(int) { noCuda(); }
RuntimeCounters runtimeCounters(int) { noCuda(); }
void countKernelLaunch() noexcept {}
void resetPeakMemory(int) { noCuda(); }
void emptyCache(int) { noCuda(); }
void copyHostToDevice(int, void*, const void*, size_t) { noCuda(); }
void copyDeviceToHost(int, void*, const void*, size_t) { noCuda(); }
void copyDeviceToDevice(int, void*, const void*, size_t) { noCuda(); }
void copyBetweenDevices(int, void*, int, const void*, size_t) { noCuda(); }
void fillBytes(int, void*, int, size_t) { noCuda(); }
void synchronize(int) { noCuda(); }
DeviceGuard::DeviceGuard(int) : previous_(-1) { noCuda(); }
DeviceGuard::~DeviceGuard() {}
int currentDevice() { noCuda(); }
MmaLayoutErrors mmaLayoutCheck() { noCuda(); }
void setOpProfiling(bool) {}
std::vector<OpTime> takeOpProfile(int) { noCuda(); }
OpTimer::OpTimer(int device, const char*) : device_(device) {}
OpTimer::~OpTimer() {}
CudaPrecision cudaPrecision() { return CudaPrecision::Tf32; }
void setCudaPrecision(CudaPrecision) {}

}  // namespace ikun::cuda
