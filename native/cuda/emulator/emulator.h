// The emulated CUDA device: what device.cuh includes instead of <cuda_runtime.h> when IKUN_CUDA_EMULATED is
// defined, so that the project's .cu files compile with the host C++ compiler and run on the CPU (and under
// ThreadSanitizer and AddressSanitizer). Not a product: the emulated addon and the sanitizer test programs
// are built for tests only (npm run build:emulated) and never shipped.
//
// Model: blocks run one after another; every CUDA thread of a block runs as a fiber on the launching host
// thread (the serial schedules, the default) or as its own host thread from a persistent pool (the concurrent
// schedule, for ThreadSanitizer); __syncthreads() is a barrier over the block's non-exited threads; warp
// collectives (shuffles, votes, __syncwarp) are a barrier over the 32 lanes of a warp and exist for the full
// mask only. Anything that cannot be emulated faithfully (a partial mask, a collective in a partial warp,
// a divergent barrier, a deadlock) is a hard error: a message naming the kernel, block, thread and call site
// on stderr, then abort(). Runtime API calls run synchronously and return CUDA's error codes.
//
// Only the templates and the inline pieces a kernel needs are here; the rest is in emulator.cpp.
#pragma once

// Standard headers first: libstdc++ spells __attribute__((__noinline__)) in <memory>, which the
// __noinline__ keyword macro below would break if <memory> were first included after it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <math.h>  // the float overloads of sqrt, exp, ... in the global namespace, as device code calls them
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------------------------------------------------
// Keywords. Kernels are ordinary functions; device and constant globals are ordinary globals.
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is already a GCC keyword. __shared__ is deliberately unusable: a host static would be one
// array for the whole grid; kernels declare shared memory with IKUN_SHARED_ARRAY (device.cuh).
#define __shared__ static_assert(false, "__shared__ cannot be emulated: use IKUN_SHARED_ARRAY / IKUN_SHARED_ARRAY2 (device.cuh)");

// ---------------------------------------------------------------------------------------------------------
// Vector types (CUDA's alignments: 2-vectors of 2*sizeof(T), 4-vectors of 4*sizeof(T) up to 16 bytes).
struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define IKUN_EMU_VECTOR_TYPES(T, name, a2, a4)                                                          \
  struct __attribute__((aligned(sizeof(T)))) name##1 { T x; };                                          \
  struct __attribute__((aligned(a2))) name##2 { T x, y; };                                              \
  struct name##3 { T x, y, z; };                                                                        \
  struct __attribute__((aligned(a4))) name##4 { T x, y, z, w; };                                        \
  inline name##1 make_##name##1(T x) { return name##1{x}; }                                             \
  inline name##2 make_##name##2(T x, T y) { return name##2{x, y}; }                                     \
  inline name##3 make_##name##3(T x, T y, T z) { return name##3{x, y, z}; }                             \
  inline name##4 make_##name##4(T x, T y, T z, T w) { return name##4{x, y, z, w}; }
IKUN_EMU_VECTOR_TYPES(signed char, char, 2, 4)
IKUN_EMU_VECTOR_TYPES(unsigned char, uchar, 2, 4)
IKUN_EMU_VECTOR_TYPES(short, short, 4, 8)
IKUN_EMU_VECTOR_TYPES(unsigned short, ushort, 4, 8)
IKUN_EMU_VECTOR_TYPES(int, int, 8, 16)
IKUN_EMU_VECTOR_TYPES(float, float, 8, 16)
IKUN_EMU_VECTOR_TYPES(long long, longlong, 16, 16)
IKUN_EMU_VECTOR_TYPES(unsigned long long, ulonglong, 16, 16)
IKUN_EMU_VECTOR_TYPES(double, double, 16, 16)
#undef IKUN_EMU_VECTOR_TYPES
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }

// ---------------------------------------------------------------------------------------------------------
// Runtime types and constants (CUDA's names and numeric values).
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorCudartUnloading = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorHostMemoryAlreadyRegistered = 712,
  cudaErrorHostMemoryNotRegistered = 713,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrTotalConstantMemory = 9,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMaxRegistersPerBlock = 12,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrIntegrated = 18,
  cudaDevAttrCanMapHostMemory = 19,
  cudaDevAttrConcurrentKernels = 31,
  cudaDevAttrGlobalMemoryBusWidth = 37,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrAsyncEngineCount = 40,
  cudaDevAttrUnifiedAddressing = 41,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxRegistersPerMultiprocessor = 82,
  cudaDevAttrManagedMemory = 83,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMaxBlocksPerMultiprocessor = 106,
  cudaDevAttrReservedSharedMemoryPerBlock = 111,
  cudaDevAttrMemoryPoolsSupported = 115,
};

struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;

#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaEventInterprocess 0x04
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
#define cudaHostAllocWriteCombined 0x04
#define cudaHostRegisterDefault 0x00
#define cudaHostRegisterPortable 0x01
#define cudaHostRegisterMapped 0x02
#define cudaHostRegisterIoMemory 0x04
#define cudaHostRegisterReadOnly 0x08
#define CUDART_VERSION 13000

// The fields of CUDA's cudaDeviceProp that describe this device (same names; the rest of CUDA's struct is
// left out, so code reading a field the emulator does not describe fails to compile instead of reading 0).
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  int multiProcessorCount;
  int integrated;
  int canMapHostMemory;
  int concurrentKernels;
  int ECCEnabled;
  int pciBusID;
  int pciDeviceID;
  int pciDomainID;
  int asyncEngineCount;
  int unifiedAddressing;
  int memoryBusWidth;
  int l2CacheSize;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  int managedMemory;
  int cooperativeLaunch;
  size_t sharedMemPerBlockOptin;
  int maxBlocksPerMultiProcessor;
  size_t reservedSharedMemPerBlock;
  int hostRegisterSupported;
  int memoryPoolsSupported;
};

struct cudaFuncAttributes {
  size_t sharedSizeBytes;
  size_t constSizeBytes;
  size_t localSizeBytes;
  int maxThreadsPerBlock;
  int numRegs;
  int ptxVersion;
  int binaryVersion;
  int cacheModeCA;
  int maxDynamicSharedSizeBytes;
  int preferredShmemCarveout;
};

struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

// ---------------------------------------------------------------------------------------------------------
// Runtime API (emulator.cpp). Everything is synchronous; every call validates its arguments as CUDA does
// and records a failure as the calling host thread's last error.
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMalloc(void** devPtr, size_t size);
cudaError_t cudaFree(void* devPtr);
cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaHostRegister(void* ptr, size_t size, unsigned int flags);
cudaError_t cudaHostUnregister(void* ptr);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemcpyPeerAsync(void* dst, int dstDevice, const void* src, int srcDevice, size_t count,
                                cudaStream_t stream = 0);
cudaError_t cudaMemset(void* devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream = 0);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func);

// The typed overloads cuda_runtime.h has for kernels and __device__/__constant__ symbols.
template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class... P>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, void (*kernel)(P...)) {
  return cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(kernel));
}
namespace ikun::emu::detail {
cudaError_t copySymbol(void* symbol, size_t symbolBytes, void* hostData, size_t count, size_t offset,
                       cudaMemcpyKind kind, bool toSymbol, cudaStream_t stream);
}
template <class T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t count, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  return ::ikun::emu::detail::copySymbol(const_cast<void*>(static_cast<const volatile void*>(&symbol)), sizeof(T),
                                         const_cast<void*>(src), count, offset, kind, true, nullptr);
}
template <class T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                 cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
  return ::ikun::emu::detail::copySymbol(const_cast<void*>(static_cast<const volatile void*>(&symbol)), sizeof(T),
                                         dst, count, offset, kind, false, nullptr);
}

// ---------------------------------------------------------------------------------------------------------
// Built-in variables: set by the emulator for each host thread that runs a CUDA thread (under the serial
// schedules, where the CUDA threads are fibers of one host thread, threadIdx at every switch between them).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

namespace ikun::emu {

// Where a barrier or collective was called from (the file, line and function of the caller).
struct CallSite {
  const char* file;
  int line;
  const char* function;
  static constexpr CallSite here(const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                                 const char* function = __builtin_FUNCTION()) {
    return CallSite{file, line, function};
  }
};

// How the threads of a block are scheduled (IKUN_CUDA_EMULATE_SCHEDULE, or setSchedule):
//   Serial (the default, except under ThreadSanitizer): one thread at a time in thread-index order, switching
//     only at __syncthreads, warp collectives and exit; blocks in index order. Every CUDA thread is a fiber on
//     the launching host thread, switched without a system call, so a barrier round costs a few microseconds
//     and a kernel without barriers runs its block as a plain loop. Deterministic: a rerun gives the same
//     interleaving, and a deadlock (no thread can run) is reported at once.
//   Reverse: as Serial with the threads and the blocks in reversed order. A missing barrier often goes
//     unnoticed in forward order (the thread that writes happens to run before the one that reads); reversed
//     order was found to expose one that forward order hid. Results must not depend on the schedule.
//   Concurrent (the default under ThreadSanitizer): all threads of a block run at once as host threads, as
//     freely as the OS schedules them. The only mode where ThreadSanitizer sees real concurrency, so the mode
//     to find races in; slow (a kernel wake-up per thread at every barrier).
// Kernels that spin-wait on another thread of their block (without a barrier or collective in the loop) hang
// in Serial and Reverse; they need Concurrent.
enum class Schedule { Concurrent, Serial, Reverse };
void setSchedule(Schedule schedule);  // overrides the environment variable; for tests
Schedule schedule();
const char* scheduleName(Schedule schedule);

// Whether device work runs (IKUN_CUDA_EMULATE_KERNELS=run, the default) or is only checked (skip): kernels,
// memsets and device-to-device copies then check their configuration and pointers and return; copies to and
// from the host still run. For measuring the host's side at sizes the emulator cannot compute in reasonable
// time (bench:gpu-host): the caching allocator's requests and peak, which do not depend on what kernels
// compute, and the host's own time per step. Device memory then starts zeroed rather than NaN-filled, so
// that host reads of results nobody wrote (a loss, a norm) stay finite and the host takes the path it takes
// on real results.
bool kernelsSkipped();

// The device memory the emulated device offers (IKUN_EMULATED_MEMORY_MB, default 4096 MB), for tests of
// out-of-memory handling. Returns cudaErrorInvalidValue when below what is allocated now.
cudaError_t setDeviceMemoryLimit(size_t bytes);

// Shared memory. One buffer per block per declaration site (a function-local static), the same for all the
// block's threads, filled with 0xFF bytes (NaN as float or double, -1 as an integer) before each block so that
// a read before a write shows up.
struct SharedSite {
  const char* file;
  int line;
  // false: scratch of an emulation (the mma emulation's register exchange, mma.cuh), which has no
  // counterpart in a GPU's shared memory and so counts against none of its limits
  bool hardware = true;
};
void* sharedArray(const SharedSite* site, size_t bytes, size_t align);
void* dynamicShared();  // the block's dynamic shared memory (the launch's bytes), 16-byte aligned

[[noreturn]] void hardError(const char* what, CallSite site);

namespace detail {

enum class Barrier : unsigned char { Sync, Count, And, Or };
int blockBarrier(Barrier kind, int predicate, const char* file, int line, const char* function);

enum class Collective : unsigned char {
  SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All,
  ReduceAdd, ReduceMin, ReduceMax, ReduceAnd, ReduceOr, ReduceXor,
};
// One warp-wide operation. value: the lane's operand (as bits); type: an id of the operand type (lanes must
// agree); param: source lane, delta or lane mask; width: the shuffle segment.
uint64_t warpCollective(Collective op, unsigned mask, uint64_t value, int type, int param, int width, CallSite site);

template <class T>
uint64_t toBits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T fromBits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
// Operand type ids: size in bytes times 4, plus 1 for floating point, plus 2 for signed.
template <class T>
constexpr int typeId() {
  return int(sizeof(T)) * 4 + (std::is_floating_point_v<T> ? 1 : 0) + (std::is_signed_v<T> ? 2 : 0);
}

// A kernel with its arguments, type-erased for the non-template launcher.
using Invoker = void (*)(void (*kernel)(), const void* arguments);
template <class... Params>
void invoke(void (*kernel)(), const void* arguments) {
  // Each CUDA thread gets its own copy of the parameters, as on a GPU (a kernel may modify them).
  std::tuple<Params...> own = *static_cast<const std::tuple<Params...>*>(arguments);
  std::apply(reinterpret_cast<void (*)(Params...)>(kernel), own);
}
void launch(void (*kernel)(), Invoker invoker, const void* arguments, dim3 grid, dim3 block,
            size_t dynamicSharedBytes, cudaStream_t stream);

}  // namespace detail

// Runs kernel<<<grid, block, dynamicSharedBytes, stream>>>(args...) to completion; a bad configuration is
// reported through cudaGetLastError() without running anything. Launches from several host threads are
// serialised.
template <class... Params>
void launchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamicSharedBytes, cudaStream_t stream,
                  std::tuple<Params...>& args) {
  detail::launch(reinterpret_cast<void (*)()>(kernel), &detail::invoke<Params...>, &args, grid, block,
                 dynamicSharedBytes, stream);
}

}  // namespace ikun::emu

#define IKUN_EMU_CAT2(a, b) a##b
#define IKUN_EMU_CAT(a, b) IKUN_EMU_CAT2(a, b)
// T (&name)[n]: the block's copy of a static shared array (the site object tells declaration sites apart).
#define IKUN_EMU_SHARED_ARRAY(T, name, n)                                                                  \
  static constexpr ::ikun::emu::SharedSite IKUN_EMU_CAT(ikunEmuSharedSite_, name){__FILE__, __LINE__};     \
  T(&name)[n] = *static_cast<T(*)[n]>(                                                                      \
      ::ikun::emu::sharedArray(&IKUN_EMU_CAT(ikunEmuSharedSite_, name), sizeof(T[n]), alignof(T)))
#define IKUN_EMU_SHARED_ARRAY2(T, name, n, m)                                                              \
  static constexpr ::ikun::emu::SharedSite IKUN_EMU_CAT(ikunEmuSharedSite_, name){__FILE__, __LINE__};     \
  T(&name)[n][m] = *static_cast<T(*)[n][m]>(                                                                \
      ::ikun::emu::sharedArray(&IKUN_EMU_CAT(ikunEmuSharedSite_, name), sizeof(T[n][m]), alignof(T)))
// The same for the scratch an emulation of a hardware feature needs (per block, NaN-filled like shared
// memory), outside the static shared memory the kernel declares: a GPU needs none of it.
#define IKUN_EMU_SCRATCH_ARRAY2(T, name, n, m)                                                             \
  static constexpr ::ikun::emu::SharedSite IKUN_EMU_CAT(ikunEmuSharedSite_, name){__FILE__, __LINE__, false}; \
  T(&name)[n][m] = *static_cast<T(*)[n][m]>(                                                                \
      ::ikun::emu::sharedArray(&IKUN_EMU_CAT(ikunEmuSharedSite_, name), sizeof(T[n][m]), alignof(T)))

// ---------------------------------------------------------------------------------------------------------
// Barriers. Macros, so that a divergent barrier is reported with the call sites of both sides.
#define __syncthreads() \
  ((void)::ikun::emu::detail::blockBarrier(::ikun::emu::detail::Barrier::Sync, 0, __FILE__, __LINE__, __func__))
#define __syncthreads_count(p) \
  ::ikun::emu::detail::blockBarrier(::ikun::emu::detail::Barrier::Count, (p) ? 1 : 0, __FILE__, __LINE__, __func__)
#define __syncthreads_and(p) \
  ::ikun::emu::detail::blockBarrier(::ikun::emu::detail::Barrier::And, (p) ? 1 : 0, __FILE__, __LINE__, __func__)
#define __syncthreads_or(p) \
  ::ikun::emu::detail::blockBarrier(::ikun::emu::detail::Barrier::Or, (p) ? 1 : 0, __FILE__, __LINE__, __func__)

// ---------------------------------------------------------------------------------------------------------
// Warp collectives, full mask only (mask 0xffffffff, all 32 lanes of a full warp present).
inline void __syncwarp(unsigned mask = 0xffffffffu, ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {
  ::ikun::emu::detail::warpCollective(::ikun::emu::detail::Collective::SyncWarp, mask, 0, 0, 0, 32, site);
}

#define IKUN_EMU_SHUFFLES(T)                                                                                 \
  inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize,                              \
                       ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {                          \
    namespace d = ::ikun::emu::detail;                                                                       \
    return d::fromBits<T>(d::warpCollective(d::Collective::ShflIdx, mask, d::toBits(var), d::typeId<T>(),    \
                                            srcLane, width, site));                                          \
  }                                                                                                          \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize,                    \
                          ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {                       \
    namespace d = ::ikun::emu::detail;                                                                       \
    return d::fromBits<T>(d::warpCollective(d::Collective::ShflUp, mask, d::toBits(var), d::typeId<T>(),     \
                                            int(delta), width, site));                                       \
  }                                                                                                          \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize,                  \
                            ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {                     \
    namespace d = ::ikun::emu::detail;                                                                       \
    return d::fromBits<T>(d::warpCollective(d::Collective::ShflDown, mask, d::toBits(var), d::typeId<T>(),   \
                                            int(delta), width, site));                                       \
  }                                                                                                          \
  inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize,                         \
                           ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {                      \
    namespace d = ::ikun::emu::detail;                                                                       \
    return d::fromBits<T>(d::warpCollective(d::Collective::ShflXor, mask, d::toBits(var), d::typeId<T>(),    \
                                            laneMask, width, site));                                         \
  }
IKUN_EMU_SHUFFLES(int)
IKUN_EMU_SHUFFLES(unsigned int)
IKUN_EMU_SHUFFLES(long)
IKUN_EMU_SHUFFLES(unsigned long)
IKUN_EMU_SHUFFLES(long long)
IKUN_EMU_SHUFFLES(unsigned long long)
IKUN_EMU_SHUFFLES(float)
IKUN_EMU_SHUFFLES(double)
#undef IKUN_EMU_SHUFFLES

inline unsigned __ballot_sync(unsigned mask, int predicate, ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {
  namespace d = ::ikun::emu::detail;
  return unsigned(d::warpCollective(d::Collective::Ballot, mask, predicate != 0, 0, 0, 32, site));
}
inline int __any_sync(unsigned mask, int predicate, ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {
  namespace d = ::ikun::emu::detail;
  return int(d::warpCollective(d::Collective::Any, mask, predicate != 0, 0, 0, 32, site));
}
inline int __all_sync(unsigned mask, int predicate, ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {
  namespace d = ::ikun::emu::detail;
  return int(d::warpCollective(d::Collective::All, mask, predicate != 0, 0, 0, 32, site));
}
// sm_80 warp reductions.
#define IKUN_EMU_REDUCE(name, op, T)                                                                         \
  inline T name(unsigned mask, T value, ::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {         \
    namespace d = ::ikun::emu::detail;                                                                       \
    return d::fromBits<T>(d::warpCollective(d::Collective::op, mask, d::toBits(value), d::typeId<T>(), 0, 32, \
                                            site));                                                          \
  }
IKUN_EMU_REDUCE(__reduce_add_sync, ReduceAdd, int)
IKUN_EMU_REDUCE(__reduce_add_sync, ReduceAdd, unsigned)
IKUN_EMU_REDUCE(__reduce_min_sync, ReduceMin, int)
IKUN_EMU_REDUCE(__reduce_min_sync, ReduceMin, unsigned)
IKUN_EMU_REDUCE(__reduce_max_sync, ReduceMax, int)
IKUN_EMU_REDUCE(__reduce_max_sync, ReduceMax, unsigned)
IKUN_EMU_REDUCE(__reduce_and_sync, ReduceAnd, unsigned)
IKUN_EMU_REDUCE(__reduce_or_sync, ReduceOr, unsigned)
IKUN_EMU_REDUCE(__reduce_xor_sync, ReduceXor, unsigned)
#undef IKUN_EMU_REDUCE

// ---------------------------------------------------------------------------------------------------------
// Atomics: GCC __atomic builtins, relaxed like CUDA's (they order nothing else; ThreadSanitizer knows them).
#define IKUN_EMU_ATOMIC_FETCH(name, builtin, T) \
  inline T name(T* address, T value) { return builtin(address, value, __ATOMIC_RELAXED); }
IKUN_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, int)
IKUN_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned long long)
IKUN_EMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, int)
IKUN_EMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, int)
IKUN_EMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, unsigned long long)
IKUN_EMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, int)
IKUN_EMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, unsigned long long)
IKUN_EMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, int)
IKUN_EMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, unsigned long long)
IKUN_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, int)
IKUN_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned int)
IKUN_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned long long)
#undef IKUN_EMU_ATOMIC_FETCH

namespace ikun::emu::detail {
// Read-modify-write by compare-and-swap on the value's bits: returns the old value.
template <class T, class F>
inline T atomicUpdate(T* address, F update) {
  using Bits = std::conditional_t<sizeof(T) == 8, unsigned long long, unsigned int>;
  static_assert(sizeof(T) == sizeof(Bits));
  Bits* bits = reinterpret_cast<Bits*>(address);
  Bits expected = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    T old;
    std::memcpy(&old, &expected, sizeof(T));
    T next = update(old);
    Bits desired;
    std::memcpy(&desired, &next, sizeof(T));
    if (__atomic_compare_exchange_n(bits, &expected, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
  }
}
}  // namespace ikun::emu::detail

inline float atomicAdd(float* a, float v) { return ::ikun::emu::detail::atomicUpdate(a, [v](float o) { return o + v; }); }
inline double atomicAdd(double* a, double v) { return ::ikun::emu::detail::atomicUpdate(a, [v](double o) { return o + v; }); }
inline float atomicExch(float* a, float v) { return ::ikun::emu::detail::atomicUpdate(a, [v](float) { return v; }); }
#define IKUN_EMU_ATOMIC_MINMAX(T)                                                                                \
  inline T atomicMax(T* a, T v) { return ::ikun::emu::detail::atomicUpdate(a, [v](T o) { return o < v ? v : o; }); } \
  inline T atomicMin(T* a, T v) { return ::ikun::emu::detail::atomicUpdate(a, [v](T o) { return v < o ? v : o; }); }
IKUN_EMU_ATOMIC_MINMAX(int)
IKUN_EMU_ATOMIC_MINMAX(unsigned int)
IKUN_EMU_ATOMIC_MINMAX(long long)
IKUN_EMU_ATOMIC_MINMAX(unsigned long long)
#undef IKUN_EMU_ATOMIC_MINMAX
// atomicInc/atomicDec wrap as CUDA defines them: ((old >= limit) ? 0 : old + 1), ((old == 0 || old > limit) ? limit : old - 1).
inline unsigned atomicInc(unsigned* a, unsigned limit) {
  return ::ikun::emu::detail::atomicUpdate(a, [limit](unsigned o) { return o >= limit ? 0u : o + 1; });
}
inline unsigned atomicDec(unsigned* a, unsigned limit) {
  return ::ikun::emu::detail::atomicUpdate(a, [limit](unsigned o) { return (o == 0 || o > limit) ? limit : o - 1; });
}
#define IKUN_EMU_ATOMIC_CAS(T)                                                                   \
  inline T atomicCAS(T* address, T compare, T value) {                                           \
    __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    return compare; /* the old value, whether or not it was swapped */                           \
  }
IKUN_EMU_ATOMIC_CAS(int)
IKUN_EMU_ATOMIC_CAS(unsigned int)
IKUN_EMU_ATOMIC_CAS(unsigned long long)
#undef IKUN_EMU_ATOMIC_CAS

// Fences: the C++ fence (x86 needs none for most orders; see the limits in native/cuda/emulator/README.md).
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---------------------------------------------------------------------------------------------------------
// Intrinsics and math that device code uses beyond <cmath>.
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline int __float_as_int(float x) { return ::ikun::emu::detail::fromBits<int>(::ikun::emu::detail::toBits(x)); }
inline unsigned __float_as_uint(float x) { return ::ikun::emu::detail::fromBits<unsigned>(::ikun::emu::detail::toBits(x)); }
inline float __int_as_float(int x) { return ::ikun::emu::detail::fromBits<float>(::ikun::emu::detail::toBits(x)); }
inline float __uint_as_float(unsigned x) { return ::ikun::emu::detail::fromBits<float>(::ikun::emu::detail::toBits(x)); }
inline long long __double_as_longlong(double x) {
  return ::ikun::emu::detail::fromBits<long long>(::ikun::emu::detail::toBits(x));
}
inline double __longlong_as_double(long long x) {
  return ::ikun::emu::detail::fromBits<double>(::ikun::emu::detail::toBits(x));
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
[[noreturn]] inline void __trap(::ikun::emu::CallSite site = ::ikun::emu::CallSite::here()) {
  ::ikun::emu::hardError("__trap() called (on a GPU the launch fails with cudaErrorLaunchFailure)", site);
}
