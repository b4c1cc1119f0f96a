// Bindings for shared utilities: the GEMM (also used by the benchmark to measure the BLAS rate),
// axpy, the CPU thread count, and what the build knows about CUDA.
#include <stdexcept>
#include <string>

#include "../cpu/cpu_features.h"
#include "../cpu/host_allocator.h"
#include "../cpu/parallel.h"
#include "../cuda/runtime_info.h"
#include "args.h"

namespace ikun::napi {
namespace {

// gemm(a, b, c, [m, n, k], transA, transB, alpha, beta): c = alpha op(a) op(b) + beta c
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *a = storageArg(info, 0, "a"), *b = storageArg(info, 1, "b"), *c = storageArg(info, 2, "c");
  auto d = intsArg(info, 3, 3, "dims");
  bool transA = boolArg(info, 4, "transA"), transB = boolArg(info, 5, "transB");
  double alpha = numberArg(info, 6, "alpha"), beta = numberArg(info, 7, "beta");
  requireCount(env, a, d[0] * d[2], "a"), requireCount(env, b, d[2] * d[1], "b"), requireCount(env, c, d[0] * d[1], "c");
  dispatch(env, "gemm", {a, b, c}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, gemm<T>(transA, transB, d[0], d[1], d[2], T(alpha), ptr<T>(a), transA ? d[0] : d[2], ptr<T>(b),
                             transB ? d[2] : d[1], T(beta), ptr<T>(c), d[1]));
  });
  return env.Undefined();
}

// axpy(x, y, alpha): y += alpha x
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *y = storageArg(info, 1, "y");
  double alpha = numberArg(info, 2, "alpha");
  requireCount(env, x, int64_t(y->count()), "x");
  dispatch(env, "axpy", {x, y}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, axpy<T>(int64_t(y->count()), T(alpha), ptr<T>(x), ptr<T>(y)));
  });
  return env.Undefined();
}

// addToTotals(step, totals, finiteSteps?): totals += step, and finiteSteps[i] += 1 where totals[i] is then
// finite (one kernel for the commit of a training step's metrics)
Napi::Value AddToTotals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *step = storageArg(info, 0, "step"), *totals = storageArg(info, 1, "totals");
  Storage* finiteSteps = optionalStorageArg(info, 2, "finiteSteps");
  const int64_t n = int64_t(totals->count());
  requireCount(env, step, n, "step");
  if (finiteSteps) requireCount(env, finiteSteps, n, "finiteSteps");
  dispatch(env, "addToTotals", {step, totals, finiteSteps}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, addToTotals<T>(n, ptr<T>(step), ptr<T>(totals), finiteSteps ? ptr<T>(finiteSteps) : nullptr));
  });
  return env.Undefined();
}

// zeroAll(tensors[]): every tensor set to zero (a model's gradients: one launch on CUDA instead of one
// memset each). The tensors must share a device; any dtypes.
Napi::Value ZeroAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto tensors = storageListArg(info, 0, "tensors");
  if (tensors.empty()) return env.Undefined();
  const int device = commonDevice(env, "zeroAll", tensors);
  std::vector<void*> buffers;
  std::vector<int64_t> bytes;
  for (Storage* t : tensors) {
    buffers.push_back(t->raw());
    bytes.push_back(int64_t(t->bytes()));
  }
  if (device < 0) {
    cpu::zeroAll(buffers.data(), bytes.data(), int(buffers.size()));
    return env.Undefined();
  }
#if defined(IKUN_WITH_CUDA)
  cuda::DeviceGuard guard(device);
  cuda::OpTimer timer(device, "zeroAll");
  cuda::zeroAll(buffers.data(), bytes.data(), int(buffers.size()));
  return env.Undefined();
#else
  throw Napi::Error::New(env, "zeroAll: this build of ikun has no CUDA support");
#endif
}

// gatherRows(rows, indices (int32), out, [rowCount, rowSize, first, count]): out[r] = rows[indices[first + r]].
// Indices in host memory are checked here; on a device they come from ikun's own shuffles.
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *rows = storageArg(info, 0, "rows"), *indices = storageArg(info, 1, "indices"), *out = storageArg(info, 2, "out");
  auto d = intsArg(info, 3, 4, "gather dims");
  const int64_t rowCount = d[0], rowSize = d[1], first = d[2], count = d[3];
  requireInt32(env, indices, "indices");
  if (rows->dtype() != out->dtype()) throw Napi::TypeError::New(env, "gatherRows: rows and out differ in dtype");
  requireCount(env, rows, rowCount * rowSize, "rows"), requireCount(env, indices, first + count, "indices"), requireCount(env, out, count * rowSize, "out");
  if (indices->device() < 0)
    for (int64_t r = first; r < first + count; ++r)
      if (indices->as<int32_t>()[r] < 0 || indices->as<int32_t>()[r] >= rowCount) throw Napi::RangeError::New(env, "gatherRows: an index is out of range");
  dispatchNumeric(env, "gatherRows", rows, {rows, indices, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, gatherRows<T>(rowCount, rowSize, ptr<T>(rows), ptr<int32_t>(indices), first, count, ptr<T>(out)));
  });
  return env.Undefined();
}

Napi::Value ThreadCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::threadCount()); }

Napi::Value SetThreadCount(const Napi::CallbackInfo& info) {
  double n = numberArg(info, 0, "threads");
  if (!(n >= 1 && n <= 1024)) throw Napi::RangeError::New(info.Env(), "threads must be between 1 and 1024");
  cpu::setThreadCount(int(n));
  return info.Env().Undefined();
}

// cpuKernels() -> { active: 'avx2' | 'baseline', avx2: boolean (built and supported here) }
Napi::Value CpuKernelsInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("active", cpu::cpuKernelsName(cpu::cpuKernels()));
  o.Set("avx2", cpu::avx2KernelsUsable());
  return o;
}

// setCpuKernels('avx2' | 'baseline')
Napi::Value SetCpuKernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "kernels must be 'avx2' or 'baseline'");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name != "avx2" && name != "baseline")
    throw Napi::RangeError::New(env, "kernels must be 'avx2' or 'baseline', got '" + name + "'");
  try {
    cpu::setCpuKernels(name == "avx2" ? cpu::CpuKernels::Avx2 : cpu::CpuKernels::Baseline);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, std::string("setCpuKernels('avx2'): ") + e.what());
  }
  return env.Undefined();
}

// cudaInfo() -> { compiled, available, deviceCount, reason }
Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::RuntimeInfo r = cuda::queryRuntime();
  auto o = Napi::Object::New(env);
  o.Set("compiled", r.compiled);
  o.Set("available", r.deviceCount > 0);
  o.Set("deviceCount", r.deviceCount);
  o.Set("runtimeVersion", r.runtimeVersion);
  o.Set("driverVersion", r.driverVersion);
  o.Set("reason", r.reason);
  o.Set("detail", r.detail);
  return o;
}

Napi::Value HostCacheBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(cpu::hostCachedBytes())); }

// The collected tensors' memory goes back first (as the next large allocation would do anyway), so that the
// count after a garbage collection is what the tensors still reachable hold, not what the last sweep missed.
Napi::Value HostLiveBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage::sweepCollected(env, *env.GetInstanceData<AddonData>()->liveStorages);
  return Napi::Number::New(env, double(cpu::hostLiveBytes()));
}

Napi::Value EmptyHostCache(const Napi::CallbackInfo& info) {
  cpu::hostEmptyCache();
  return info.Env().Undefined();
}

}  // namespace

void registerUtilOps(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New<guarded<Gemm>>(env, "gemm"));
  exports.Set("axpy", Napi::Function::New<guarded<Axpy>>(env, "axpy"));
  exports.Set("zeroAll", Napi::Function::New<guarded<ZeroAll>>(env, "zeroAll"));
  exports.Set("addToTotals", Napi::Function::New<guarded<AddToTotals>>(env, "addToTotals"));
  exports.Set("gatherRows", Napi::Function::New<guarded<GatherRows>>(env, "gatherRows"));
  exports.Set("threadCount", Napi::Function::New<guarded<ThreadCount>>(env, "threadCount"));
  exports.Set("cpuKernels", Napi::Function::New<guarded<CpuKernelsInfo>>(env, "cpuKernels"));
  exports.Set("setCpuKernels", Napi::Function::New<guarded<SetCpuKernels>>(env, "setCpuKernels"));
  exports.Set("setThreadCount", Napi::Function::New<guarded<SetThreadCount>>(env, "setThreadCount"));
  exports.Set("hostCacheBytes", Napi::Function::New<guarded<HostCacheBytes>>(env, "hostCacheBytes"));
  exports.Set("hostLiveBytes", Napi::Function::New<guarded<HostLiveBytes>>(env, "hostLiveBytes"));
  exports.Set("emptyHostCache", Napi::Function::New<guarded<EmptyHostCache>>(env, "emptyHostCache"));
  exports.Set("cudaInfo", Napi::Function::New<guarded<CudaInfo>>(env, "cudaInfo"));
}

}  // namespace ikun::napi
