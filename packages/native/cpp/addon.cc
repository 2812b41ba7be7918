// Module entry: each concern file registers its functions on the exports object.
#include <napi.h>

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ping", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), "pong");
  }));
  return exports;
}

NODE_API_MODULE(graphdriver_native, Init)
