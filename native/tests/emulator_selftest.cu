// The emulated CUDA device's self-test: small kernels that exercise every feature of native/cuda/emulator, and
// planted bugs that ThreadSanitizer, AddressSanitizer or the emulator itself must report. Kernels are plain CUDA
// (device.cuh spellings), launched through ikun::cuda::launch like ikun's own; cases that test the emulator's
// own behaviour (schedules, NaN fill, memory limits) are under IKUN_CUDA_EMULATED.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <thread>
#include <vector>

#include "../cuda/device.cuh"
#include "../cuda/launch.cuh"
#include "cuda_test.h"

using ikun::cuda::launch;

// A named namespace, not an anonymous one: functions with external linkage are in the dynamic symbol table
// (the program links with -rdynamic), so the emulator's reports can name the kernel.
namespace selftest {

// ---------------------------------------------------------------------------------------------------------
// Helpers: device buffers that free themselves, copies that check.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { IKUN_CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T))); }
  DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& host) {
    IKUN_CUDA_OK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    IKUN_CUDA_OK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void zero() { IKUN_CUDA_OK(cudaMemset(p_, 0, n_ * sizeof(T))); }

 private:
  size_t n_;
  T* p_ = nullptr;
};

#if defined(IKUN_CUDA_EMULATED)
using ikun::emu::Schedule;
// Runs under a schedule and restores the one before.
class ScheduleGuard {
 public:
  explicit ScheduleGuard(Schedule s) : before_(ikun::emu::schedule()) { ikun::emu::setSchedule(s); }
  ~ScheduleGuard() { ikun::emu::setSchedule(before_); }

 private:
  Schedule before_;
};
const Schedule kSchedules[] = {Schedule::Concurrent, Schedule::Serial, Schedule::Reverse};
#endif

// ---------------------------------------------------------------------------------------------------------
// Kernels.

// Shared-memory tree reduction: one partial sum per block.
template <unsigned N>
__global__ void blockSum(const float* in, float* out, int n) {
  IKUN_SHARED_ARRAY(float, partial, N);
  unsigned t = threadIdx.x;
  unsigned i = blockIdx.x * N + t;
  partial[t] = i < unsigned(n) ? in[i] : 0.0f;
  __syncthreads();
  for (unsigned s = N / 2; s > 0; s >>= 1) {
    if (t < s) partial[t] += partial[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Warp-shuffle reduction: each warp reduces with __shfl_down_sync, warp 0 reduces the warps' sums with
// __shfl_xor_sync (every lane ends with the total).
__global__ void warpSum(const double* in, double* out, int n) {
  IKUN_SHARED_ARRAY(double, warpTotals, 32);
  unsigned t = threadIdx.x;
  unsigned i = blockIdx.x * blockDim.x + t;
  double v = i < unsigned(n) ? in[i] : 0.0;
  for (unsigned offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  unsigned warps = blockDim.x / warpSize;
  if (t % warpSize == 0) warpTotals[t / warpSize] = v;
  __syncthreads();
  if (t < 32) {
    double w = t < warps ? warpTotals[t] : 0.0;
    for (int mask = 16; mask > 0; mask >>= 1) w += __shfl_xor_sync(0xffffffffu, w, mask);
    if (t == 5) out[blockIdx.x] = w;  // any lane holds the total
  }
}

// Every shuffle flavour with several widths and lane operands, for one operand type. Each lane's value is
// distinct (and uses the high half of 64-bit types).
template <class T>
__device__ T laneValue(unsigned globalThread) {
  if (sizeof(T) == 8) return T((1ull << 40) * (globalThread % 7 + 1) + globalThread * 3 + 1);
  return T(globalThread * 3 + 1);
}
constexpr int kShuffleVariants = 9;
template <class T>
__global__ void shuffleVariants(T* out) {
  unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
  unsigned lane = threadIdx.x % 32;
  T v = laneValue<T>(g);
  T* o = out + g * kShuffleVariants;
  o[0] = __shfl_sync(0xffffffffu, v, int(lane * 7 + 3) % 32);  // a different source lane for each lane
  o[1] = __shfl_sync(0xffffffffu, v, -1, 4);                      // negative source: modulo width
  o[2] = __shfl_sync(0xffffffffu, v, 37, 8);                      // beyond the width
  o[3] = __shfl_up_sync(0xffffffffu, v, 3, 8);
  o[4] = __shfl_up_sync(0xffffffffu, v, 1);
  o[5] = __shfl_down_sync(0xffffffffu, v, 5, 16);
  o[6] = __shfl_down_sync(0xffffffffu, v, 31);
  o[7] = __shfl_xor_sync(0xffffffffu, v, 6);
  o[8] = __shfl_xor_sync(0xffffffffu, v, 9, 8);  // xor into a later segment: the lane keeps its own value
}

// The reference: CUDA's documented shuffle semantics, written independently of the emulator's PTX form.
int referenceSource(int variant, int lane) {
  auto idx = [&](int src, int width) { return lane / width * width + ((src % width) + width) % width; };
  auto up = [&](int delta, int width) { return lane % width >= delta ? lane - delta : lane; };
  auto down = [&](int delta, int width) { return lane % width + delta < width ? lane + delta : lane; };
  auto bfly = [&](int mask, int width) {
    int j = lane ^ mask;
    return j / width > lane / width ? lane : j;  // earlier segments are readable, later ones are not
  };
  switch (variant) {
    case 0: return idx(lane * 7 + 3, 32);
    case 1: return idx(-1, 4);
    case 2: return idx(37, 8);
    case 3: return up(3, 8);
    case 4: return up(1, 32);
    case 5: return down(5, 16);
    case 6: return down(31, 32);
    case 7: return bfly(6, 32);
    default: return bfly(9, 8);
  }
}

// Votes and warp reductions.
__global__ void votes(unsigned* out) {
  unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  unsigned* o = out + t * 8;
  o[0] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  o[1] = unsigned(__any_sync(0xffffffffu, warp == 1 && lane == 17));
  o[2] = unsigned(__all_sync(0xffffffffu, lane < 32));
  o[3] = unsigned(__all_sync(0xffffffffu, lane != 9));
  o[4] = unsigned(__reduce_add_sync(0xffffffffu, lane + 1));
  o[5] = unsigned(__reduce_min_sync(0xffffffffu, int(lane) - 20));
  o[6] = __reduce_max_sync(0xffffffffu, lane * 5 % 31);
  o[7] = __reduce_xor_sync(0xffffffffu, (lane * 2654435761u) >> 7);
  __syncwarp();
}

struct AtomicCounters {
  int addInt;
  unsigned addUnsigned;
  unsigned long long addU64;
  float addFloat;
  double addDouble;
  int maxInt, minInt;
  unsigned maxUnsigned, minUnsigned;
  int casInt;
  unsigned casUnsigned;
  unsigned long long casU64;
  int exch;
  int subInt;
  unsigned orBits, andBits, xorBits;
  unsigned inc, dec;
};

__global__ void atomics(AtomicCounters* c, int* exchanged) {
  int g = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&c->addInt, g - 100);
  atomicAdd(&c->addUnsigned, 3u);
  atomicAdd(&c->addU64, (1ull << 33) + 1);
  atomicAdd(&c->addFloat, 0.5f);
  atomicAdd(&c->addDouble, 0.25);
  atomicMax(&c->maxInt, (g * 37) % 101 - 50);
  atomicMin(&c->minInt, (g * 37) % 101 - 50);
  atomicMax(&c->maxUnsigned, unsigned(g * 13 % 1000));
  atomicMin(&c->minUnsigned, unsigned(g * 13 % 1000) + 7);
  // Increment by compare-and-swap from a guess: the returned old value drives the loop. (Not from a plain load of
  // c->casInt: that load races with the other threads' atomics, and ThreadSanitizer says so.)
  for (int old = 0;;) {
    int seen = atomicCAS(&c->casInt, old, old + 1);
    if (seen == old) break;
    old = seen;
  }
  for (unsigned old = 0;;) {
    unsigned seen = atomicCAS(&c->casUnsigned, old, old + 2);
    if (seen == old) break;
    old = seen;
  }
  for (unsigned long long old = 0;;) {
    unsigned long long seen = atomicCAS(&c->casU64, old, old + (1ull << 35));
    if (seen == old) break;
    old = seen;
  }
  exchanged[g] = atomicExch(&c->exch, g + 1);
  atomicSub(&c->subInt, 2);
  atomicOr(&c->orBits, 1u << (g % 32));
  atomicAnd(&c->andBits, ~(1u << (g % 16)));
  atomicXor(&c->xorBits, 1u << (g % 5));
  atomicInc(&c->inc, 9u);
  atomicDec(&c->dec, 9u);
}

// Dynamic shared memory: stage the block's values reversed through it; report its alignment.
__global__ void dynamicReverse(const float* in, float* out, unsigned* misaligned) {
  float* stage = ikun::cuda::dynamicShared<float>();
  unsigned t = threadIdx.x, n = blockDim.x, base = blockIdx.x * n;
  stage[n - 1 - t] = in[base + t];
  stage[n + t] = 2.0f * in[base + t];  // a second region: the launch gave 2 * n floats
  __syncthreads();
  out[base + t] = stage[t] + stage[n + t];
  if (t == 0 && (reinterpret_cast<uintptr_t>(stage) % 16) != 0) atomicAdd(misaligned, 1u);
}

// Reads shared memory before writing it, in every block: the emulator must show NaN bytes (0xFF) each time.
__global__ void readBeforeWrite(float* staticFloat, int* staticInt, unsigned* dynamicBytes) {
  IKUN_SHARED_ARRAY(float, f, 64);
  IKUN_SHARED_ARRAY2(int, i2, 8, 8);
  unsigned char* d = ikun::cuda::dynamicShared<unsigned char>();
  unsigned t = threadIdx.x, g = blockIdx.x * 64 + t;
  staticFloat[g] = f[t];
  staticInt[g] = i2[t / 8][t % 8];
  dynamicBytes[g] = d[t];
  __syncthreads();
  f[t] = 1.0f;  // if the next block got this buffer unfilled, it would read 1, 0 and 0
  i2[t / 8][t % 8] = 0;
  d[t] = 0;
}

#if defined(IKUN_CUDA_EMULATED)
// 40 KB of shared memory and 24 KB of emulation scratch (as the mma emulation's): over nvcc's 48 KB together,
// so this runs only if the scratch counts against no limit. Each thread passes its value through both.
__global__ void sharedAndScratch(float* out) {
  IKUN_SHARED_ARRAY(float, tile, 10 * 1024);
  IKUN_EMU_SCRATCH_ARRAY2(float, scratch, 6 * 1024, 1);
  const unsigned t = threadIdx.x;
  tile[t] = float(t);
  scratch[t][0] = 2.0f * float(t);
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = tile[blockDim.x - 1 - t] + scratch[blockDim.x - 1 - t][0];
}
#endif

// 2-D/3-D blocks and grids: each thread writes its coordinates at its global linear index.
__global__ void coordinates(unsigned* out, unsigned* count) {
  unsigned bx = blockDim.x, by = blockDim.y, bz = blockDim.z;
  unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned thread = threadIdx.x + bx * (threadIdx.y + by * threadIdx.z);
  unsigned g = block * bx * by * bz + thread;
  out[g * 4 + 0] = threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16;
  out[g * 4 + 1] = blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16;
  out[g * 4 + 2] = bx | by << 8 | bz << 16;
  out[g * 4 + 3] = gridDim.x | gridDim.y << 8 | gridDim.z << 16;
  atomicAdd(&count[g], 1u);
}

// Threads past n exit at once; the others meet at barriers (which count only threads that have not exited).
__global__ void earlyExit(const int* in, int* out, int n, int* votes) {
  IKUN_SHARED_ARRAY(int, s, 128);
  int t = int(threadIdx.x);
  if (t >= n) return;
  s[t] = in[t];
  __syncthreads();
  out[t] = s[t] + s[(t + 1) % n];
  int c = __syncthreads_count(s[t] % 2 == 0);
  int a = __syncthreads_and(s[t] >= 0);
  int o = __syncthreads_or(s[t] == 7);
  if (t == 0) {
    votes[0] = c;
    votes[1] = a;
    votes[2] = o;
  }
}

// Neighbour read through shared memory. With the barrier: correct. Without (the planted race): thread t reads
// s[t + 1] which thread t + 1 may not have written yet (ThreadSanitizer: data race).
template <bool withBarrier>
__global__ void neighbour(const float* in, float* out) {
  IKUN_SHARED_ARRAY(float, s, 256);
  unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * 256 + t];
  if (withBarrier) __syncthreads();
  out[blockIdx.x * 256 + t] = s[(t + 1) % 256];
}

// Reads in[n] on the last thread when `overrun` (the planted out-of-bounds read: AddressSanitizer).
__global__ void copyPlusOne(const float* in, float* out, int n, bool overrun) {
  int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = in[i + (overrun && i == n - 1 ? 1 : 0)];
}

// Transpose through a padded 2-D shared tile, 32x8 threads per 32x32 tile.
__global__ void transpose(const float* in, float* out, int rows, int cols) {
  IKUN_SHARED_ARRAY2(float, tile, 32, 33);
  int x = int(blockIdx.x * 32 + threadIdx.x), y0 = int(blockIdx.y * 32 + threadIdx.y);
  for (int k = 0; k < 32; k += 8)
    if (x < cols && y0 + k < rows) tile[threadIdx.y + k][threadIdx.x] = in[(y0 + k) * cols + x];
  __syncthreads();
  int tx = int(blockIdx.y * 32 + threadIdx.x), ty0 = int(blockIdx.x * 32 + threadIdx.y);
  for (int k = 0; k < 32; k += 8)
    if (tx < rows && ty0 + k < cols) out[(ty0 + k) * rows + tx] = tile[threadIdx.x][threadIdx.y + k];
}

// Each thread modifies its copies of the parameters: they must be its own.
__global__ void ownParameters(int* p, int n) {
  p += threadIdx.x;
  n -= int(threadIdx.x);
  *p = n;
}

// The order in which threads start, and the order after a barrier (serial schedules are deterministic).
__global__ void order(unsigned* before, unsigned* after, unsigned* counter) {
  unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
  before[atomicAdd(&counter[0], 1u)] = g;
  __syncthreads();
  after[atomicAdd(&counter[1], 1u)] = g;
}

// A 1024-thread block: barrier, shuffles and votes with every lane of every warp.
__global__ void bigBlock(unsigned* out) {
  IKUN_SHARED_ARRAY(unsigned, s, 1024);
  unsigned t = threadIdx.x;
  s[t] = t;
  __syncthreads();
  unsigned v = s[1023 - t];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  unsigned ballot = __ballot_sync(0xffffffffu, (t / 32) % 2 == 1);
  out[t] = v + ballot;
}

__global__ void mathFunctions(const float* x, float* out) {
  unsigned t = threadIdx.x;
  float v = __ldg(x + t);
  out[t * 8 + 0] = rsqrtf(v);
  out[t * 8 + 1] = float(rsqrt(double(v)));
  out[t * 8 + 2] = expf(-v) + atanf(v) + erfcf(v) + sqrtf(v) + fabsf(-v) + logf(v) + tanhf(v);
  out[t * 8 + 3] = float(exp(-double(v)) + atan(double(v)) + erfc(double(v)) + sqrt(double(v)) + log1p(double(v)));
  out[t * 8 + 4] = __int_as_float(__float_as_int(v));
  out[t * 8 + 5] = float(__popc(t) + __clz(int(t + 1)) + __ffs(int(t)));
  out[t * 8 + 6] = fminf(v, 2.0f) + fmaxf(v, 2.0f) + fmaf(v, v, 1.0f);
  out[t * 8 + 7] = float(__longlong_as_double(__double_as_longlong(double(v) * 3.0)));
}

__global__ void flag(int* f) {
  // The first thread of the first block only (in a (1, 1024) block every thread has threadIdx.x == 0).
  if (threadIdx.x + threadIdx.y + threadIdx.z + blockIdx.x + blockIdx.y + blockIdx.z == 0) *f = 1;
}

template <int N>
__global__ void staticShared16k(float* out) {
  IKUN_SHARED_ARRAY(float, big, 4096);  // 16 KB
  big[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = big[(threadIdx.x + 1) % blockDim.x] + float(N);
}

template <int N>
__global__ void dynamicOnly(float* out) {
  float* d = ikun::cuda::dynamicShared<float>();
  d[threadIdx.x] = float(threadIdx.x + N);
  __syncthreads();
  out[threadIdx.x] = d[(threadIdx.x + 1) % blockDim.x];
}

// ---------------------------------------------------------------------------------------------------------
// Planted-bug kernels for the emulator's own hard errors.
__global__ void divergentBarrier(int* out) {
  if (threadIdx.x < 16) {
    out[threadIdx.x] = 1;
    __syncthreads();
  } else {
    out[threadIdx.x] = 2;
    __syncthreads();
  }
}

__global__ void partialMaskShuffle(int* out) {
  int v = int(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_sync(0x0000ffffu, v, 0);
  out[threadIdx.x] = v;
}

__global__ void shuffleAnyMask(int* out) { out[threadIdx.x] = __shfl_down_sync(0xffffffffu, int(threadIdx.x), 1); }

__global__ void exitedLaneShuffle(int* out, int n) {
  unsigned t = threadIdx.x;
  if (t >= unsigned(n)) return;  // the tail of warp 0 exits before the full-mask shuffle
  out[t] = __shfl_xor_sync(0xffffffffu, int(t), 1);
}

__global__ void barrierShuffleDeadlock(int* out) {
  int v = int(threadIdx.x);
  if (threadIdx.x % 32 == 0)
    __syncthreads();  // lane 0 waits for the block, the other lanes wait for lane 0 in the shuffle
  else
    v = __shfl_sync(0xffffffffu, v, 0);
  out[threadIdx.x] = v;
}

__global__ void sharedOverrun(float* out) {
  IKUN_SHARED_ARRAY(float, s, 64);
  unsigned t = threadIdx.x;
  s[t] = float(t);
  __syncthreads();
  float* p = s;  // through a pointer, as an index bug in a kernel would
  out[t] = p[t + 1];  // thread 63 reads s[64]
}

// ---------------------------------------------------------------------------------------------------------
// Host-side pieces of cases.
std::vector<float> iota(size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(int(i % 97) - 40) * scale;
  return v;
}

std::vector<float> runBlockSum() {
  const int n = 1000;
  std::vector<float> host = iota(n);
  DeviceBuffer<float> in(host), out(4);
  launch(blockSum<256>, dim3(4), dim3(256), 0, nullptr, in.get(), out.get(), n);
  return out.download();
}

template <class T>
std::vector<T> runShuffleVariants() {
  DeviceBuffer<T> out(size_t(2 * 64 * kShuffleVariants));
  launch(shuffleVariants<T>, dim3(2), dim3(64), 0, nullptr, out.get());
  return out.download();
}

template <class T>
void checkShuffleVariants(const char* type) {
  std::vector<T> got = runShuffleVariants<T>();
  for (unsigned g = 0; g < 128; ++g) {
    unsigned warpBase = g / 32 * 32;
    for (int v = 0; v < kShuffleVariants; ++v) {
      unsigned source = warpBase + unsigned(referenceSource(v, int(g % 32)));
      T want = sizeof(T) == 8 ? T((1ull << 40) * (source % 7 + 1) + source * 3 + 1) : T(source * 3 + 1);
      IKUN_CHECK(got[g * kShuffleVariants + v] == want, "%s: thread %u variant %d", type, g, v);
    }
  }
}

}  // namespace selftest

using namespace selftest;

// ---------------------------------------------------------------------------------------------------------
// Cases.

IKUN_TEST_CASE(reduce_shared, "shared-memory tree reduction over 4 blocks of 256 threads") {
  std::vector<float> sums = runBlockSum();
  std::vector<float> host = iota(1000);
  for (int b = 0; b < 4; ++b) {
    double want = 0;
    for (int i = b * 256; i < std::min(1000, (b + 1) * 256); ++i) want += host[i];
    IKUN_CHECK_EQ(double(sums[b]), want, "block %d", b);
  }
}

IKUN_TEST_CASE(reduce_warp_shuffle, "warp-shuffle reduction (shfl_down then shfl_xor across warps), doubles") {
  const int n = 700, threads = 256, blocks = 3;
  std::vector<double> host(n);
  for (int i = 0; i < n; ++i) host[i] = 0.5 * (i % 13) - 2.0;
  DeviceBuffer<double> in(host), out(blocks);
  launch(warpSum, dim3(blocks), dim3(threads), 0, nullptr, in.get(), out.get(), n);
  std::vector<double> got = out.download();
  for (int b = 0; b < blocks; ++b) {
    double want = 0;
    for (int i = b * threads; i < std::min(n, (b + 1) * threads); ++i) want += host[i];
    IKUN_CHECK_EQ(got[b], want, "block %d", b);
  }
}

IKUN_TEST_CASE(shuffle_semantics, "__shfl/_up/_down/_xor_sync with widths and odd lane operands, 6 operand types") {
  checkShuffleVariants<int>("int");
  checkShuffleVariants<unsigned>("unsigned");
  checkShuffleVariants<long long>("long long");
  checkShuffleVariants<unsigned long long>("unsigned long long");
  checkShuffleVariants<float>("float");
  checkShuffleVariants<double>("double");
}

IKUN_TEST_CASE(votes_and_warp_reductions, "__ballot/__any/__all_sync, __reduce_*_sync, __syncwarp") {
  DeviceBuffer<unsigned> out(96 * 8);
  launch(votes, dim3(1), dim3(96), 0, nullptr, out.get());
  std::vector<unsigned> got = out.download();
  unsigned ballot = 0, maxv = 0, xorv = 0;
  for (unsigned l = 0; l < 32; ++l) {
    ballot |= (l % 3 == 0 ? 1u : 0u) << l;
    maxv = std::max(maxv, l * 5 % 31);
    xorv ^= (l * 2654435761u) >> 7;
  }
  for (unsigned t = 0; t < 96; ++t) {
    const unsigned* o = &got[t * 8];
    IKUN_CHECK_EQ(o[0], ballot, "ballot, thread %u", t);
    IKUN_CHECK_EQ(o[1], t / 32 == 1 ? 1u : 0u, "any, thread %u", t);
    IKUN_CHECK_EQ(o[2], 1u, "all (true), thread %u", t);
    IKUN_CHECK_EQ(o[3], 0u, "all (false), thread %u", t);
    IKUN_CHECK_EQ(o[4], 528u, "reduce_add, thread %u", t);
    IKUN_CHECK_EQ(int(o[5]), -20, "reduce_min (signed), thread %u", t);
    IKUN_CHECK_EQ(o[6], maxv, "reduce_max, thread %u", t);
    IKUN_CHECK_EQ(o[7], xorv, "reduce_xor, thread %u", t);
  }
}

IKUN_TEST_CASE(atomics_all_types, "atomicAdd/Max/Min/CAS/Exch/Sub/And/Or/Xor/Inc/Dec on int, unsigned, u64, float, double") {
  const int blocks = 4, threads = 128, n = blocks * threads;
  AtomicCounters init{};
  init.maxInt = -1000;
  init.minInt = 1000;
  init.minUnsigned = 0xffffffffu;
  init.andBits = 0xffffffffu;
  init.subInt = 5;
  DeviceBuffer<AtomicCounters> c(std::vector<AtomicCounters>{init});
  DeviceBuffer<int> exchanged(n);
  launch(atomics, dim3(blocks), dim3(threads), 0, nullptr, c.get(), exchanged.get());
  AtomicCounters got = c.download()[0];
  long long addInt = 0;
  int maxInt = -1000, minInt = 1000;
  unsigned maxU = 0, minU = 0xffffffffu;
  for (int g = 0; g < n; ++g) {
    addInt += g - 100;
    maxInt = std::max(maxInt, (g * 37) % 101 - 50);
    minInt = std::min(minInt, (g * 37) % 101 - 50);
    maxU = std::max(maxU, unsigned(g * 13 % 1000));
    minU = std::min(minU, unsigned(g * 13 % 1000) + 7);
  }
  IKUN_CHECK_EQ((long long)got.addInt, addInt);
  IKUN_CHECK_EQ(got.addUnsigned, 3u * n);
  IKUN_CHECK_EQ(got.addU64, ((1ull << 33) + 1) * n);
  IKUN_CHECK_EQ(double(got.addFloat), 0.5 * n);
  IKUN_CHECK_EQ(got.addDouble, 0.25 * n);
  IKUN_CHECK_EQ(got.maxInt, maxInt);
  IKUN_CHECK_EQ(got.minInt, minInt);
  IKUN_CHECK_EQ(got.maxUnsigned, maxU);
  IKUN_CHECK_EQ(got.minUnsigned, minU);
  IKUN_CHECK_EQ(got.casInt, n);
  IKUN_CHECK_EQ(got.casUnsigned, 2u * n);
  IKUN_CHECK_EQ(got.casU64, (1ull << 35) * n);
  IKUN_CHECK_EQ(got.subInt, 5 - 2 * n);
  IKUN_CHECK_EQ(got.orBits, 0xffffffffu);
  IKUN_CHECK_EQ(got.andBits, 0xffff0000u);
  unsigned xorBits = 0;
  for (int g = 0; g < n; ++g) xorBits ^= 1u << (g % 5);
  IKUN_CHECK_EQ(got.xorBits, xorBits);
  IKUN_CHECK_EQ(got.inc, unsigned(n % 10));
  IKUN_CHECK_EQ(got.dec, unsigned((10 - n % 10) % 10));
  // atomicExch: the values handed back plus the final one are exactly the initial 0 and 1..n.
  std::vector<int> seen = exchanged.download();
  seen.push_back(got.exch);
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i <= n; ++i) IKUN_CHECK_EQ(seen[i], i, "atomicExch values");
}

IKUN_TEST_CASE(dynamic_shared, "dynamic shared memory: 16-byte aligned, per block, opt-in above 48 KB") {
  const unsigned threads = 128, blocks = 3;
  std::vector<float> host = iota(threads * blocks);
  DeviceBuffer<float> in(host), out(host.size());
  DeviceBuffer<unsigned> misaligned(1);
  misaligned.zero();
  launch(dynamicReverse, dim3(blocks), dim3(threads), 2 * threads * sizeof(float), nullptr, in.get(), out.get(),
         misaligned.get());
  std::vector<float> got = out.download();
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t)
      IKUN_CHECK_EQ(got[b * threads + t], host[b * threads + threads - 1 - t] + 2.0f * host[b * threads + t],
                    "block %u thread %u", b, t);
  IKUN_CHECK_EQ(misaligned.download()[0], 0u);
  // 100 KB of dynamic shared memory: refused until the kernel opts in, then it runs.
  const size_t big = 100 * 1024;
  DeviceBuffer<float> small(64);
  cudaGetLastError();
  try {
    launch(dynamicOnly<1>, dim3(1), dim3(64), big, nullptr, small.get());
    IKUN_CHECK(false, "a 100 KB dynamic launch without the attribute must fail");
  } catch (const ikun::cuda::CudaError& e) {
    IKUN_CHECK_EQ(e.code(), cudaErrorInvalidValue);
  }
  IKUN_CUDA_OK(cudaFuncSetAttribute(dynamicOnly<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(big)));
  launch(dynamicOnly<1>, dim3(2), dim3(64), big, nullptr, small.get());
  std::vector<float> r = small.download();
  for (unsigned t = 0; t < 64; ++t) IKUN_CHECK_EQ(r[t], float((t + 1) % 64 + 1));
}

#if defined(IKUN_CUDA_EMULATED)
IKUN_TEST_CASE(nan_fill, "static and dynamic shared memory read before written show 0xFF bytes (NaN) in every block") {
  const unsigned blocks = 3, n = blocks * 64;
  DeviceBuffer<float> f(n);
  DeviceBuffer<int> i(n);
  DeviceBuffer<unsigned> d(n);
  for (Schedule s : kSchedules) {
    ScheduleGuard guard(s);
    launch(readBeforeWrite, dim3(blocks), dim3(64), 64, nullptr, f.get(), i.get(), d.get());
    std::vector<float> fs = f.download();
    std::vector<int> is = i.download();
    std::vector<unsigned> ds = d.download();
    for (unsigned k = 0; k < n; ++k) {
      IKUN_CHECK(std::isnan(fs[k]), "static float %u under %s", k, ikun::emu::scheduleName(s));
      IKUN_CHECK_EQ(is[k], -1, "static int %u", k);
      IKUN_CHECK_EQ(ds[k], 0xFFu, "dynamic byte %u", k);
    }
  }
  // Device memory from cudaMalloc starts as 0xFF bytes too.
  DeviceBuffer<float> fresh(4);
  for (float v : fresh.download()) IKUN_CHECK(std::isnan(v), "fresh cudaMalloc memory");
}

IKUN_TEST_CASE(emulation_scratch, "an emulation's scratch (the mma register exchange) is not the kernel's shared memory") {
  const unsigned threads = 64, blocks = 2;
  DeviceBuffer<float> out(threads * blocks);
  launch(sharedAndScratch, dim3(blocks), dim3(threads), 0, nullptr, out.get());
  std::vector<float> got = out.download();
  for (unsigned k = 0; k < threads * blocks; ++k) IKUN_CHECK_EQ(got[k], 3.0f * float(threads - 1 - k % threads), "thread %u", k);
  cudaFuncAttributes attributes{};
  IKUN_CUDA_OK(cudaFuncGetAttributes(&attributes, sharedAndScratch));
  IKUN_CHECK_EQ(attributes.sharedSizeBytes, size_t(40 * 1024), "static shared bytes");
}
#endif

IKUN_TEST_CASE(blocks_and_grids_3d, "2-D/3-D blocks and grids: every thread once, with the right built-ins") {
  struct Shape {
    dim3 grid, block;
  };
  const Shape shapes[] = {{dim3(3, 2, 2), dim3(8, 4, 2)}, {dim3(2, 3), dim3(16, 6)}, {dim3(1, 1, 3), dim3(5, 3, 7)}};
  for (const Shape& s : shapes) {
    unsigned per = s.block.x * s.block.y * s.block.z, total = per * s.grid.x * s.grid.y * s.grid.z;
    DeviceBuffer<unsigned> out(total * 4), count(total);
    count.zero();
    launch(coordinates, s.grid, s.block, 0, nullptr, out.get(), count.get());
    std::vector<unsigned> o = out.download(), c = count.download();
    unsigned g = 0;
    for (unsigned bz = 0; bz < s.grid.z; ++bz)
      for (unsigned by = 0; by < s.grid.y; ++by)
        for (unsigned bx = 0; bx < s.grid.x; ++bx)
          for (unsigned tz = 0; tz < s.block.z; ++tz)
            for (unsigned ty = 0; ty < s.block.y; ++ty)
              for (unsigned tx = 0; tx < s.block.x; ++tx, ++g) {
                IKUN_CHECK_EQ(c[g], 1u, "thread %u ran once", g);
                IKUN_CHECK_EQ(o[g * 4 + 0], tx | ty << 8 | tz << 16, "threadIdx of %u", g);
                IKUN_CHECK_EQ(o[g * 4 + 1], bx | by << 8 | bz << 16, "blockIdx of %u", g);
                IKUN_CHECK_EQ(o[g * 4 + 2], s.block.x | s.block.y << 8 | s.block.z << 16, "blockDim");
                IKUN_CHECK_EQ(o[g * 4 + 3], s.grid.x | s.grid.y << 8 | s.grid.z << 16, "gridDim");
              }
  }
}

IKUN_TEST_CASE(early_exit_then_barrier, "threads that exit early do not block later barriers; __syncthreads_count/and/or") {
  const int n = 100;  // of 128 threads: warp 3 exits in part, a barrier then counts the 100 left
  std::vector<int> host(n);
  for (int i = 0; i < n; ++i) host[i] = (i * 7) % 23;
  DeviceBuffer<int> in(host), out(n), v(3);
  launch(earlyExit, dim3(1), dim3(128), 0, nullptr, in.get(), out.get(), n, v.get());
  std::vector<int> got = out.download(), votes = v.download();
  int even = 0, seven = 0;
  for (int i = 0; i < n; ++i) {
    IKUN_CHECK_EQ(got[i], host[i] + host[(i + 1) % n], "thread %d", i);
    even += host[i] % 2 == 0;
    seven |= host[i] == 7;
  }
  IKUN_CHECK_EQ(votes[0], even);
  IKUN_CHECK_EQ(votes[1], 1);
  IKUN_CHECK_EQ(votes[2], seven);
}

IKUN_TEST_CASE(neighbour_with_barrier, "the planted race's kernel with its barrier: correct and race-free") {
  std::vector<float> host = iota(512);
  DeviceBuffer<float> in(host), out(512);
  launch(neighbour<true>, dim3(2), dim3(256), 0, nullptr, in.get(), out.get());
  std::vector<float> got = out.download();
  for (unsigned i = 0; i < 512; ++i) IKUN_CHECK_EQ(got[i], host[i / 256 * 256 + (i + 1) % 256], "at %u", i);
}

IKUN_TEST_CASE(transpose_shared_2d, "IKUN_SHARED_ARRAY2 tile transpose, 32x8 threads, ragged edges") {
  const int rows = 70, cols = 45;
  std::vector<float> host = iota(size_t(rows) * cols);
  DeviceBuffer<float> in(host), out(host.size());
  launch(transpose, dim3((cols + 31) / 32, (rows + 31) / 32), dim3(32, 8), 0, nullptr, in.get(), out.get(), rows, cols);
  std::vector<float> got = out.download();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) IKUN_CHECK_EQ(got[c * rows + r], host[r * cols + c], "(%d,%d)", r, c);
}

IKUN_TEST_CASE(parameters_per_thread, "each thread gets its own copy of the kernel's parameters") {
  DeviceBuffer<int> p(64);
  launch(ownParameters, dim3(1), dim3(64), 0, nullptr, p.get(), 1000);
  std::vector<int> got = p.download();
  for (int t = 0; t < 64; ++t) IKUN_CHECK_EQ(got[t], 1000 - t);
}

IKUN_TEST_CASE(block_of_1024, "a 1024-thread block: barrier, shuffles and ballots in all 32 warps") {
  DeviceBuffer<unsigned> out(1024);
  launch(bigBlock, dim3(2), dim3(1024), 0, nullptr, out.get());
  std::vector<unsigned> got = out.download();
  for (unsigned t = 0; t < 1024; ++t) {
    unsigned warp = t / 32, sum = 0;
    for (unsigned l = 0; l < 32; ++l) sum += 1023 - (warp * 32 + l);
    IKUN_CHECK_EQ(got[t], sum + (warp % 2 == 1 ? 0xffffffffu : 0u), "thread %u", t);
  }
}

IKUN_TEST_CASE(math_functions, "<cmath> float/double functions, rsqrt(f), __ldg and bit intrinsics") {
  const unsigned n = 32;
  std::vector<float> x(n);
  for (unsigned i = 0; i < n; ++i) x[i] = 0.25f + 0.5f * float(i);
  DeviceBuffer<float> in(x), out(n * 8);
  launch(mathFunctions, dim3(1), dim3(n), 0, nullptr, in.get(), out.get());
  std::vector<float> got = out.download();
  for (unsigned t = 0; t < n; ++t) {
    float v = x[t];
    IKUN_CHECK_NEAR(got[t * 8 + 0], 1.0 / std::sqrt(double(v)), 1e-6);
    IKUN_CHECK_NEAR(got[t * 8 + 1], 1.0 / std::sqrt(double(v)), 1e-6);
    IKUN_CHECK_NEAR(got[t * 8 + 2],
                    std::exp(-v) + std::atan(v) + std::erfc(v) + std::sqrt(v) + v + std::log(v) + std::tanh(v), 1e-3);
    IKUN_CHECK_NEAR(got[t * 8 + 3],
                    std::exp(-double(v)) + std::atan(double(v)) + std::erfc(double(v)) + std::sqrt(double(v)) +
                        std::log1p(double(v)),
                    1e-4);
    IKUN_CHECK_EQ(got[t * 8 + 4], v);
    IKUN_CHECK_EQ(got[t * 8 + 5], float(__builtin_popcount(t) + __builtin_clz(t + 1) + (t ? __builtin_ctz(t) + 1 : 0)));
    IKUN_CHECK_NEAR(got[t * 8 + 6], std::min(v, 2.0f) + std::max(v, 2.0f) + v * v + 1.0f, 1e-3);
    IKUN_CHECK_NEAR(got[t * 8 + 7], 3.0 * v, 1e-6);
  }
}

IKUN_TEST_CASE(concurrent_launches, "launches from two host threads at once are serialised and stay correct") {
  std::vector<float> want = runBlockSum();
  std::atomic<int> wrong{0};
  auto work = [&] {
    for (int k = 0; k < 3; ++k)
      if (runBlockSum() != want) wrong.fetch_add(1);
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  IKUN_CHECK_EQ(wrong.load(), 0);
}

#if defined(IKUN_CUDA_EMULATED)
IKUN_TEST_CASE(schedules_agree, "serial and reverse schedules give the concurrent results, bit for bit") {
  auto everything = [] {
    std::vector<double> all;
    for (float v : runBlockSum()) all.push_back(v);
    for (double v : runShuffleVariants<double>()) all.push_back(v);
    for (int v : runShuffleVariants<int>()) all.push_back(v);
    std::vector<float> host = iota(512);
    DeviceBuffer<float> in(host), out(512);
    launch(neighbour<true>, dim3(2), dim3(256), 0, nullptr, in.get(), out.get());
    for (float v : out.download()) all.push_back(v);
    DeviceBuffer<unsigned> big(1024);
    launch(bigBlock, dim3(1), dim3(1024), 0, nullptr, big.get());
    for (unsigned v : big.download()) all.push_back(v);
    return all;
  };
  std::vector<double> concurrent;
  {
    ScheduleGuard g(Schedule::Concurrent);
    concurrent = everything();
  }
  for (Schedule s : {Schedule::Serial, Schedule::Reverse}) {
    ScheduleGuard g(s);
    IKUN_CHECK(everything() == concurrent, "results under %s", ikun::emu::scheduleName(s));
  }
}

IKUN_TEST_CASE(schedule_order, "serial runs threads (and blocks) in index order, reverse in reversed order") {
  const unsigned blocks = 3, threads = 64, n = blocks * threads;
  DeviceBuffer<unsigned> before(n), after(n), counter(2);
  for (Schedule s : {Schedule::Serial, Schedule::Reverse}) {
    ScheduleGuard g(s);
    counter.zero();
    launch(order, dim3(blocks), dim3(threads), 0, nullptr, before.get(), after.get(), counter.get());
    std::vector<unsigned> b = before.download(), a = after.download();
    for (unsigned k = 0; k < n; ++k) {
      unsigned block = k / threads, t = k % threads;
      unsigned want = s == Schedule::Serial ? k : (blocks - 1 - block) * threads + (threads - 1 - t);
      IKUN_CHECK_EQ(b[k], want, "start order under %s at %u", ikun::emu::scheduleName(s), k);
      IKUN_CHECK_EQ(a[k], want, "order after the barrier under %s at %u", ikun::emu::scheduleName(s), k);
    }
  }
}

// Not in the ThreadSanitizer program: the kernel has the race, and ThreadSanitizer reports it (as it should)
// under any schedule.
#if !defined(__SANITIZE_THREAD__)
IKUN_TEST_CASE(serial_schedules_expose_missing_barrier,
               "without its barrier, the neighbour kernel reads NaN fill: threads 0-254 in serial order, 255 in reverse") {
  // Deterministic where a race is not: in serial order thread t reads s[t + 1] before thread t + 1 has run;
  // in reverse order only the last thread reads ahead (s[0]). Each order exposes what the other hides.
  std::vector<float> host = iota(256);
  DeviceBuffer<float> in(host), out(256);
  for (Schedule s : {Schedule::Serial, Schedule::Reverse}) {
    ScheduleGuard g(s);
    launch(neighbour<false>, dim3(1), dim3(256), 0, nullptr, in.get(), out.get());
    std::vector<float> got = out.download();
    for (unsigned t = 0; t < 256; ++t) {
      bool stale = s == Schedule::Serial ? t < 255 : t == 255;
      if (stale)
        IKUN_CHECK(std::isnan(got[t]), "thread %u under %s read %f", t, ikun::emu::scheduleName(s), double(got[t]));
      else
        IKUN_CHECK_EQ(got[t], host[(t + 1) % 256], "thread %u under %s", t, ikun::emu::scheduleName(s));
    }
  }
}
#endif  // !__SANITIZE_THREAD__
#endif  // IKUN_CUDA_EMULATED

IKUN_TEST_CASE(launch_configuration_errors, "bad launches are reported by cudaGetLastError and run nothing") {
  DeviceBuffer<int> f(1);
  auto expectFailure = [&](dim3 grid, dim3 block, size_t dynamic, cudaStream_t stream, cudaError_t want, const char* what) {
    f.zero();
    cudaGetLastError();
    try {
      launch(flag, grid, block, dynamic, stream, f.get());
      IKUN_CHECK(false, "%s: the launch did not fail", what);
    } catch (const ikun::cuda::CudaError& e) {
      IKUN_CHECK_EQ(e.code(), want, "%s", what);
    }
    IKUN_CHECK_EQ(f.download()[0], 0, "%s: the kernel ran", what);
    IKUN_CHECK_EQ(cudaGetLastError(), cudaSuccess, "%s: launch() consumed the error", what);
  };
  expectFailure(dim3(1), dim3(1025), 0, nullptr, cudaErrorInvalidConfiguration, "1025 threads");
  expectFailure(dim3(1), dim3(1, 1025), 0, nullptr, cudaErrorInvalidConfiguration, "block y 1025");
  expectFailure(dim3(1), dim3(1, 1, 65), 0, nullptr, cudaErrorInvalidConfiguration, "block z 65");
  expectFailure(dim3(1), dim3(32, 32, 2), 0, nullptr, cudaErrorInvalidConfiguration, "2048 threads");
  expectFailure(dim3(1), dim3(0), 0, nullptr, cudaErrorInvalidConfiguration, "empty block");
  expectFailure(dim3(1, 65536), dim3(1), 0, nullptr, cudaErrorInvalidConfiguration, "grid y 65536");
  expectFailure(dim3(1, 1, 65536), dim3(1), 0, nullptr, cudaErrorInvalidConfiguration, "grid z 65536");
  expectFailure(dim3(2147483648u), dim3(1), 0, nullptr, cudaErrorInvalidConfiguration, "grid x 2^31");
  expectFailure(dim3(1), dim3(32), 48 * 1024 + 1, nullptr, cudaErrorInvalidValue, "48 KB + 1 dynamic, no opt-in");
  cudaStream_t gone;
  IKUN_CUDA_OK(cudaStreamCreate(&gone));
  IKUN_CUDA_OK(cudaStreamDestroy(gone));
  expectFailure(dim3(1), dim3(32), 0, gone, cudaErrorInvalidResourceHandle, "destroyed stream");
  // The largest legal shapes run.
  launch(flag, dim3(1), dim3(1024), 48 * 1024, nullptr, f.get());
  launch(flag, dim3(1), dim3(1, 1024), 0, nullptr, f.get());
  launch(flag, dim3(1), dim3(16, 1, 64), 0, nullptr, f.get());
  IKUN_CHECK_EQ(f.download()[0], 1);

  // Static + dynamic shared memory: once the emulator has seen the kernel's 16 KB static array, 40 KB dynamic
  // exceeds 48 KB; the opt-in allows up to 227 KB in total.
  DeviceBuffer<float> out(64);
  launch(staticShared16k<0>, dim3(1), dim3(64), 0, nullptr, out.get());
  try {
    launch(staticShared16k<0>, dim3(1), dim3(64), 40 * 1024, nullptr, out.get());
    IKUN_CHECK(false, "16 KB static + 40 KB dynamic must fail");
  } catch (const ikun::cuda::CudaError& e) {
    IKUN_CHECK_EQ(e.code(), cudaErrorInvalidValue);
  }
  IKUN_CUDA_FAILS(cudaFuncSetAttribute(staticShared16k<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, 212 * 1024),
                  cudaErrorInvalidValue);  // 16 + 212 > 227 KB
  IKUN_CHECK_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  IKUN_CUDA_OK(cudaFuncSetAttribute(staticShared16k<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, 211 * 1024));
  launch(staticShared16k<0>, dim3(1), dim3(64), 211 * 1024, nullptr, out.get());
  cudaFuncAttributes attributes;
  IKUN_CUDA_OK(cudaFuncGetAttributes(&attributes, staticShared16k<0>));
  IKUN_CHECK_EQ(attributes.sharedSizeBytes, size_t(16 * 1024));
  IKUN_CHECK_EQ(attributes.maxDynamicSharedSizeBytes, 211 * 1024);
  IKUN_CHECK_EQ(attributes.numRegs, 0);
  IKUN_CUDA_FAILS(cudaFuncSetAttribute(dynamicOnly<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024 + 1),
                  cudaErrorInvalidValue);
  cudaGetLastError();

#if defined(IKUN_CUDA_EMULATED)
  // Without launch()'s early return: an empty grid, and the error left for cudaGetLastError, per host thread.
  std::tuple<int*> args(f.get());
  ikun::emu::launchKernel(flag, dim3(0), dim3(32), 0, nullptr, args);
  IKUN_CHECK_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  IKUN_CHECK_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration, "peek does not reset");
  cudaError_t other = cudaErrorUnknown;
  std::thread([&] { other = cudaPeekAtLastError(); }).join();
  IKUN_CHECK_EQ(other, cudaSuccess, "another host thread has its own last error");
  IKUN_CHECK_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  IKUN_CHECK_EQ(cudaGetLastError(), cudaSuccess, "get resets");
#endif
}

#if defined(IKUN_CUDA_EMULATED)
IKUN_TEST_CASE(memory_limit_and_oom, "cudaMalloc refuses past the configured device memory; accounting; bad frees") {
  size_t freeBytes = 0, total = 0;
  IKUN_CUDA_OK(cudaMemGetInfo(&freeBytes, &total));
  const char* env = std::getenv("IKUN_EMULATED_MEMORY_MB");
  IKUN_CHECK_EQ(total, size_t(env ? std::atoll(env) : 4096) << 20, "IKUN_EMULATED_MEMORY_MB (default 4096)");
  cudaDeviceProp prop;
  IKUN_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  IKUN_CHECK_EQ(prop.totalGlobalMem, total);
  size_t usedBefore = total - freeBytes;
  IKUN_CUDA_OK(ikun::emu::setDeviceMemoryLimit(usedBefore + (1 << 20)));  // 1 MB left
  void* a = nullptr;
  void* b = reinterpret_cast<void*>(0x1);
  IKUN_CUDA_OK(cudaMalloc(&a, 600 * 1024));
  IKUN_CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0, "256-byte alignment");
  IKUN_CUDA_FAILS(cudaMalloc(&b, 600 * 1024), cudaErrorMemoryAllocation);
  IKUN_CHECK(b == nullptr, "failed cudaMalloc leaves a null pointer");
  IKUN_CHECK_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  IKUN_CUDA_OK(cudaMemGetInfo(&freeBytes, &total));
  IKUN_CHECK_EQ(total - freeBytes, usedBefore + 600 * 1024);
  IKUN_CUDA_FAILS(ikun::emu::setDeviceMemoryLimit(usedBefore), cudaErrorInvalidValue);
  IKUN_CUDA_OK(cudaFree(a));
  IKUN_CUDA_OK(cudaMalloc(&b, 600 * 1024));  // fits again once freed
  IKUN_CUDA_FAILS(cudaFree(static_cast<char*>(b) + 4), cudaErrorInvalidValue);  // not the start
  IKUN_CUDA_OK(cudaFree(b));
  IKUN_CUDA_FAILS(cudaFree(b), cudaErrorInvalidValue);  // twice
  IKUN_CUDA_OK(cudaFree(nullptr));
  IKUN_CUDA_FAILS(cudaMalloc(nullptr, 16), cudaErrorInvalidValue);
  IKUN_CUDA_OK(cudaMalloc(&a, 0));
  IKUN_CHECK(a == nullptr);
  cudaGetLastError();
  IKUN_CUDA_OK(ikun::emu::setDeviceMemoryLimit(total));
}
#endif

IKUN_TEST_CASE(memory_copies, "cudaMemcpy/Async/Peer, cudaMemset, pinned and registered host memory, pointer checks") {
  const size_t n = 1000;
  std::vector<int> host(n);
  std::iota(host.begin(), host.end(), 7);
  int *d1 = nullptr, *d2 = nullptr;
  IKUN_CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&d1), n * sizeof(int)));
  IKUN_CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&d2), n * sizeof(int)));
  cudaStream_t stream;
  IKUN_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  IKUN_CUDA_OK(cudaMemcpyAsync(d1, host.data(), n * sizeof(int), cudaMemcpyHostToDevice, stream));
  IKUN_CUDA_OK(cudaMemcpy(d2, d1, n * sizeof(int), cudaMemcpyDeviceToDevice));
  IKUN_CUDA_OK(cudaMemsetAsync(d1, 0, n * sizeof(int), stream));
  IKUN_CUDA_OK(cudaMemcpyPeerAsync(d1, 0, d2, 0, 10 * sizeof(int), stream));
  int* pinned = nullptr;
  IKUN_CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&pinned), n * sizeof(int), cudaHostAllocPortable));
  IKUN_CUDA_OK(cudaMemcpyAsync(pinned, d1, n * sizeof(int), cudaMemcpyDefault, stream));
  IKUN_CUDA_OK(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < n; ++i) IKUN_CHECK_EQ(pinned[i], i < 10 ? int(i) + 7 : 0, "at %zu", i);
  IKUN_CUDA_OK(cudaMemset(d2, 0xFF, 4));
  int first = 0;
  IKUN_CUDA_OK(cudaMemcpy(&first, d2, sizeof first, cudaMemcpyDeviceToHost));
  IKUN_CHECK_EQ(first, -1);

  // Pointers that do not fit the direction or run past an allocation.
  IKUN_CUDA_FAILS(cudaMemcpy(d1, d2, (n + 1) * sizeof(int), cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemcpy(host.data(), d1, 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemcpy(d1, host.data(), 4, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemcpy(d1, d2, 4, cudaMemcpyHostToHost), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemcpy(d1, d2, 4, static_cast<cudaMemcpyKind>(7)), cudaErrorInvalidMemcpyDirection);
  IKUN_CUDA_FAILS(cudaMemset(host.data(), 0, 4), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemset(d1 + n - 1, 0, 8), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaMemcpyPeerAsync(d1, 1, d2, 0, 4, stream), cudaErrorInvalidDevice);
  IKUN_CUDA_FAILS(cudaFree(pinned), cudaErrorInvalidValue);
  IKUN_CUDA_FAILS(cudaFreeHost(d1), cudaErrorInvalidValue);
  void* junk = nullptr;
  IKUN_CUDA_FAILS(cudaHostAlloc(&junk, 4, 0x100), cudaErrorInvalidValue);

  cudaPointerAttributes attributes;
  IKUN_CUDA_OK(cudaPointerGetAttributes(&attributes, d1 + 5));
  IKUN_CHECK_EQ(int(attributes.type), int(cudaMemoryTypeDevice));
  IKUN_CUDA_OK(cudaPointerGetAttributes(&attributes, pinned));
  IKUN_CHECK_EQ(int(attributes.type), int(cudaMemoryTypeHost));
  IKUN_CUDA_OK(cudaPointerGetAttributes(&attributes, host.data()));
  IKUN_CHECK_EQ(int(attributes.type), int(cudaMemoryTypeUnregistered));

  // Registered (pinned in place) host memory.
  IKUN_CUDA_OK(cudaHostRegister(host.data(), n * sizeof(int), cudaHostRegisterDefault));
  IKUN_CUDA_FAILS(cudaHostRegister(host.data() + 4, 16, 0), cudaErrorHostMemoryAlreadyRegistered);
  IKUN_CUDA_OK(cudaPointerGetAttributes(&attributes, host.data() + 3));
  IKUN_CHECK_EQ(int(attributes.type), int(cudaMemoryTypeHost));
  IKUN_CUDA_OK(cudaHostUnregister(host.data()));
  IKUN_CUDA_FAILS(cudaHostUnregister(host.data()), cudaErrorHostMemoryNotRegistered);

  // Stream-ordered allocation.
  void* a = nullptr;
  IKUN_CUDA_OK(cudaMallocAsync(&a, 1024, stream));
  IKUN_CUDA_OK(cudaFreeAsync(a, stream));
  cudaGetLastError();

  IKUN_CUDA_OK(cudaFreeHost(pinned));
  IKUN_CUDA_OK(cudaStreamDestroy(stream));
  IKUN_CUDA_OK(cudaFree(d1));
  IKUN_CUDA_OK(cudaFree(d2));
}

__device__ int deviceSymbol[4];

IKUN_TEST_CASE(symbols, "cudaMemcpyToSymbol/FromSymbol with offsets and bounds") {
  int in[3] = {5, 6, 7}, out[4] = {};
  IKUN_CUDA_OK(cudaMemcpyToSymbol(deviceSymbol, in, sizeof in, sizeof(int)));
  IKUN_CUDA_OK(cudaMemcpyFromSymbol(out, deviceSymbol, sizeof out));
  IKUN_CHECK_EQ(out[1], 5);
  IKUN_CHECK_EQ(out[3], 7);
  IKUN_CUDA_FAILS(cudaMemcpyToSymbol(deviceSymbol, in, sizeof in, 2 * sizeof(int)), cudaErrorInvalidValue);
  cudaGetLastError();
}

IKUN_TEST_CASE(streams_and_events, "streams, events, timing and invalid handles") {
  cudaStream_t s;
  IKUN_CUDA_OK(cudaStreamCreate(&s));
  IKUN_CUDA_FAILS(cudaStreamCreateWithFlags(&s, 0x10), cudaErrorInvalidValue);
  cudaEvent_t start, stop, untimed, never;
  IKUN_CUDA_OK(cudaEventCreate(&start));
  IKUN_CUDA_OK(cudaEventCreateWithFlags(&stop, cudaEventBlockingSync));
  IKUN_CUDA_OK(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming));
  IKUN_CUDA_OK(cudaEventCreate(&never));
  IKUN_CUDA_FAILS(cudaEventCreateWithFlags(&never, cudaEventInterprocess), cudaErrorInvalidValue);
  // As with the real runtime, an error stays the thread's last error until read: the launch check in
  // launch() would report it as the launch's.
  IKUN_CHECK_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  IKUN_CUDA_OK(cudaEventQuery(never));  // never recorded: complete
  IKUN_CUDA_OK(cudaEventRecord(start, s));
  std::vector<float> sums = runBlockSum();
  IKUN_CUDA_OK(cudaEventRecord(stop, s));
  IKUN_CUDA_OK(cudaEventRecord(untimed));
  IKUN_CUDA_OK(cudaStreamWaitEvent(s, stop));
  IKUN_CUDA_OK(cudaEventSynchronize(stop));
  IKUN_CUDA_OK(cudaEventQuery(stop));
  IKUN_CUDA_OK(cudaStreamQuery(s));
  float ms = -1;
  IKUN_CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
  IKUN_CHECK(ms >= 0.0f, "elapsed %f ms", double(ms));
  IKUN_CUDA_FAILS(cudaEventElapsedTime(&ms, start, untimed), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_FAILS(cudaEventElapsedTime(&ms, start, never), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_OK(cudaDeviceSynchronize());
  for (cudaEvent_t e : {start, stop, untimed, never}) IKUN_CUDA_OK(cudaEventDestroy(e));
  IKUN_CUDA_FAILS(cudaEventDestroy(start), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_FAILS(cudaEventRecord(start, s), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_OK(cudaStreamDestroy(s));
  IKUN_CUDA_FAILS(cudaStreamDestroy(s), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_FAILS(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);
  IKUN_CUDA_OK(cudaStreamSynchronize(nullptr));
  IKUN_CUDA_OK(cudaStreamSynchronize(cudaStreamPerThread));
  cudaGetLastError();
}

IKUN_TEST_CASE(device_queries, "device count, properties, attributes, versions, error names") {
  int count = 0, device = -1;
  IKUN_CUDA_OK(cudaGetDeviceCount(&count));
  IKUN_CHECK_EQ(count, 1);
  IKUN_CUDA_OK(cudaSetDevice(0));
  IKUN_CUDA_FAILS(cudaSetDevice(1), cudaErrorInvalidDevice);
  IKUN_CUDA_OK(cudaGetDevice(&device));
  IKUN_CHECK_EQ(device, 0);
  cudaDeviceProp p;
  IKUN_CUDA_OK(cudaGetDeviceProperties(&p, 0));
  IKUN_CUDA_FAILS(cudaGetDeviceProperties(&p, 1), cudaErrorInvalidDevice);
#if defined(IKUN_CUDA_EMULATED)
  int version = 0;
  IKUN_CHECK(std::strcmp(p.name, "ikun emulated CUDA device (host threads)") == 0, "name '%s'", p.name);
  IKUN_CHECK_EQ(p.multiProcessorCount, 132);
  IKUN_CUDA_OK(cudaRuntimeGetVersion(&version));
  IKUN_CHECK_EQ(version, 13000);
  IKUN_CUDA_OK(cudaDriverGetVersion(&version));
  IKUN_CHECK_EQ(version, 13000);
#endif
  IKUN_CHECK_EQ(p.major, 9);
  IKUN_CHECK_EQ(p.minor, 0);
  IKUN_CHECK_EQ(p.warpSize, 32);
  IKUN_CHECK_EQ(p.maxThreadsPerBlock, 1024);
  IKUN_CHECK_EQ(p.sharedMemPerBlock, size_t(48 * 1024));
  IKUN_CHECK_EQ(p.sharedMemPerBlockOptin, size_t(227 * 1024));
  const std::pair<cudaDeviceAttr, int> attributes[] = {
      {cudaDevAttrMultiProcessorCount, p.multiProcessorCount},
      {cudaDevAttrMaxThreadsPerBlock, p.maxThreadsPerBlock},
      {cudaDevAttrMaxBlockDimZ, p.maxThreadsDim[2]},
      {cudaDevAttrMaxGridDimY, p.maxGridSize[1]},
      {cudaDevAttrWarpSize, p.warpSize},
      {cudaDevAttrComputeCapabilityMajor, p.major},
      {cudaDevAttrMaxSharedMemoryPerBlockOptin, int(p.sharedMemPerBlockOptin)},
  };
  for (auto [attr, want] : attributes) {
    int value = -1;
    IKUN_CUDA_OK(cudaDeviceGetAttribute(&value, attr, 0));
    IKUN_CHECK_EQ(value, want, "attribute %d", int(attr));
  }
  int value = 0;
  IKUN_CUDA_FAILS(cudaDeviceGetAttribute(&value, static_cast<cudaDeviceAttr>(100), 0), cudaErrorInvalidValue);
  IKUN_CHECK(std::strcmp(cudaGetErrorName(cudaErrorMemoryAllocation), "cudaErrorMemoryAllocation") == 0);
  IKUN_CHECK(std::strcmp(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory") == 0);
  IKUN_CHECK(std::strcmp(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument") == 0);
  IKUN_CHECK(std::strcmp(cudaGetErrorName(static_cast<cudaError_t>(555)), "unrecognized error code") == 0);
  cudaGetLastError();
}

#if defined(IKUN_TESTS_CPU_KERNELS)
#include "../cpu/kernels.h"

// Only with IKUN_EMULATOR_TESTS_CPU_KERNELS=ON: the pattern for checking a CUDA kernel against its CPU kernel.
IKUN_TEST_CASE(cpu_kernels_linked, "a CUDA reduction agrees with the CPU kernel ikun::cpu::sum; the BLAS runs") {
  std::vector<float> host = iota(1000);
  std::vector<float> sums = runBlockSum();
  double gpu = 0;
  for (float v : sums) gpu += v;
  IKUN_CHECK_EQ(gpu, ikun::cpu::sum<float>(int64_t(host.size()), host.data()));
  std::vector<float> a(6, 1.0f), b(6, 2.0f), c(4, 0.0f);  // [2x3] x [3x2]
  ikun::cpu::gemm<float>(false, false, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
  for (float v : c) IKUN_CHECK_EQ(v, 6.0f);
}
#endif

#if defined(IKUN_CUDA_EMULATED)
namespace {
// Destroyed at exit after the runtime's teardown (constructed before the first runtime call, as a static of an
// addon would be): its cudaFree must get cudaErrorCudartUnloading, as from the real runtime.
struct TeardownProbe {
  void* pointer = nullptr;
  ~TeardownProbe() {
    if (!pointer) return;
    cudaError_t status = cudaFree(pointer);
    if (status != cudaErrorCudartUnloading) {
      std::fprintf(stderr, "teardown probe: cudaFree at exit returned %s, expected cudaErrorCudartUnloading\n",
                   cudaGetErrorName(status));
      std::fflush(stderr);
      std::_Exit(3);
    }
    std::printf("teardown probe: cudaFree at exit returned cudaErrorCudartUnloading\n");
    std::fflush(stdout);
  }
};
TeardownProbe teardownProbe;
}  // namespace

IKUN_TEST_CASE(teardown_unloading, "a static freed after the runtime's teardown gets cudaErrorCudartUnloading (checked at exit)") {
  IKUN_CUDA_OK(cudaMalloc(&teardownProbe.pointer, 64));
}
#endif

// ---------------------------------------------------------------------------------------------------------
// Planted bugs: each must be reported by the named tool (test/cuda/emulator.test.ts checks the report).

IKUN_PLANTED_CASE(planted_missing_barrier, "ThreadSanitizer", "shared-memory writes and reads with no __syncthreads between") {
  std::vector<float> host = iota(256);
  DeviceBuffer<float> in(host), out(256);
  launch(neighbour<false>, dim3(1), dim3(256), 0, nullptr, in.get(), out.get());
}

IKUN_PLANTED_CASE(planted_out_of_bounds, "AddressSanitizer", "a kernel reads one element past a cudaMalloc'd buffer") {
  const int n = 100;
  std::vector<float> host = iota(n);
  DeviceBuffer<float> in(host), out(n);
  launch(copyPlusOne, dim3(2), dim3(64), 0, nullptr, in.get(), out.get(), n, true);
}

IKUN_PLANTED_CASE(planted_shared_out_of_bounds, "AddressSanitizer", "a kernel reads one element past a shared array") {
  DeviceBuffer<float> out(64);
  launch(sharedOverrun, dim3(1), dim3(64), 0, nullptr, out.get());
}

IKUN_PLANTED_CASE(planted_divergent_barrier, "the emulator", "threads of one block wait at two different __syncthreads") {
  DeviceBuffer<int> out(64);
  launch(divergentBarrier, dim3(1), dim3(64), 0, nullptr, out.get());
}

IKUN_PLANTED_CASE(planted_partial_mask_shuffle, "the emulator", "__shfl_sync with mask 0x0000ffff") {
  DeviceBuffer<int> out(32);
  launch(partialMaskShuffle, dim3(1), dim3(32), 0, nullptr, out.get());
}

IKUN_PLANTED_CASE(planted_partial_warp_shuffle, "the emulator", "a full-mask shuffle in a 48-thread block (partial warp)") {
  DeviceBuffer<int> out(48);
  launch(shuffleAnyMask, dim3(1), dim3(48), 0, nullptr, out.get());
}

IKUN_PLANTED_CASE(planted_exited_lane_shuffle, "the emulator", "a full-mask shuffle after lanes of the warp returned") {
  DeviceBuffer<int> out(32);
  launch(exitedLaneShuffle, dim3(1), dim3(32), 0, nullptr, out.get(), 20);
}

IKUN_PLANTED_CASE(planted_deadlock, "the emulator", "lane 0 waits at __syncthreads while its warp waits for it in a shuffle") {
  DeviceBuffer<int> out(64);
  launch(barrierShuffleDeadlock, dim3(1), dim3(64), 0, nullptr, out.get());
}
