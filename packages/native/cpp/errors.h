/*
 * Errors that look like Node's own: SysError carries what a failed syscall left behind (errno, the
 * syscall's name, the path arguments, fs_context messages) from wherever it failed - the JS thread
 * or a libuv pool thread - to the JS thread, where MakeSysError turns it into a NativeError object
 * (the class registered by src/errors.ts). Argument errors are TypeError / RangeError with Node's
 * `code` (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE) and wording.
 */
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace gd {

// Filled on failure only, so that the success path allocates nothing.
struct SysError {
  int err = 0;                 // positive errno; 0 = success
  const char* syscall = "";    // static string: 'openat2', 'ioctl(LOOP_CONFIGURE)'
  bool hasPath = false;
  bool hasDest = false;
  std::string path;
  std::string dest;
  std::vector<std::string> fsContext;

  bool failed() const { return err != 0; }
  // Record a failure; `path`/`dest` may be null when the syscall has none.
  void Set(int e, const char* sys, const char* p = nullptr, const char* d = nullptr) {
    err = e;
    syscall = sys;
    if (p != nullptr) { hasPath = true; path.assign(p); }
    if (d != nullptr) { hasDest = true; dest.assign(d); }
  }
};

// Registered once by src/errors.ts (setErrorClass) so that native errors are `instanceof NativeError`.
Napi::Value SetErrorClassJs(const Napi::CallbackInfo& info);

// The NativeError object for `e` (errno negative, code, syscall, path, dest, fsContext, message).
Napi::Value MakeSysError(Napi::Env env, const SysError& e);
// Throw it as a pending JS exception; returns an empty value to hand back to Node-API.
Napi::Value ThrowSysError(Napi::Env env, const SysError& e);

// Node-style argument errors; each throws and returns an empty value.
Napi::Value ThrowArgType(Napi::Env env, const char* name, const char* expected, napi_value received);
Napi::Value ThrowArgValue(Napi::Env env, const char* name, const char* reason);
Napi::Value ThrowOutOfRange(Napi::Env env, const char* name, const char* range, napi_value received);

void InitErrors(Napi::Env env, Napi::Object exports);

}  // namespace gd
