/*
 * The two ways every binding runs: synchronously on the JS thread (the *Sync forms: throw on
 * failure) or on the libuv thread pool (a Promise). A binding writes its syscall once, as a `work`
 * lambda `R(SysError&)` that owns its arguments, plus a `done` lambda `Napi::Value(Napi::Env, R&)`
 * that turns the result into a JS value on the JS thread. Run<false> calls both in place;
 * Run<true> moves them into a Napi::AsyncWorker and returns its Promise.
 */
#pragma once

#include <napi.h>

#include <type_traits>
#include <utility>

#include "errors.h"

namespace gd {

struct Nothing {};

template <typename Work, typename Done, typename R>
class LambdaWorker final : public Napi::AsyncWorker {
 public:
  LambdaWorker(Napi::Env env, Work&& work, Done&& done)
      : Napi::AsyncWorker(env, "graphdriver:native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = work_(error_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (error_.failed()) {
      deferred_.Reject(MakeSysError(env, error_));
      return;
    }
    Napi::Value value = done_(env, result_);
    if (env.IsExceptionPending()) {
      deferred_.Reject(env.GetAndClearPendingException().Value());
    } else {
      deferred_.Resolve(value);
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  SysError error_;
  R result_{};
};

// Runs `work` now (Async=false) or on the thread pool (Async=true); see the file comment.
template <bool Async, typename Work, typename Done>
Napi::Value Run(Napi::Env env, Work work, Done done) {
  using R = std::invoke_result_t<Work&, SysError&>;
  static_assert(!std::is_void_v<R>, "work returns a value; use gd::Nothing for none");
  if constexpr (!Async) {
    SysError error;
    R result = work(error);
    if (error.failed()) return ThrowSysError(env, error);
    return done(env, result);
  } else {
    auto* worker = new LambdaWorker<Work, Done, R>(env, std::move(work), std::move(done));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }
}

// The usual `done`s.
inline Napi::Value Undefined(Napi::Env env, Nothing&) { return env.Undefined(); }
inline Napi::Value NumberOf(Napi::Env env, int& value) { return Napi::Number::New(env, value); }

// Registers `fn<false>` as `nameSync` and `fn<true>` as `name`.
template <Napi::Value (*SyncFn)(const Napi::CallbackInfo&), Napi::Value (*AsyncFn)(const Napi::CallbackInfo&)>
void ExportBoth(Napi::Env env, Napi::Object exports, const char* name) {
  std::string syncName = std::string(name) + "Sync";
  exports.Set(syncName, Napi::Function::New(env, SyncFn, syncName));
  exports.Set(name, Napi::Function::New(env, AsyncFn, name));
}

}  // namespace gd
