// The emulated CUDA device (see emulator.h for the model and README.md here for what it can and cannot
// check). Built only with IKUN_CUDA_EMULATE=ON (tests); never part of a shipped binary.
//
// Two ways to run a block. The serial schedules run its CUDA threads as fibers of the launching host thread
// (fiber.h), one at a time, the turn passing at barriers, collectives and exits; no locks, no system calls.
// The concurrent schedule runs them as host threads of a pool, for ThreadSanitizer; the rest of this comment
// is about that one.
//
// ThreadSanitizer must see exactly the ordering a GPU guarantees and no more, or it misses races:
// - the launcher hands each CUDA thread its work through that worker's own mutex (no lock shared by the
//   workers at start), so nothing orders the threads of a block except what the kernel does;
// - __syncthreads() is a mutex/condition-variable barrier (all threads of the block), warp collectives use a
//   mutex per warp (a collective orders the lanes of one warp only);
// - the bookkeeping counters that other threads read (deadlock detection) are relaxed atomics, which
//   ThreadSanitizer does not count as synchronisation;
// - the bookkeeping that needs a lock but is no synchronisation on a GPU (a thread's exit, the first use of a
//   shared array) runs Unobserved: otherwise a thread that exits before another reaches a shared-array
//   declaration would be ordered before it, and a missing barrier between them would go unreported whenever
//   the OS happens to run the threads one after another (seen on a loaded 2-core machine).
#include "emulator.h"

#include "fiber.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

thread_local uint3 threadIdx{0, 0, 0};
thread_local uint3 blockIdx{0, 0, 0};
thread_local dim3 blockDim;
thread_local dim3 gridDim;

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  unsigned flags;
  bool recorded;
  std::chrono::steady_clock::time_point when;
};

#if defined(__SANITIZE_THREAD__)
extern "C" {
void AnnotateIgnoreSyncBegin(const char* file, int line);
void AnnotateIgnoreSyncEnd(const char* file, int line);
void AnnotateIgnoreReadsBegin(const char* file, int line);
void AnnotateIgnoreReadsEnd(const char* file, int line);
void AnnotateIgnoreWritesBegin(const char* file, int line);
void AnnotateIgnoreWritesEnd(const char* file, int line);
}
#endif

namespace ikun::emu {
namespace {

// While one exists, ThreadSanitizer ignores this thread's synchronisation (its mutex operations order nothing)
// and memory accesses (allocations and fills included). Create it before taking the locks it covers.
class Unobserved {
 public:
  Unobserved() {
#if defined(__SANITIZE_THREAD__)
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
  }
  ~Unobserved() {
#if defined(__SANITIZE_THREAD__)
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
#endif
  }
  Unobserved(const Unobserved&) = delete;
  Unobserved& operator=(const Unobserved&) = delete;
};

// Limits of a compute capability 9.0 device (H100/H200).
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockX = 1024, kMaxBlockY = 1024, kMaxBlockZ = 64;
constexpr unsigned long long kMaxGridX = 2147483647ull;
constexpr unsigned kMaxGridYZ = 65535;
constexpr size_t kSharedPerBlock = 48 * 1024;         // without the opt-in attribute; also nvcc's static limit
constexpr size_t kSharedPerBlockOptin = 227 * 1024;   // sharedMemPerBlockOptin
constexpr size_t kDeviceAlignment = 256;              // cudaMalloc's alignment
constexpr size_t kWorkerStackBytes = 256 * 1024;      // host threads and fibers that run CUDA threads
constexpr int kVersion = 13000;
constexpr auto kDeadlockPoll = std::chrono::milliseconds(200);

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char buffer[1024];
  vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return buffer;
}

std::string describe(const CallSite& site) {
  return format("%s:%d (in %s)", site.file ? site.file : "?", site.line, site.function ? site.function : "?");
}

// ---------------------------------------------------------------------------------------------------------
// Kernels: what the emulator learns about each (name, attributes, static shared declarations seen so far).
struct SiteInfo {
  const SharedSite* site;
  size_t bytes;
  size_t align;
};
struct KernelRecord {
  std::string name;
  int maxDynamicShared = -1;  // cudaFuncAttributeMaxDynamicSharedMemorySize; -1 while not set
  int carveout = -1;
  std::vector<SiteInfo> sites;
  size_t staticBytes = 0;
};

std::mutex& kernelsMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::unordered_map<const void*, KernelRecord*>& kernels() {
  static auto* map = new std::unordered_map<const void*, KernelRecord*>;  // never destroyed (teardown)
  return *map;
}

std::string symbolName(const void* function) {
  Dl_info info{};
  // Only an exact match names the kernel: dladdr gives the nearest exported symbol below the address.
  if (dladdr(function, &info) && info.dli_sname && info.dli_saddr == function) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    std::string name = status == 0 && demangled ? demangled : info.dli_sname;
    std::free(demangled);
    return name;
  }
  // Not in the dynamic symbol table: internal linkage (static, anonymous namespace) or an executable linked
  // without -rdynamic. The call sites in the reports still name the function.
  return format("at %p (unnamed: internal linkage, or linked without -rdynamic)", function);
}

KernelRecord& kernelRecord(const void* function) {  // with kernelsMutex held
  KernelRecord*& record = kernels()[function];
  if (!record) {
    record = new KernelRecord;
    record->name = symbolName(function);
  }
  return *record;
}

// ---------------------------------------------------------------------------------------------------------
// Blocks and threads.
enum class Wait : int { Running, Barrier, Collective, Exited };

struct FiberWorker;

struct Slot {                     // one per CUDA thread of the block
  FiberWorker* worker = nullptr;  // serial schedules: the fiber running the thread, null before it starts
  std::atomic<int> wait{0};       // a Wait; read by the deadlock report of another thread
  std::atomic<const char*> what{nullptr};
  std::atomic<const char*> file{nullptr};
  std::atomic<int> line{0};
};

struct Warp {
  std::mutex m;  // concurrent schedule (the serial ones run on one host thread and take no locks)
  std::condition_variable cv;
  unsigned lanes = 0;  // threads in this warp: 32, fewer in the last warp of a block that is not a multiple
  unsigned arrived = 0;
  unsigned exited = 0;
  uint64_t generation = 0;
  detail::Collective op{};
  int type = 0;
  uint64_t in[32], out[32];
  int param[32], width[32];
  CallSite site[32];
};

struct SharedBuffer {
  const SharedSite* site;
  void* data;
  size_t bytes;
};

struct BlockRun {
  // The launch.
  KernelRecord* kernel = nullptr;
  void (*function)() = nullptr;
  detail::Invoker invoker = nullptr;
  const void* arguments = nullptr;
  dim3 grid, block;
  unsigned threads = 0;
  size_t dynamicBytes = 0;
  bool optedIn = false;  // the kernel has cudaFuncAttributeMaxDynamicSharedMemorySize set
  Schedule schedule = Schedule::Concurrent;
  bool serial = false;  // Serial or Reverse: every CUDA thread of the block a fiber on the launching thread
  FiberContext host;    // serial schedules: the launching host thread, resumed when the block is done

  // The block.
  uint3 index{0, 0, 0};
  std::vector<SharedBuffer> known;  // filled before the block starts; read-only while it runs
  void* dynamic = nullptr;

  std::mutex m;  // concurrent schedule: barrier, exits, shared arrays first seen in this block
  std::condition_variable barrierCv;
  std::vector<SharedBuffer> discovered;
  size_t staticBytes = 0;
  unsigned live = 0;  // threads that have not exited
  unsigned arrived = 0;
  uint64_t generation = 0;
  detail::Barrier barrierKind{};
  CallSite barrierSite{};
  int accumulator = 0;
  int result = 0;
  // (live << 32) | blocked, relaxed: all live threads blocked and none able to release the others is a deadlock.
  std::atomic<uint64_t> liveBlocked{0};
  std::unique_ptr<Slot[]> slots;
  std::unique_ptr<Warp[]> warps;
  unsigned warpCount = 0;
  uint64_t runnable[kMaxThreadsPerBlock / 64] = {};  // serial schedules: not started, or released from a wait

  std::mutex doneMutex;
  std::condition_variable doneCv;
  unsigned remaining = 0;
};

struct ThreadContext {
  BlockRun* run;
  unsigned tid;  // linear thread index in the block
  unsigned warp;
  unsigned lane;
  uint3 index;   // threadIdx
};

ThreadContext threadContext(BlockRun& r, unsigned tid) {
  return ThreadContext{&r, tid, tid / 32, tid % 32,
                       uint3{tid % r.block.x, (tid / r.block.x) % r.block.y, tid / (r.block.x * r.block.y)}};
}
thread_local ThreadContext* t_context = nullptr;

std::string threadName(const BlockRun& run, unsigned tid) {
  unsigned x = tid % run.block.x, y = (tid / run.block.x) % run.block.y, z = tid / (run.block.x * run.block.y);
  return format("(%u,%u,%u)", x, y, z);
}

// ---------------------------------------------------------------------------------------------------------
// Hard errors: one report (other threads that fail at the same moment wait), then abort.
[[noreturn]] void fail(const std::string& message) {
  static std::mutex* once = new std::mutex;
  once->lock();
  std::string where;
  if (ThreadContext* c = t_context) {
    const BlockRun& r = *c->run;
    where = format("\n  in kernel %s, block (%u,%u,%u) of grid (%u,%u,%u), thread %s (linear %u, warp %u, lane %u) "
                   "of block (%u,%u,%u); schedule %s",
                   r.kernel->name.c_str(), r.index.x, r.index.y, r.index.z, r.grid.x, r.grid.y, r.grid.z,
                   threadName(r, c->tid).c_str(), c->tid, c->warp, c->lane, r.block.x, r.block.y, r.block.z,
                   scheduleName(r.schedule));
  }
  std::fprintf(stderr, "\nikun CUDA emulator: hard error: %s%s\n", message.c_str(), where.c_str());
  std::fflush(stderr);
  std::abort();
}

ThreadContext& requireKernel(const char* what, const CallSite& site) {
  if (!t_context) fail(format("%s called outside a kernel at %s", what, describe(site).c_str()));
  return *t_context;
}

// "threads 0-31 at X; threads 32-63 exited": what every thread of the block is doing, for deadlock reports.
std::string blockState(const BlockRun& r) {
  std::string out;
  unsigned start = 0;
  auto key = [&](unsigned t) {
    const Slot& s = r.slots[t];
    int wait = s.wait.load(std::memory_order_relaxed);
    if (wait == int(Wait::Exited)) return std::string("exited");
    if (wait == int(Wait::Running)) return std::string("running");
    return format("waiting at %s, %s:%d", s.what.load(std::memory_order_relaxed), s.file.load(std::memory_order_relaxed),
                  s.line.load(std::memory_order_relaxed));
  };
  for (unsigned t = 1; t <= r.threads; ++t) {
    if (t < r.threads && key(t) == key(start)) continue;
    out += t - 1 == start ? format("\n    thread %u: %s", start, key(start).c_str())
                          : format("\n    threads %u-%u: %s", start, t - 1, key(start).c_str());
    start = t;
  }
  return out;
}

[[noreturn]] void deadlock(const BlockRun& r) {
  fail("deadlock: every thread of the block that has not exited waits, and none of the barriers or warp "
       "collectives they wait at can complete (on a GPU this hangs or is undefined):" + blockState(r));
}

void markWaiting(Slot& s, Wait kind, const char* what, const CallSite& site) {
  s.what.store(what, std::memory_order_relaxed);
  s.file.store(site.file, std::memory_order_relaxed);
  s.line.store(site.line, std::memory_order_relaxed);
  s.wait.store(int(kind), std::memory_order_relaxed);
}
void markRunning(Slot& s) { s.wait.store(int(Wait::Running), std::memory_order_relaxed); }

// --- serial schedules: one thread at a time; the turn passes only at barriers, collectives and exit. ---
// Every CUDA thread of the block is a fiber on the launching host thread (fiber.h); none of this takes a lock.
// A thread runs until it waits or exits; the turn then goes to the runnable thread that comes first in
// schedule order (the lowest index under Serial, the highest under Reverse), which is either a thread that
// has not started or one that a completed barrier or collective released.
void setRunnable(BlockRun& r, unsigned t, bool on) {
  if (on)
    r.runnable[t / 64] |= 1ull << (t % 64);
  else
    r.runnable[t / 64] &= ~(1ull << (t % 64));
}
int nextRunnable(const BlockRun& r) {
  constexpr int words = kMaxThreadsPerBlock / 64;
  if (r.schedule == Schedule::Reverse) {
    for (int w = words - 1; w >= 0; --w)
      if (r.runnable[w]) return w * 64 + 63 - __builtin_clzll(r.runnable[w]);
  } else {
    for (int w = 0; w < words; ++w)
      if (r.runnable[w]) return w * 64 + __builtin_ctzll(r.runnable[w]);
  }
  return -1;
}

// A fiber of the pool and the chain of CUDA threads it runs: it starts thread `first`; each time its thread
// exits and the next thread in order has not started, it runs that one too on the same stack (so a kernel
// without barriers runs its block as a plain loop, without a single switch). The chain ends when the next
// thread is one that waits on a fiber of its own: the fiber then resumes that one and goes back to the pool.
struct FiberWorker {
  Fiber* fiber = nullptr;
  BlockRun* run = nullptr;
  unsigned first = 0;
};

class FiberPool {
 public:
  // An idle fiber (with the launch mutex held): one whose chain ended, or a new one.
  FiberWorker* take() {
    if (idle_.empty()) {
      auto* w = new FiberWorker;
      w->fiber = createFiber(&fiberEntry, w, kWorkerStackBytes, unsigned(created_++));
      return w;
    }
    FiberWorker* w = idle_.back();
    idle_.pop_back();
    return w;
  }
  void park(FiberWorker* w) { idle_.push_back(w); }

 private:
  [[noreturn]] static void fiberEntry(void* worker);
  std::vector<FiberWorker*> idle_;
  size_t created_ = 0;
};

FiberPool& fiberPool() {
  static FiberPool* p = new FiberPool;  // never destroyed, like the host-thread pool
  return *p;
}

// Makes c the CUDA thread that the built-in variables and the emulator's calls on this host thread describe
// (the block-wide ones, blockIdx/blockDim/gridDim, are set once per block by the launch).
void enterThread(ThreadContext& c) {
  threadIdx = c.index;
  t_context = &c;
}

// The turn passes from the running thread c, which waits (it is not runnable) or has just released a barrier
// or collective (it is runnable again, and keeps the turn if it comes first). Returns when it is c's turn.
void passTurn(BlockRun& r, ThreadContext& c) {
  int next = nextRunnable(r);
  if (next < 0) deadlock(r);  // c has not exited, so the block is not done: nothing can run
  if (unsigned(next) == c.tid) return;
  FiberWorker* target = r.slots[next].worker;
  if (!target) {  // a thread that has not started: on a fiber of its own, since c's stack is in use
    target = fiberPool().take();
    target->run = &r;
    target->first = unsigned(next);
  }
  switchFiber(r.slots[c.tid].worker->fiber->context, target->fiber->context);
  enterThread(c);
}

// --- concurrent schedule: wait on a condition variable until the operation's generation moves on. ---
void waitReleased(BlockRun& r, std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  const uint64_t& generation, uint64_t mine) {
  r.liveBlocked.fetch_add(1, std::memory_order_relaxed);
  int stuck = 0;
  while (generation == mine) {
    if (cv.wait_for(lock, kDeadlockPoll) == std::cv_status::timeout && generation == mine) {
      uint64_t state = r.liveBlocked.load(std::memory_order_relaxed);
      // Twice in a row, so that a report never rests on one instant.
      stuck = (state >> 32) == (state & 0xffffffffu) ? stuck + 1 : 0;
      if (stuck >= 2) deadlock(r);
    }
  }
}

// With r.m held and every live thread arrived: releases the barrier. waiters: threads blocked in it;
// exiting: the completing thread is exiting (its live count goes in the same atomic step).
void completeBarrier(BlockRun& r, unsigned waiters, bool exiting) {
  r.result = r.accumulator;
  r.arrived = 0;
  ++r.generation;
  if (r.serial) {
    for (unsigned t = 0; t < r.threads; ++t)
      if (r.slots[t].wait.load(std::memory_order_relaxed) != int(Wait::Exited)) setRunnable(r, t, true);
  } else {
    r.liveBlocked.fetch_sub(waiters + (exiting ? 1ull << 32 : 0), std::memory_order_relaxed);
    r.barrierCv.notify_all();
  }
}

const char* barrierName(detail::Barrier kind) {
  switch (kind) {
    case detail::Barrier::Sync: return "__syncthreads()";
    case detail::Barrier::Count: return "__syncthreads_count()";
    case detail::Barrier::And: return "__syncthreads_and()";
    case detail::Barrier::Or: return "__syncthreads_or()";
  }
  return "?";
}

const char* collectiveName(detail::Collective op) {
  using C = detail::Collective;
  switch (op) {
    case C::SyncWarp: return "__syncwarp";
    case C::ShflIdx: return "__shfl_sync";
    case C::ShflUp: return "__shfl_up_sync";
    case C::ShflDown: return "__shfl_down_sync";
    case C::ShflXor: return "__shfl_xor_sync";
    case C::Ballot: return "__ballot_sync";
    case C::Any: return "__any_sync";
    case C::All: return "__all_sync";
    case C::ReduceAdd: return "__reduce_add_sync";
    case C::ReduceMin: return "__reduce_min_sync";
    case C::ReduceMax: return "__reduce_max_sync";
    case C::ReduceAnd: return "__reduce_and_sync";
    case C::ReduceOr: return "__reduce_or_sync";
    case C::ReduceXor: return "__reduce_xor_sync";
  }
  return "?";
}

bool isShuffle(detail::Collective op) {
  using C = detail::Collective;
  return op == C::ShflIdx || op == C::ShflUp || op == C::ShflDown || op == C::ShflXor;
}

// The results of a collective once all 32 lanes have arrived (PTX shfl.sync / vote.sync / redux.sync).
void computeCollective(Warp& w) {
  using C = detail::Collective;
  unsigned votes = 0;
  for (unsigned l = 0; l < 32; ++l) votes |= (w.in[l] != 0 ? 1u : 0u) << l;
  bool isSigned = (w.type & 2) != 0;
  for (unsigned l = 0; l < 32; ++l) {
    int width = w.width[l];
    int lane = int(l);
    int first = lane & ~(width - 1);  // the lane's segment of `width` lanes
    int last = first + width - 1;
    unsigned b = unsigned(w.param[l]) & 31u;  // PTX uses the low five bits of the lane operand
    int source = lane;
    switch (w.op) {
      case C::ShflIdx: source = first | int(b & unsigned(width - 1)); break;
      case C::ShflUp: source = lane - int(b) >= first ? lane - int(b) : lane; break;
      case C::ShflDown: source = lane + int(b) <= last ? lane + int(b) : lane; break;
      case C::ShflXor: source = (lane ^ int(b)) <= last ? lane ^ int(b) : lane; break;
      default: break;
    }
    uint64_t result = 0;
    switch (w.op) {
      case C::SyncWarp: break;
      case C::ShflIdx: case C::ShflUp: case C::ShflDown: case C::ShflXor: result = w.in[source]; break;
      case C::Ballot: result = votes; break;
      case C::Any: result = votes != 0; break;
      case C::All: result = votes == 0xffffffffu; break;
      case C::ReduceAdd: case C::ReduceMin: case C::ReduceMax: case C::ReduceAnd: case C::ReduceOr: case C::ReduceXor: {
        uint32_t acc = uint32_t(w.in[0]);
        for (unsigned k = 1; k < 32; ++k) {
          uint32_t v = uint32_t(w.in[k]);
          switch (w.op) {
            case C::ReduceAdd: acc += v; break;
            case C::ReduceMin: acc = isSigned ? uint32_t(std::min(int32_t(acc), int32_t(v))) : std::min(acc, v); break;
            case C::ReduceMax: acc = isSigned ? uint32_t(std::max(int32_t(acc), int32_t(v))) : std::max(acc, v); break;
            case C::ReduceAnd: acc &= v; break;
            case C::ReduceOr: acc |= v; break;
            default: acc ^= v; break;
          }
        }
        result = acc;
        break;
      }
    }
    w.out[l] = result;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The pool of host threads that run CUDA threads: created on demand up to the largest block, reused for every
// block and launch, never destroyed (they wait idle; the process may exit at any time).
struct Worker {
  std::mutex m;
  std::condition_variable cv;
  BlockRun* run = nullptr;
  unsigned tid = 0;
};

void runThread(BlockRun& r, unsigned tid);

void* workerMain(void* argument) {
  Worker* w = static_cast<Worker*>(argument);
  for (;;) {
    BlockRun* run;
    unsigned tid;
    {
      std::unique_lock<std::mutex> lock(w->m);
      w->cv.wait(lock, [&] { return w->run != nullptr; });
      run = w->run;
      tid = w->tid;
      w->run = nullptr;
    }
    runThread(*run, tid);
  }
  return nullptr;
}

class Pool {
 public:
  void ensure(unsigned count) {  // with the launch mutex held
    while (workers_.size() < count) {
      auto* w = new Worker;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, kWorkerStackBytes);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t thread;
      int status = pthread_create(&thread, &attr, &workerMain, w);
      pthread_attr_destroy(&attr);
      if (status != 0)
        fail(format("could not start host thread %zu for the CUDA threads of a block: %s", workers_.size(),
                    std::strerror(status)));
      workers_.push_back(w);
    }
  }
  void start(unsigned tid, BlockRun* run) {
    Worker* w = workers_[tid];
    std::lock_guard<std::mutex> lock(w->m);
    w->run = run;
    w->tid = tid;
    w->cv.notify_one();
  }

 private:
  std::vector<Worker*> workers_;
};

std::mutex& launchMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

// ---------------------------------------------------------------------------------------------------------
// Runtime state: process-wide, never destroyed, so that calls during teardown get cudaErrorCudartUnloading
// instead of touching freed memory.
thread_local cudaError_t t_lastError = cudaSuccess;
thread_local int t_device = 0;
std::atomic<bool> g_unloading{false};
std::atomic<int> g_schedule{-1};

struct Region {
  size_t size;
  size_t accounted;
  enum Kind { Device, Pinned, Registered } kind;
};
struct Memory {
  std::mutex m;
  std::map<uintptr_t, Region> regions;  // device allocations and pinned/registered host ranges, disjoint
  size_t used = 0;
  size_t limit = 0;
};
Memory& memory() {
  static Memory* m = new Memory;
  return *m;
}

struct Handles {
  std::mutex m;
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
};
Handles& handles() {
  static Handles* h = new Handles;
  return *h;
}

size_t parseMemoryLimit() {
  const char* text = std::getenv("IKUN_EMULATED_MEMORY_MB");
  if (!text || !*text) return size_t(4096) << 20;
  char* end = nullptr;
  unsigned long long mb = std::strtoull(text, &end, 10);
  if (*end != '\0' || mb == 0 || mb > (1ull << 24))
    fail(format("IKUN_EMULATED_MEMORY_MB must be a whole number of megabytes from 1 to %llu, got '%s'", 1ull << 24, text));
  return size_t(mb) << 20;
}

void runtimeInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    memory().limit = parseMemoryLimit();
    // As the CUDA runtime: teardown registered at first use, so objects destroyed after it (statics made
    // before the first call) get cudaErrorCudartUnloading from their cudaFree.
    std::atexit([] { g_unloading.store(true); });
  });
}

cudaError_t record(cudaError_t status) {
  if (status != cudaSuccess && status != cudaErrorNotReady) t_lastError = status;
  return status;
}

// Every runtime entry point: initialise, refuse device-side calls and calls during teardown, record errors.
template <class F>
cudaError_t api(const char* name, F body) {
  if (t_context) fail(format("%s called from kernel code: the emulator has no device-side runtime", name));
  runtimeInit();
  if (g_unloading.load()) return record(cudaErrorCudartUnloading);
  return record(body());
}

bool validStream(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  std::lock_guard<std::mutex> lock(handles().m);
  return handles().streams.count(s) != 0;
}
bool validEvent(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(handles().m);
  return e != nullptr && handles().events.count(e) != 0;
}

// The region containing address p (with memory().m held), or nullptr.
const Region* containing(uintptr_t p, uintptr_t* base) {
  auto& regions = memory().regions;
  auto it = regions.upper_bound(p);
  if (it == regions.begin()) return nullptr;
  --it;
  if (p >= it->first + it->second.size) return nullptr;
  *base = it->first;
  return &it->second;
}
bool overlaps(uintptr_t p, size_t size) {
  auto& regions = memory().regions;
  auto it = regions.upper_bound(p + size - 1);
  if (it == regions.begin()) return false;
  --it;
  return it->first + it->second.size > p;
}

// Is [p, p + count) device memory (inside one cudaMalloc allocation)? Host memory (not inside one)?
enum class Space { Device, Host, Invalid };
Space classify(const void* p, size_t count) {
  std::lock_guard<std::mutex> lock(memory().m);
  uintptr_t base = 0;
  const Region* r = containing(uintptr_t(p), &base);
  if (!r || r->kind != Region::Device) return Space::Host;
  return uintptr_t(p) + count <= base + r->size ? Space::Device : Space::Invalid;
}

// Checks a copy's pointers against its kind as the runtime does (device side inside an allocation, host
// side not in device memory: on a GPU, device memory is not addressable from the host).
cudaError_t checkCopy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return cudaErrorInvalidValue;
  Space d = classify(dst, count), s = classify(src, count);
  if (d == Space::Invalid || s == Space::Invalid) return cudaErrorInvalidValue;  // runs past an allocation
  bool dstDevice = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool srcDevice = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault && ((d == Space::Device) != dstDevice || (s == Space::Device) != srcDevice))
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  cudaError_t status = checkCopy(dst, src, count, kind);
  // A copy within device memory is device work, skipped with the kernels; copies to and from the host still
  // run (what the host uploads and reads back).
  const bool deviceWork = kind == cudaMemcpyDeviceToDevice ||
                          (kind == cudaMemcpyDefault && classify(dst, count) == Space::Device &&
                           classify(src, count) == Space::Device);
  // overlap is a bug ASan reports
  if (status == cudaSuccess && count && !(deviceWork && kernelsSkipped())) std::memcpy(dst, src, count);
  return status;
}

cudaError_t allocateDevice(void** devPtr, size_t size) {
  if (!devPtr) return cudaErrorInvalidValue;
  *devPtr = nullptr;
  if (size == 0) return cudaSuccess;
  size_t accounted = (size + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment;
  Memory& mem = memory();
  std::lock_guard<std::mutex> lock(mem.m);
  if (accounted < size || accounted > mem.limit - mem.used) return cudaErrorMemoryAllocation;
  void* p = nullptr;
  // The exact size (not rounded up), so that AddressSanitizer reports a read one element past the end.
  if (posix_memalign(&p, kDeviceAlignment, size) != 0) return cudaErrorMemoryAllocation;
  // Like shared memory: reading memory nobody wrote gives NaN, not a lucky zero; zeros when kernels are
  // skipped (nothing computes the results the host reads then).
  std::memset(p, kernelsSkipped() ? 0 : 0xFF, size);
  mem.regions[uintptr_t(p)] = Region{size, accounted, Region::Device};
  mem.used += accounted;
  *devPtr = p;
  return cudaSuccess;
}

cudaError_t freeRegion(void* p, Region::Kind kind) {
  if (!p) return cudaSuccess;
  Memory& mem = memory();
  std::lock_guard<std::mutex> lock(mem.m);
  auto it = mem.regions.find(uintptr_t(p));
  if (it == mem.regions.end() || it->second.kind != kind) return cudaErrorInvalidValue;
  mem.used -= it->second.accounted;
  mem.regions.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t allocateHost(void** ptr, size_t size, unsigned flags) {
  if (!ptr) return cudaErrorInvalidValue;
  if (flags & ~unsigned(cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined))
    return cudaErrorInvalidValue;
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  void* p = nullptr;
  if (posix_memalign(&p, 4096, size) != 0) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(memory().m);
  memory().regions[uintptr_t(p)] = Region{size, 0, Region::Pinned};
  *ptr = p;
  return cudaSuccess;
}

void fillProperties(cudaDeviceProp& p) {
  std::memset(&p, 0, sizeof p);
  std::snprintf(p.name, sizeof p.name, "%s", "ikun emulated CUDA device (host threads)");
  p.totalGlobalMem = memory().limit;
  p.sharedMemPerBlock = kSharedPerBlock;
  p.regsPerBlock = 65536;
  p.warpSize = 32;
  p.memPitch = 2147483647;
  p.maxThreadsPerBlock = int(kMaxThreadsPerBlock);
  p.maxThreadsDim[0] = int(kMaxBlockX);
  p.maxThreadsDim[1] = int(kMaxBlockY);
  p.maxThreadsDim[2] = int(kMaxBlockZ);
  p.maxGridSize[0] = int(kMaxGridX);
  p.maxGridSize[1] = int(kMaxGridYZ);
  p.maxGridSize[2] = int(kMaxGridYZ);
  p.totalConstMem = 65536;
  p.major = 9;
  p.minor = 0;
  p.multiProcessorCount = 132;
  p.canMapHostMemory = 1;
  p.concurrentKernels = 1;
  p.asyncEngineCount = 2;
  p.unifiedAddressing = 1;
  p.memoryBusWidth = 6144;
  p.l2CacheSize = 50 * 1024 * 1024;
  p.maxThreadsPerMultiProcessor = 2048;
  p.sharedMemPerMultiprocessor = 228 * 1024;
  p.regsPerMultiprocessor = 65536;
  p.managedMemory = 0;      // no cudaMallocManaged
  p.cooperativeLaunch = 0;  // no cooperative launches (grid-wide sync cannot run blocks one after another)
  p.sharedMemPerBlockOptin = kSharedPerBlockOptin;
  p.maxBlocksPerMultiProcessor = 32;
  p.reservedSharedMemPerBlock = 1024;
  p.hostRegisterSupported = 1;
  p.memoryPoolsSupported = 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Schedules and settings.
const char* scheduleName(Schedule s) {
  switch (s) {
    case Schedule::Concurrent: return "concurrent";
    case Schedule::Serial: return "serial";
    case Schedule::Reverse: return "reverse";
  }
  return "?";
}

void setSchedule(Schedule s) { g_schedule.store(int(s)); }

bool kernelsSkipped() {
  static const bool skipped = [] {
    const char* text = std::getenv("IKUN_CUDA_EMULATE_KERNELS");
    if (!text || !*text || std::string(text) == "run") return false;
    if (std::string(text) == "skip") return true;
    fail(format("IKUN_CUDA_EMULATE_KERNELS must be 'run' or 'skip', got '%s'", text));
  }();
  return skipped;
}

Schedule schedule() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* text = std::getenv("IKUN_CUDA_EMULATE_SCHEDULE");
    // The default: Serial (fibers, fast and deterministic), except under ThreadSanitizer, which finds races
    // only where threads really run at once.
#if defined(__SANITIZE_THREAD__)
    Schedule s = Schedule::Concurrent;
#else
    Schedule s = Schedule::Serial;
#endif
    if (text && *text) {
      std::string v = text;
      if (v == "concurrent") s = Schedule::Concurrent;
      else if (v == "serial") s = Schedule::Serial;
      else if (v == "reverse") s = Schedule::Reverse;
      else fail(format("IKUN_CUDA_EMULATE_SCHEDULE must be 'concurrent', 'serial' or 'reverse', got '%s'", text));
    }
    int unset = -1;
    g_schedule.compare_exchange_strong(unset, int(s));  // a setSchedule() call made earlier wins
  });
  return Schedule(g_schedule.load());
}

cudaError_t setDeviceMemoryLimit(size_t bytes) {
  runtimeInit();
  std::lock_guard<std::mutex> lock(memory().m);
  if (bytes < memory().used) return cudaErrorInvalidValue;
  memory().limit = bytes;
  return cudaSuccess;
}

void hardError(const char* what, CallSite site) { fail(format("%s at %s", what, describe(site).c_str())); }

// ---------------------------------------------------------------------------------------------------------
// Shared memory.
void* sharedArray(const SharedSite* site, size_t bytes, size_t align) {
  CallSite where{site->file, site->line, "IKUN_SHARED_ARRAY"};
  ThreadContext& c = requireKernel("IKUN_SHARED_ARRAY", where);
  BlockRun& r = *c.run;
  for (const SharedBuffer& b : r.known)
    if (b.site == site) return b.data;
  // First seen in this block (the kernel's first block, or a branch not taken before). Concurrent schedule:
  // Unobserved, because the lock (and the first thread's allocation and fill) must not order the threads
  // that meet here; the serial schedules run one thread at a time and need no lock.
  std::optional<Unobserved> unobserved;
  std::unique_lock<std::mutex> lock(r.m, std::defer_lock);
  if (!r.serial) {
    unobserved.emplace();
    lock.lock();
  }
  for (const SharedBuffer& b : r.discovered)
    if (b.site == site) return b.data;
  const size_t counted = site->hardware ? bytes : 0;  // emulation scratch is not the kernel's shared memory
  size_t total = r.staticBytes + counted;
  if (total > kSharedPerBlock)
    fail(format("the kernel declares %zu bytes of static shared memory (the array at %s:%d adds %zu); nvcc refuses "
                "more than %zu: use dynamic shared memory with cudaFuncSetAttribute",
                total, site->file, site->line, bytes, kSharedPerBlock));
  size_t limit = r.optedIn ? kSharedPerBlockOptin : kSharedPerBlock;
  if (total + r.dynamicBytes > limit)
    fail(format("static shared memory (%zu bytes, the array at %s:%d included) plus the launch's %zu dynamic bytes "
                "exceed the %zu bytes a block may use%s; a GPU refuses this launch with cudaErrorInvalidValue (the "
                "emulator learns a kernel's static shared memory only when it runs it)",
                total, site->file, site->line, r.dynamicBytes, limit,
                r.optedIn ? "" : " without cudaFuncAttributeMaxDynamicSharedMemorySize"));
  void* data = nullptr;
  if (posix_memalign(&data, std::max<size_t>(align, 16), bytes) != 0) fail("out of host memory for shared memory");
  std::memset(data, 0xFF, bytes);
  r.discovered.push_back(SharedBuffer{site, data, bytes});
  r.staticBytes = total;
  std::lock_guard<std::mutex> kernelsLock(kernelsMutex());
  r.kernel->sites.push_back(SiteInfo{site, bytes, align});
  r.kernel->staticBytes += counted;
  return data;
}

void* dynamicShared() {
  ThreadContext& c = requireKernel("dynamicShared()", CallSite::here());
  return c.run->dynamic;
}

// ---------------------------------------------------------------------------------------------------------
// Barriers and warp collectives.
namespace detail {

int blockBarrier(Barrier kind, int predicate, const char* file, int line, const char* function) {
  CallSite site{file, line, function};
  ThreadContext& c = requireKernel(barrierName(kind), site);
  BlockRun& r = *c.run;
  Slot& me = r.slots[c.tid];
  std::unique_lock<std::mutex> lock(r.m, std::defer_lock);
  if (!r.serial) lock.lock();
  if (r.arrived == 0) {
    r.barrierKind = kind;
    r.barrierSite = site;
    r.accumulator = kind == Barrier::And ? 1 : 0;
  } else if (kind != r.barrierKind || line != r.barrierSite.line ||
             (file != r.barrierSite.file && std::strcmp(file, r.barrierSite.file) != 0)) {
    fail(format("divergent barrier: this thread reached %s at %s while %u thread(s) of the block wait at %s at %s. "
                "All threads of a block that have not exited must reach the same barrier (on a GPU: a hang or a "
                "wrong result).",
                barrierName(kind), describe(site).c_str(), r.arrived, barrierName(r.barrierKind),
                describe(r.barrierSite).c_str()) +
         "\n  the block:" + blockState(r));
  }
  if (kind == Barrier::Count) r.accumulator += predicate;
  if (kind == Barrier::And) r.accumulator &= predicate;
  if (kind == Barrier::Or) r.accumulator |= predicate;
  markWaiting(me, Wait::Barrier, barrierName(kind), site);
  if (++r.arrived == r.live) {
    completeBarrier(r, r.arrived - 1, false);
    int result = r.result;
    markRunning(me);
    if (r.serial) passTurn(r, c);  // the first thread in order runs next, maybe this one
    return result;
  }
  uint64_t mine = r.generation;
  if (r.serial) {
    setRunnable(r, c.tid, false);
    passTurn(r, c);  // back when the barrier has completed and the turn came round (r.result unchanged:
                     // the next barrier cannot complete without this thread)
  } else {
    waitReleased(r, lock, r.barrierCv, r.generation, mine);
  }
  markRunning(me);
  return r.result;
}

uint64_t warpCollective(Collective op, unsigned mask, uint64_t value, int type, int param, int width, CallSite site) {
  const char* name = collectiveName(op);
  ThreadContext& c = requireKernel(name, site);
  BlockRun& r = *c.run;
  if (mask != 0xffffffffu)
    fail(format("%s with mask 0x%08x at %s: the emulator runs warp collectives with the full mask 0xffffffff only "
                "(which lanes a partial mask meets depends on how the GPU schedules the warp, which it cannot "
                "emulate faithfully)",
                name, mask, describe(site).c_str()));
  Warp& w = r.warps[c.warp];
  if (w.lanes != 32)
    fail(format("%s at %s in warp %u, which has only %u thread(s): the block has %u threads, not a multiple of 32, "
                "so its last warp is partial and a full-mask collective there is undefined on a GPU",
                name, describe(site).c_str(), c.warp, w.lanes, r.threads));
  if (isShuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0))
    fail(format("%s at %s with width %d: width must be a power of two from 1 to 32", name, describe(site).c_str(), width));
  std::unique_lock<std::mutex> lock(w.m, std::defer_lock);
  if (!r.serial) lock.lock();
  if (w.exited > 0)
    fail(format("%s at %s: %u lane(s) of warp %u have exited, but the full mask names all 32 lanes (undefined on a "
                "GPU; exit after the collective instead)",
                name, describe(site).c_str(), w.exited, c.warp) +
         "\n  the block:" + blockState(r));
  if (w.arrived == 0) {
    w.op = op;
    w.type = type;
  } else if (w.op != op || w.type != type) {
    unsigned first = 0;
    while (first < 32 && w.site[first].file == nullptr) ++first;
    fail(format("mismatched warp collective: this lane called %s at %s while other lanes of warp %u wait at %s "
                "(lane %u at %s); all lanes must execute the same collective on the same operand type",
                name, describe(site).c_str(), c.warp, collectiveName(w.op), first,
                first < 32 ? describe(w.site[first]).c_str() : "?"));
  }
  unsigned lane = c.lane;
  w.in[lane] = value;
  w.param[lane] = param;
  w.width[lane] = width;
  w.site[lane] = site;
  Slot& me = r.slots[c.tid];
  markWaiting(me, Wait::Collective, name, site);
  if (++w.arrived == 32) {
    computeCollective(w);
    w.arrived = 0;
    ++w.generation;
    for (CallSite& s : w.site) s = CallSite{};
    if (r.serial) {
      for (unsigned l = 0; l < 32; ++l) setRunnable(r, c.warp * 32 + l, true);
    } else {
      r.liveBlocked.fetch_sub(31, std::memory_order_relaxed);
      w.cv.notify_all();
    }
    uint64_t result = w.out[lane];
    markRunning(me);
    if (r.serial) passTurn(r, c);
    return result;
  }
  uint64_t mine = w.generation;
  if (r.serial) {
    setRunnable(r, c.tid, false);
    passTurn(r, c);  // w.out[lane] stays until the warp's next collective, which needs this lane too
  } else {
    waitReleased(r, lock, w.cv, w.generation, mine);
  }
  markRunning(me);
  return w.out[lane];
}

}  // namespace detail

namespace {

// The exiting thread's warp must have no lane waiting in a collective (the full mask names the exiting lane).
// With the warp's lock held under the concurrent schedule.
void exitWarp(BlockRun& r, const ThreadContext& c) {
  Warp& w = r.warps[c.warp];
  ++w.exited;
  if (w.arrived > 0) {
    unsigned first = 0;
    while (first < 32 && w.site[first].file == nullptr) ++first;
    fail(format("this thread exited while %u lane(s) of its warp %u wait at %s (lane %u at %s): the full mask names "
                "all 32 lanes (undefined on a GPU)",
                w.arrived, c.warp, collectiveName(w.op), first, first < 32 ? describe(w.site[first]).c_str() : "?"));
  }
}

void invokeKernel(BlockRun& r) {
  try {
    r.invoker(r.function, r.arguments);
  } catch (const std::exception& e) {
    fail(format("the kernel threw a C++ exception (%s); device code cannot throw", e.what()));
  } catch (...) {
    fail("the kernel threw a C++ exception; device code cannot throw");
  }
}

// --- concurrent schedule ---
// Unobserved: on a GPU an exit orders nothing (the locks here would order this thread before every later
// barrier arrival or shared-array lookup of the block).
void threadExitConcurrent(BlockRun& r, ThreadContext& c) {
  Unobserved unobserved;
  {
    std::lock_guard<std::mutex> lock(r.warps[c.warp].m);
    exitWarp(r, c);
  }
  std::lock_guard<std::mutex> lock(r.m);
  r.slots[c.tid].wait.store(int(Wait::Exited), std::memory_order_relaxed);
  --r.live;
  if (r.arrived > 0 && r.arrived == r.live)
    completeBarrier(r, r.arrived, true);  // the others wait at a barrier this thread will never reach
  else
    r.liveBlocked.fetch_sub(1ull << 32, std::memory_order_relaxed);
}

// A CUDA thread on a host thread of the pool.
void runThread(BlockRun& r, unsigned tid) {
  ThreadContext context = threadContext(r, tid);
  threadIdx = context.index;
  blockIdx = r.index;
  blockDim = r.block;
  gridDim = r.grid;
  t_context = &context;
  invokeKernel(r);
  threadExitConcurrent(r, context);
  t_context = nullptr;
  std::lock_guard<std::mutex> lock(r.doneMutex);
  if (--r.remaining == 0) r.doneCv.notify_one();
}

// --- serial schedules ---
void threadExitSerial(BlockRun& r, ThreadContext& c) {
  exitWarp(r, c);
  r.slots[c.tid].wait.store(int(Wait::Exited), std::memory_order_relaxed);
  r.slots[c.tid].worker = nullptr;
  setRunnable(r, c.tid, false);
  --r.live;
  if (r.arrived > 0 && r.arrived == r.live) completeBarrier(r, r.arrived, true);
  // Reported as this thread (still current): the others wait where nothing can complete.
  if (r.live > 0 && nextRunnable(r) < 0) deadlock(r);
}

// Runs the fiber's chain of CUDA threads (see FiberWorker) and returns the context to resume when it ends:
// a waiting thread's fiber, or the launching host thread once the block is done. Not inlined into
// fiberEntry: that frame outlives the launch and may resume under a later launch on another host thread,
// so it must hold no address of a thread_local (t_context, threadIdx) that the compiler computed before.
__attribute__((noinline)) FiberContext* runChain(FiberWorker& w) {
  BlockRun& r = *w.run;
  for (unsigned tid = w.first;;) {
    ThreadContext context = threadContext(r, tid);
    r.slots[tid].worker = &w;
    enterThread(context);
    invokeKernel(r);
    threadExitSerial(r, context);
    t_context = nullptr;
    int next = nextRunnable(r);
    if (next < 0) return &r.host;  // every thread has exited
    if (!r.slots[next].worker) {
      tid = unsigned(next);  // not started: runs on this stack, no switch
      continue;
    }
    return &r.slots[next].worker->fiber->context;
  }
}

void FiberPool::fiberEntry(void* worker) {
  auto* w = static_cast<FiberWorker*>(worker);
  for (;;) {
    FiberContext* next = runChain(*w);
    fiberPool().park(w);  // no other context runs before the switch below: nothing can take it early
    switchFiber(w->fiber->context, *next);
  }
}

// Checks a launch configuration as the runtime does; cudaSuccess when it may run.
cudaError_t checkLaunch(const void* function, dim3 grid, dim3 block, size_t dynamicBytes, cudaStream_t stream,
                        KernelRecord** recordOut, bool* optedIn) {
  if (!function) return cudaErrorInvalidDeviceFunction;
  unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > kMaxBlockX || block.y > kMaxBlockY ||
      block.z > kMaxBlockZ || threads > kMaxThreadsPerBlock)
    return cudaErrorInvalidConfiguration;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > kMaxGridX || grid.y > kMaxGridYZ || grid.z > kMaxGridYZ)
    return cudaErrorInvalidConfiguration;
  {
    std::lock_guard<std::mutex> lock(kernelsMutex());
    KernelRecord& k = kernelRecord(function);
    *recordOut = &k;
    *optedIn = k.maxDynamicShared >= 0;
    if (k.maxDynamicShared >= 0) {
      if (dynamicBytes > size_t(k.maxDynamicShared) || k.staticBytes + dynamicBytes > kSharedPerBlockOptin)
        return cudaErrorInvalidValue;
    } else if (k.staticBytes + dynamicBytes > kSharedPerBlock) {
      return cudaErrorInvalidValue;  // more than 48 KB needs cudaFuncSetAttribute first
    }
  }
  if (!validStream(stream)) return cudaErrorInvalidResourceHandle;
  return cudaSuccess;
}

void prepareBlock(BlockRun& r, unsigned long long linear) {
  r.index = uint3{unsigned(linear % r.grid.x), unsigned(linear / r.grid.x % r.grid.y),
                  unsigned(linear / (1ull * r.grid.x * r.grid.y))};
  std::vector<SiteInfo> sites;
  {
    std::lock_guard<std::mutex> lock(kernelsMutex());
    sites = r.kernel->sites;
  }
  r.known.clear();
  r.staticBytes = 0;
  for (const SiteInfo& s : sites) {
    void* data = nullptr;
    if (posix_memalign(&data, std::max<size_t>(s.align, 16), s.bytes) != 0) fail("out of host memory for shared memory");
    std::memset(data, 0xFF, s.bytes);  // NaN bytes: a read before a write shows up
    r.known.push_back(SharedBuffer{s.site, data, s.bytes});
    if (s.site->hardware) r.staticBytes += s.bytes;
  }
  if (posix_memalign(&r.dynamic, 16, r.dynamicBytes) != 0) fail("out of host memory for dynamic shared memory");
  std::memset(r.dynamic, 0xFF, r.dynamicBytes);
  r.live = r.threads;
  r.arrived = 0;
  r.liveBlocked.store(uint64_t(r.threads) << 32, std::memory_order_relaxed);
  for (unsigned t = 0; t < r.threads; ++t) markRunning(r.slots[t]);
  for (unsigned i = 0; i < r.warpCount; ++i) {
    Warp& w = r.warps[i];
    w.lanes = std::min(32u, r.threads - 32 * i);
    w.arrived = 0;
    w.exited = 0;
    for (CallSite& s : w.site) s = CallSite{};
  }
  std::memset(r.runnable, 0, sizeof r.runnable);
  for (unsigned t = 0; t < r.threads; ++t) {
    setRunnable(r, t, true);
    r.slots[t].worker = nullptr;
  }
  r.remaining = r.threads;
}

void finishBlock(BlockRun& r) {
  for (SharedBuffer& b : r.known) std::free(b.data);
  for (SharedBuffer& b : r.discovered) std::free(b.data);
  r.known.clear();
  r.discovered.clear();
  std::free(r.dynamic);
  r.dynamic = nullptr;
}

}  // namespace

namespace detail {

void launch(void (*function)(), Invoker invoker, const void* arguments, dim3 grid, dim3 block, size_t dynamicBytes,
            cudaStream_t stream) {
  if (t_context) fail("a kernel launched a kernel: the emulator has no dynamic parallelism");
  runtimeInit();
  if (g_unloading.load()) {
    record(cudaErrorCudartUnloading);
    return;
  }
  KernelRecord* kernel = nullptr;
  bool optedIn = false;
  cudaError_t status =
      checkLaunch(reinterpret_cast<const void*>(function), grid, block, dynamicBytes, stream, &kernel, &optedIn);
  if (status != cudaSuccess) {
    record(status);
    return;
  }
  if (kernelsSkipped()) return;  // checked, not run
  Schedule mode = schedule();
  std::lock_guard<std::mutex> launchLock(launchMutex());  // one launch at a time (shared pool, like one device)
  BlockRun r;
  r.kernel = kernel;
  r.function = function;
  r.invoker = invoker;
  r.arguments = arguments;
  r.grid = grid;
  r.block = block;
  r.threads = block.x * block.y * block.z;
  r.dynamicBytes = dynamicBytes;
  r.optedIn = optedIn;
  r.schedule = mode;
  r.serial = mode != Schedule::Concurrent;
  r.slots.reset(new Slot[r.threads]);
  r.warpCount = (r.threads + 31) / 32;
  r.warps.reset(new Warp[r.warpCount]);
  unsigned long long blocks = 1ull * grid.x * grid.y * grid.z;
  if (r.serial) {
    // Every block on fibers of this host thread, which shares its thread_locals with them: the block-wide
    // built-ins are set here, threadIdx and the thread's context at every switch (enterThread).
    captureHostContext(r.host);
    blockDim = block;
    gridDim = grid;
    for (unsigned long long b = 0; b < blocks; ++b) {
      prepareBlock(r, mode == Schedule::Reverse ? blocks - 1 - b : b);
      blockIdx = r.index;
      FiberWorker* w = fiberPool().take();
      w->run = &r;
      w->first = unsigned(nextRunnable(r));
      switchFiber(r.host, w->fiber->context);  // back when every thread of the block has exited
      finishBlock(r);
    }
    threadIdx = blockIdx = uint3{0, 0, 0};
    return;
  }
  pool().ensure(r.threads);
  for (unsigned long long b = 0; b < blocks; ++b) {
    prepareBlock(r, mode == Schedule::Reverse ? blocks - 1 - b : b);
    for (unsigned t = 0; t < r.threads; ++t) pool().start(t, &r);
    {
      std::unique_lock<std::mutex> lock(r.doneMutex);
      r.doneCv.wait(lock, [&] { return r.remaining == 0; });
    }
    finishBlock(r);
  }
}

cudaError_t copySymbol(void* symbol, size_t symbolBytes, void* hostData, size_t count, size_t offset,
                       cudaMemcpyKind kind, bool toSymbol, cudaStream_t stream) {
  return api(toSymbol ? "cudaMemcpyToSymbol" : "cudaMemcpyFromSymbol", [&]() -> cudaError_t {
    if (!validStream(stream)) return cudaErrorInvalidResourceHandle;
    if (offset > symbolBytes || count > symbolBytes - offset) return cudaErrorInvalidValue;
    bool allowed = kind == cudaMemcpyDefault || kind == cudaMemcpyDeviceToDevice ||
                   kind == (toSymbol ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost);
    if (!allowed) return cudaErrorInvalidMemcpyDirection;
    if (count == 0) return cudaSuccess;
    if (!hostData) return cudaErrorInvalidValue;
    Space other = classify(hostData, count);
    if (other == Space::Invalid) return cudaErrorInvalidValue;
    if (kind == cudaMemcpyDeviceToDevice && other != Space::Device) return cudaErrorInvalidValue;
    if ((kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToHost) && other == Space::Device)
      return cudaErrorInvalidValue;
    char* s = static_cast<char*>(symbol) + offset;
    if (toSymbol)
      std::memcpy(s, hostData, count);
    else
      std::memcpy(hostData, s, count);
    return cudaSuccess;
  });
}

}  // namespace detail
}  // namespace ikun::emu

// ---------------------------------------------------------------------------------------------------------
// The runtime API.
using ikun::emu::api;
namespace emu = ikun::emu;

cudaError_t cudaGetDeviceCount(int* count) {
  return api("cudaGetDeviceCount", [&] {
    if (!count) return cudaErrorInvalidValue;
    *count = 1;
    return cudaSuccess;
  });
}

cudaError_t cudaSetDevice(int device) {
  return api("cudaSetDevice", [&] {
    if (device != 0) return cudaErrorInvalidDevice;
    emu::t_device = device;
    return cudaSuccess;
  });
}

cudaError_t cudaGetDevice(int* device) {
  return api("cudaGetDevice", [&] {
    if (!device) return cudaErrorInvalidValue;
    *device = emu::t_device;
    return cudaSuccess;
  });
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  return api("cudaGetDeviceProperties", [&] {
    if (!prop) return cudaErrorInvalidValue;
    if (device != 0) return cudaErrorInvalidDevice;
    emu::fillProperties(*prop);
    return cudaSuccess;
  });
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  return api("cudaDeviceGetAttribute", [&] {
    if (!value) return cudaErrorInvalidValue;
    if (device != 0) return cudaErrorInvalidDevice;
    cudaDeviceProp p;
    emu::fillProperties(p);
    switch (attr) {
      case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
      case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
      case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
      case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
      case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
      case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
      case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
      case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
      case cudaDevAttrTotalConstantMemory: *value = int(p.totalConstMem); break;
      case cudaDevAttrWarpSize: *value = p.warpSize; break;
      case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; break;
      case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
      case cudaDevAttrIntegrated: *value = p.integrated; break;
      case cudaDevAttrCanMapHostMemory: *value = p.canMapHostMemory; break;
      case cudaDevAttrConcurrentKernels: *value = p.concurrentKernels; break;
      case cudaDevAttrGlobalMemoryBusWidth: *value = p.memoryBusWidth; break;
      case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
      case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
      case cudaDevAttrAsyncEngineCount: *value = p.asyncEngineCount; break;
      case cudaDevAttrUnifiedAddressing: *value = p.unifiedAddressing; break;
      case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
      case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
      case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.sharedMemPerMultiprocessor); break;
      case cudaDevAttrMaxRegistersPerMultiprocessor: *value = p.regsPerMultiprocessor; break;
      case cudaDevAttrManagedMemory: *value = p.managedMemory; break;
      case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
      case cudaDevAttrMaxBlocksPerMultiprocessor: *value = p.maxBlocksPerMultiProcessor; break;
      case cudaDevAttrReservedSharedMemoryPerBlock: *value = int(p.reservedSharedMemPerBlock); break;
      case cudaDevAttrMemoryPoolsSupported: *value = p.memoryPoolsSupported; break;
      default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
  });
}

cudaError_t cudaDeviceSynchronize() {
  return api("cudaDeviceSynchronize", [] {
    // Work runs synchronously on the thread that issues it; wait for a launch another host thread is running.
    std::lock_guard<std::mutex> lock(emu::launchMutex());
    return cudaSuccess;
  });
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  return api("cudaMemGetInfo", [&] {
    if (!free || !total) return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> lock(emu::memory().m);
    *total = emu::memory().limit;
    *free = emu::memory().limit - emu::memory().used;
    return cudaSuccess;
  });
}

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  return api("cudaMalloc", [&] { return emu::allocateDevice(devPtr, size); });
}

cudaError_t cudaFree(void* devPtr) {
  return api("cudaFree", [&] { return emu::freeRegion(devPtr, emu::Region::Device); });
}

cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t stream) {
  return api("cudaMallocAsync", [&] {
    if (!emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    return emu::allocateDevice(devPtr, size);
  });
}

cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t stream) {
  return api("cudaFreeAsync", [&] {
    if (!emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    return emu::freeRegion(devPtr, emu::Region::Device);
  });
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  return api("cudaMallocHost", [&] { return emu::allocateHost(ptr, size, 0); });
}

cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags) {
  return api("cudaHostAlloc", [&] { return emu::allocateHost(ptr, size, flags); });
}

cudaError_t cudaFreeHost(void* ptr) {
  return api("cudaFreeHost", [&] { return emu::freeRegion(ptr, emu::Region::Pinned); });
}

cudaError_t cudaHostRegister(void* ptr, size_t size, unsigned int flags) {
  return api("cudaHostRegister", [&]() -> cudaError_t {
    if (!ptr || size == 0) return cudaErrorInvalidValue;
    if (flags & ~unsigned(0xF)) return cudaErrorInvalidValue;
    if (flags & (cudaHostRegisterIoMemory | cudaHostRegisterReadOnly))
      emu::fail("cudaHostRegister with cudaHostRegisterIoMemory or cudaHostRegisterReadOnly: the emulator cannot "
                "map I/O memory or make device writes to host memory fail");
    std::lock_guard<std::mutex> lock(emu::memory().m);
    uintptr_t p = uintptr_t(ptr);
    if (emu::overlaps(p, size)) {
      uintptr_t base = 0;
      const emu::Region* r = emu::containing(p, &base);
      if (r && r->kind == emu::Region::Device) return cudaErrorInvalidValue;
      return cudaErrorHostMemoryAlreadyRegistered;
    }
    emu::memory().regions[p] = emu::Region{size, 0, emu::Region::Registered};
    return cudaSuccess;
  });
}

cudaError_t cudaHostUnregister(void* ptr) {
  return api("cudaHostUnregister", [&] {
    std::lock_guard<std::mutex> lock(emu::memory().m);
    auto it = emu::memory().regions.find(uintptr_t(ptr));
    if (!ptr || it == emu::memory().regions.end() || it->second.kind != emu::Region::Registered)
      return cudaErrorHostMemoryNotRegistered;
    emu::memory().regions.erase(it);
    return cudaSuccess;
  });
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  return api("cudaPointerGetAttributes", [&] {
    if (!attributes) return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> lock(emu::memory().m);
    uintptr_t base = 0;
    const emu::Region* r = emu::containing(uintptr_t(ptr), &base);
    void* p = const_cast<void*>(ptr);
    if (!r)
      *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -2, nullptr, nullptr};
    else if (r->kind == emu::Region::Device)
      *attributes = cudaPointerAttributes{cudaMemoryTypeDevice, 0, p, nullptr};
    else
      *attributes = cudaPointerAttributes{cudaMemoryTypeHost, 0, p, p};  // unified addressing: the same address
    return cudaSuccess;
  });
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return api("cudaMemcpy", [&] {
    std::lock_guard<std::mutex> lock(emu::launchMutex());  // the legacy default stream waits for running work
    return emu::copy(dst, src, count, kind);
  });
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  return api("cudaMemcpyAsync", [&] {
    if (!emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    return emu::copy(dst, src, count, kind);
  });
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dstDevice, const void* src, int srcDevice, size_t count,
                                cudaStream_t stream) {
  return api("cudaMemcpyPeerAsync", [&] {
    if (dstDevice != 0 || srcDevice != 0) return cudaErrorInvalidDevice;
    if (!emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    return emu::copy(dst, src, count, cudaMemcpyDeviceToDevice);
  });
}

namespace ikun::emu {
namespace {
cudaError_t fill(void* devPtr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!devPtr || classify(devPtr, count) != Space::Device) return cudaErrorInvalidValue;
  if (!kernelsSkipped()) std::memset(devPtr, value, count);  // device work, skipped with the kernels
  return cudaSuccess;
}
}  // namespace
}  // namespace ikun::emu

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  return api("cudaMemset", [&] {
    std::lock_guard<std::mutex> lock(emu::launchMutex());
    return emu::fill(devPtr, value, count);
  });
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  return api("cudaMemsetAsync", [&] {
    if (!emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    return emu::fill(devPtr, value, count);
  });
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return api("cudaStreamCreateWithFlags", [&] {
    if (!stream || (flags & ~unsigned(cudaStreamNonBlocking))) return cudaErrorInvalidValue;
    auto* s = new CUstream_st{flags};
    std::lock_guard<std::mutex> lock(emu::handles().m);
    emu::handles().streams.insert(s);
    *stream = s;
    return cudaSuccess;
  });
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  return api("cudaStreamDestroy", [&] {
    std::lock_guard<std::mutex> lock(emu::handles().m);
    if (!emu::handles().streams.erase(stream)) return cudaErrorInvalidResourceHandle;
    delete stream;
    return cudaSuccess;
  });
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return api("cudaStreamSynchronize", [&] {
    return emu::validStream(stream) ? cudaSuccess : cudaErrorInvalidResourceHandle;
  });
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return api("cudaStreamQuery", [&] {
    return emu::validStream(stream) ? cudaSuccess : cudaErrorInvalidResourceHandle;
  });
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  return api("cudaStreamWaitEvent", [&] {
    if (!emu::validStream(stream) || !emu::validEvent(event)) return cudaErrorInvalidResourceHandle;
    if (flags != 0) return cudaErrorInvalidValue;
    return cudaSuccess;
  });
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  return api("cudaEventCreateWithFlags", [&] {
    if (!event || (flags & ~unsigned(cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess)))
      return cudaErrorInvalidValue;
    if ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming)) return cudaErrorInvalidValue;
    auto* e = new CUevent_st{flags, false, {}};
    std::lock_guard<std::mutex> lock(emu::handles().m);
    emu::handles().events.insert(e);
    *event = e;
    return cudaSuccess;
  });
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  return api("cudaEventRecord", [&] {
    if (!emu::validEvent(event) || !emu::validStream(stream)) return cudaErrorInvalidResourceHandle;
    std::lock_guard<std::mutex> lock(emu::handles().m);
    event->recorded = true;  // all earlier work on the stream is done: it ran synchronously
    event->when = std::chrono::steady_clock::now();
    return cudaSuccess;
  });
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  return api("cudaEventQuery", [&] { return emu::validEvent(event) ? cudaSuccess : cudaErrorInvalidResourceHandle; });
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return api("cudaEventSynchronize", [&] {
    return emu::validEvent(event) ? cudaSuccess : cudaErrorInvalidResourceHandle;
  });
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  return api("cudaEventElapsedTime", [&] {
    if (!ms) return cudaErrorInvalidValue;
    if (!emu::validEvent(start) || !emu::validEvent(end)) return cudaErrorInvalidResourceHandle;
    std::lock_guard<std::mutex> lock(emu::handles().m);
    if (!start->recorded || !end->recorded || (start->flags & cudaEventDisableTiming) ||
        (end->flags & cudaEventDisableTiming))
      return cudaErrorInvalidResourceHandle;
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return cudaSuccess;
  });
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  return api("cudaEventDestroy", [&] {
    std::lock_guard<std::mutex> lock(emu::handles().m);
    if (!emu::handles().events.erase(event)) return cudaErrorInvalidResourceHandle;
    delete event;
    return cudaSuccess;
  });
}

cudaError_t cudaGetLastError() {
  cudaError_t e = emu::t_lastError;
  emu::t_lastError = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return emu::t_lastError; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define IKUN_EMU_NAME(code) \
  case code: return #code;
    IKUN_EMU_NAME(cudaSuccess)
    IKUN_EMU_NAME(cudaErrorInvalidValue)
    IKUN_EMU_NAME(cudaErrorMemoryAllocation)
    IKUN_EMU_NAME(cudaErrorInitializationError)
    IKUN_EMU_NAME(cudaErrorCudartUnloading)
    IKUN_EMU_NAME(cudaErrorInvalidConfiguration)
    IKUN_EMU_NAME(cudaErrorInvalidSymbol)
    IKUN_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    IKUN_EMU_NAME(cudaErrorInsufficientDriver)
    IKUN_EMU_NAME(cudaErrorInvalidDeviceFunction)
    IKUN_EMU_NAME(cudaErrorNoDevice)
    IKUN_EMU_NAME(cudaErrorInvalidDevice)
    IKUN_EMU_NAME(cudaErrorInvalidResourceHandle)
    IKUN_EMU_NAME(cudaErrorNotReady)
    IKUN_EMU_NAME(cudaErrorIllegalAddress)
    IKUN_EMU_NAME(cudaErrorLaunchOutOfResources)
    IKUN_EMU_NAME(cudaErrorHostMemoryAlreadyRegistered)
    IKUN_EMU_NAME(cudaErrorHostMemoryNotRegistered)
    IKUN_EMU_NAME(cudaErrorLaunchFailure)
    IKUN_EMU_NAME(cudaErrorNotSupported)
    IKUN_EMU_NAME(cudaErrorUnknown)
#undef IKUN_EMU_NAME
  }
  return "unrecognized error code";  // as CUDA's, for a code it does not know
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorCudartUnloading: return "driver shutting down";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorHostMemoryAlreadyRegistered: return "part or all of the requested memory range is already mapped";
    case cudaErrorHostMemoryNotRegistered: return "pointer does not correspond to a registered memory region";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  return api("cudaRuntimeGetVersion", [&] {
    if (!version) return cudaErrorInvalidValue;
    *version = emu::kVersion;
    return cudaSuccess;
  });
}

cudaError_t cudaDriverGetVersion(int* version) {
  return api("cudaDriverGetVersion", [&] {
    if (!version) return cudaErrorInvalidValue;
    *version = emu::kVersion;
    return cudaSuccess;
  });
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  return api("cudaFuncSetAttribute", [&] {
    if (!func) return cudaErrorInvalidDeviceFunction;
    std::lock_guard<std::mutex> lock(emu::kernelsMutex());
    emu::KernelRecord& k = emu::kernelRecord(func);
    switch (attr) {
      case cudaFuncAttributeMaxDynamicSharedMemorySize:
        if (value < 0 || k.staticBytes + size_t(value) > emu::kSharedPerBlockOptin) return cudaErrorInvalidValue;
        k.maxDynamicShared = value;
        return cudaSuccess;
      case cudaFuncAttributePreferredSharedMemoryCarveout:
        if (value < -1 || value > 100) return cudaErrorInvalidValue;
        k.carveout = value;  // a performance hint: nothing to emulate
        return cudaSuccess;
    }
    return cudaErrorInvalidValue;
  });
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  return api("cudaFuncGetAttributes", [&] {
    if (!attr) return cudaErrorInvalidValue;
    if (!func) return cudaErrorInvalidDeviceFunction;
    std::lock_guard<std::mutex> lock(emu::kernelsMutex());
    emu::KernelRecord& k = emu::kernelRecord(func);
    std::memset(attr, 0, sizeof *attr);
    attr->sharedSizeBytes = k.staticBytes;  // what the kernel's runs so far declared (0 before its first launch)
    attr->maxThreadsPerBlock = int(emu::kMaxThreadsPerBlock);
    attr->numRegs = 0;
    attr->ptxVersion = 90;
    attr->binaryVersion = 90;
    attr->maxDynamicSharedSizeBytes =
        k.maxDynamicShared >= 0 ? k.maxDynamicShared : int(emu::kSharedPerBlock - std::min(k.staticBytes, emu::kSharedPerBlock));
    attr->preferredShmemCarveout = k.carveout;
    return cudaSuccess;
  });
}
