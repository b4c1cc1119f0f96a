// Module entry: one AddonData per environment (worker threads load the addon more than once).
#include <napi.h>

#include "args.h"

namespace ikun::napi {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  registerStorage(env, exports, data);
  registerNnOps(env, exports);
  registerSpikingOps(env, exports);
  registerUtilOps(env, exports);
  registerOptimOps(env, exports);
  registerTangentOps(env, exports);
  registerCudaOps(env, exports);
  registerTensorOps(env, exports);
  registerBuildInfo(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 9));
  return exports;
}

}  // namespace ikun::napi

static Napi::Object InitIkun(Napi::Env env, Napi::Object exports) { return ikun::napi::Init(env, exports); }

NODE_API_MODULE(ikun, InitIkun)
