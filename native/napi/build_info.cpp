// buildInfo(): what this binary was built with, for `ikun doctor`: the N-API version it targets, the compiler,
// the CUDA architectures compiled in (recorded by the build as IKUN_CUDA_SASS / IKUN_CUDA_PTX, see
// scripts/build-config.cjs) and the BLAS, as OpenBLAS describes its own build.
#include <cblas.h>

#include <initializer_list>
#include <string>

#include "args.h"

namespace ikun::napi {
namespace {

// Unused in a build without CUDA (no architectures to list).
[[maybe_unused]] Napi::Array numbers(Napi::Env env, std::initializer_list<int> values) {
  auto a = Napi::Array::New(env, values.size());
  uint32_t i = 0;
  for (int v : values) a.Set(i++, v);
  return a;
}

// buildInfo() -> { napiVersion, compiler, cuda: { compiled, emulated, sass: [80, ...], ptx: [90] },
//                  blas: { name, config, core, linkage: 'static' | 'shared' } }
Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("napiVersion", NAPI_VERSION);
#if defined(__clang__)
  o.Set("compiler", std::string("Clang ") + __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", std::string("GCC ") + __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif

  auto cuda = Napi::Object::New(env);
#if defined(IKUN_WITH_CUDA)
  cuda.Set("compiled", true);
#else
  cuda.Set("compiled", false);
#endif
#if defined(IKUN_CUDA_EMULATED)
  cuda.Set("emulated", true);
#else
  cuda.Set("emulated", false);
#endif
  // Machine code (SASS) runs on GPUs of that major version and an equal or higher minor; PTX is compiled
  // by the driver for its own and any newer architecture.
#if defined(IKUN_CUDA_SASS)
  cuda.Set("sass", numbers(env, {IKUN_CUDA_SASS}));
#else
  cuda.Set("sass", Napi::Array::New(env));
#endif
#if defined(IKUN_CUDA_PTX)
  cuda.Set("ptx", numbers(env, {IKUN_CUDA_PTX}));
#else
  cuda.Set("ptx", Napi::Array::New(env));
#endif
  o.Set("cuda", cuda);

  auto blas = Napi::Object::New(env);
  blas.Set("name", "OpenBLAS");
  blas.Set("config", std::string(openblas_get_config()));
  blas.Set("core", std::string(openblas_get_corename()));
#if defined(IKUN_BLAS_STATIC)
  blas.Set("linkage", "static");
#else
  blas.Set("linkage", "shared");
#endif
  o.Set("blas", blas);
  return o;
}

}  // namespace

void registerBuildInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New<guarded<BuildInfo>>(env, "buildInfo"));
}

}  // namespace ikun::napi
