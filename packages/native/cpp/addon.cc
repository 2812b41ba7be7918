/*
 * Module entry: creates the `constants` object, then lets each concern file register its
 * functions and constants on the exports.
 */
#include <napi.h>

#include "errors.h"

namespace gd {
void InitAt(Napi::Env env, Napi::Object exports);
void InitXattr(Napi::Env env, Napi::Object exports);
void InitFiles(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitNewMount(Napi::Env env, Napi::Object exports);
void InitLoop(Napi::Env env, Napi::Object exports);
void InitQuota(Napi::Env env, Napi::Object exports);
void InitDm(Napi::Env env, Napi::Object exports);
void InitBlockdev(Napi::Env env, Napi::Object exports);
}  // namespace gd

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("constants", Napi::Object::New(env));
  gd::InitErrors(env, exports);
  gd::InitAt(env, exports);
  gd::InitXattr(env, exports);
  gd::InitFiles(env, exports);
  gd::InitMount(env, exports);
  gd::InitNewMount(env, exports);
  gd::InitLoop(env, exports);
  gd::InitQuota(env, exports);
  gd::InitDm(env, exports);
  gd::InitBlockdev(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(graphdriver_native, Init)
