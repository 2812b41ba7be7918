/*
 * Builds NativeError objects (message `CODE: description, syscall 'path' -> 'dest' (fs_context)`)
 * and Node-style argument errors. Only ever runs when something failed: simplicity over speed.
 */
#include "errors.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace gd {

namespace {

struct AddonData {
  Napi::FunctionReference errorClass;
};

AddonData* Data(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData(data);
  }
  return data;
}

// strerrorname_np gives "EBUSY"; glibc < 2.32 lacks it, and unknown numbers give null.
std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

// "Device or resource busy" -> "device or resource busy", as Node (libuv) words its messages;
// an acronym at the start ("RFS specific error") keeps its case.
std::string Description(int err) {
  std::string text = strerrordesc_np(err) != nullptr ? strerrordesc_np(err) : "unknown error";
  if (text.size() >= 2 && std::isupper(static_cast<unsigned char>(text[0])) &&
      !std::isupper(static_cast<unsigned char>(text[1]))) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

// Node's way of showing a received value in ERR_INVALID_ARG_TYPE messages (shortened).
std::string Describe(Napi::Env env, napi_value value) {
  if (value == nullptr) return "undefined";
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return "an unknown value";
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: {
      bool b = false;
      napi_get_value_bool(env, value, &b);
      return std::string("type boolean (") + (b ? "true" : "false") + ")";
    }
    case napi_number: {
      double d = 0;
      napi_get_value_double(env, value, &d);
      std::string text = Napi::Number::New(env, d).ToString().Utf8Value();
      return "type number (" + text + ")";
    }
    case napi_string: {
      std::string s = Napi::String(env, value).Utf8Value();
      if (s.size() > 25) s = s.substr(0, 25) + "...";
      return "type string ('" + s + "')";
    }
    case napi_bigint: return "type bigint";
    case napi_symbol: return "type symbol";
    case napi_function: return "function";
    default: return "an instance of Object";
  }
}

Napi::Value ThrowCoded(Napi::Error error, const char* code) {
  error.Value().Set("code", code);
  error.ThrowAsJavaScriptException();
  return Napi::Value();
}

}  // namespace

Napi::Value SetErrorClassJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    return ThrowArgType(env, "errorClass", "function", info.Length() > 0 ? static_cast<napi_value>(info[0]) : nullptr);
  }
  Data(env)->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value MakeSysError(Napi::Env env, const SysError& e) {
  const std::string code = ErrnoName(e.err);
  std::string message = code + ": " + Description(e.err) + ", " + e.syscall;
  if (e.hasPath) message += " '" + e.path + "'";
  if (e.hasDest) message += " -> '" + e.dest + "'";
  if (!e.fsContext.empty()) {
    message += " (";
    for (size_t i = 0; i < e.fsContext.size(); i++) {
      if (i > 0) message += "; ";
      const std::string& line = e.fsContext[i];
      // The kernel prefixes each line with its severity ("e ", "w ", "i "): keep that in
      // fsContext, drop it in the sentence.
      if (line.size() > 2 && line[1] == ' ') message += line.substr(2);
      else message += line;
    }
    message += ")";
  }

  Napi::Object error;
  AddonData* data = Data(env);
  if (!data->errorClass.IsEmpty()) {
    error = data->errorClass.New({Napi::String::New(env, message)});
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }
  if (error.IsEmpty()) error = Napi::Error::New(env, message).Value();

  error.Set("errno", Napi::Number::New(env, -e.err));
  error.Set("code", Napi::String::New(env, code));
  error.Set("syscall", Napi::String::New(env, e.syscall));
  if (e.hasPath) error.Set("path", Napi::String::New(env, e.path));
  if (e.hasDest) error.Set("dest", Napi::String::New(env, e.dest));
  if (!e.fsContext.empty()) {
    Napi::Array lines = Napi::Array::New(env, e.fsContext.size());
    for (size_t i = 0; i < e.fsContext.size(); i++) lines.Set(static_cast<uint32_t>(i), e.fsContext[i]);
    error.Set("fsContext", lines);
  }
  return error;
}

Napi::Value ThrowSysError(Napi::Env env, const SysError& e) {
  Napi::Value error = MakeSysError(env, e);
  napi_throw(env, error);
  return Napi::Value();
}

Napi::Value ThrowArgType(Napi::Env env, const char* name, const char* expected, napi_value received) {
  std::string message = std::string("The \"") + name + "\" argument must be " + expected + ". Received " +
                        Describe(env, received);
  return ThrowCoded(Napi::TypeError::New(env, message), "ERR_INVALID_ARG_TYPE");
}

Napi::Value ThrowArgValue(Napi::Env env, const char* name, const char* reason) {
  std::string message = std::string("The argument '") + name + "' " + reason;
  return ThrowCoded(Napi::TypeError::New(env, message), "ERR_INVALID_ARG_VALUE");
}

Napi::Value ThrowOutOfRange(Napi::Env env, const char* name, const char* range, napi_value received) {
  std::string shown = Describe(env, received);
  const std::string prefix = "type number (";
  if (shown.rfind(prefix, 0) == 0) shown = shown.substr(prefix.size(), shown.size() - prefix.size() - 1);
  std::string message = std::string("The value of \"") + name + "\" is out of range. It must be " + range +
                        ". Received " + shown;
  return ThrowCoded(Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassJs, "setErrorClass"));
}

}  // namespace gd
