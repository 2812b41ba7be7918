/*
 * Argument conversion with Node's validation rules: integers are checked for type and range,
 * strings must not contain NUL bytes (the kernel would silently cut them there).
 */
#include "args.h"

#include <cmath>

#include "errors.h"

namespace gd {

char* PathArg::Reserve(size_t len) {
  len_ = len;
  null_ = false;
  if (len < kInline) {
    big_.reset();
    return small_;
  }
  big_.reset(new char[len + 1]);
  return big_.get();
}

bool PathArg::Read(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_string) {
    // First try the inline buffer; only a string that (nearly) fills it needs its exact length
    // asked - nearly, because the copy stops before a UTF-8 sequence that would not fit whole.
    size_t copied = 0;
    if (napi_get_value_string_utf8(env, value, small_, kInline, &copied) != napi_ok) return false;
    if (copied + 4 < kInline) {
      len_ = copied;
      null_ = false;
      big_.reset();
      return true;
    }
    size_t full = 0;
    if (napi_get_value_string_utf8(env, value, nullptr, 0, &full) != napi_ok) return false;
    char* dest = Reserve(full);
    return napi_get_value_string_utf8(env, value, dest, full + 1, &copied) == napi_ok;
  }
  if (type == napi_object) {
    bool isTyped = false;
    napi_is_typedarray(env, value, &isTyped);
    if (!isTyped) return false;
    napi_typedarray_type ttype;
    size_t length = 0;
    void* data = nullptr;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, value, &ttype, &length, &data, nullptr, &offset) != napi_ok) return false;
    if (ttype != napi_uint8_array) return false;
    char* dest = Reserve(length);
    if (length > 0) std::memcpy(dest, data, length);
    dest[length] = '\0';
    return true;
  }
  return false;
}

bool Args::IsNullish(size_t i) const {
  if (i >= info_.Length()) return true;
  napi_valuetype type;
  napi_typeof(env_, info_[i], &type);
  return type == napi_undefined || type == napi_null;
}

int64_t Args::Integer(size_t i, const char* name, int64_t min, int64_t max) {
  if (!ok_) return 0;
  napi_value value = At(i);
  napi_valuetype type = napi_undefined;
  if (value != nullptr) napi_typeof(env_, value, &type);
  if (type != napi_number) {
    ThrowArgType(env_, name, "of type number", value);
    Fail();
    return 0;
  }
  double d = 0;
  napi_get_value_double(env_, value, &d);
  if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    std::string range = std::trunc(d) != d || !std::isfinite(d)
                            ? std::string("an integer")
                            : ">= " + std::to_string(min) + " && <= " + std::to_string(max);
    ThrowOutOfRange(env_, name, range.c_str(), value);
    Fail();
    return 0;
  }
  return static_cast<int64_t>(d);
}

void Args::Path(size_t i, const char* name, PathArg& out) {
  if (!ok_) return;
  napi_value value = At(i);
  if (value == nullptr || !out.Read(env_, value)) {
    ThrowArgType(env_, name, "of type string or an instance of Buffer", value);
    Fail();
    return;
  }
  if (std::memchr(out.c_str(), '\0', out.size()) != nullptr) {
    ThrowArgValue(env_, name, "must be a string, Buffer without null bytes");
    Fail();
  }
}

void Args::NullablePath(size_t i, const char* name, PathArg& out) {
  if (!ok_) return;
  if (IsNullish(i)) {
    out.SetNull();
    return;
  }
  Path(i, name, out);
}

void Args::Bytes(size_t i, const char* name, BytesArg& out) {
  if (!ok_) return;
  napi_value value = At(i);
  bool isTyped = false;
  if (value != nullptr) napi_is_typedarray(env_, value, &isTyped);
  if (isTyped) {
    napi_typedarray_type ttype;
    size_t length = 0;
    void* data = nullptr;
    napi_get_typedarray_info(env_, value, &ttype, &length, &data, nullptr, nullptr);
    if (ttype == napi_uint8_array) {
      out.data = static_cast<const uint8_t*>(data);
      out.length = length;
      return;
    }
  }
  ThrowArgType(env_, name, "an instance of Buffer or Uint8Array", value);
  Fail();
}

std::string Args::String(size_t i, const char* name) {
  if (!ok_) return std::string();
  napi_value value = At(i);
  napi_valuetype type = napi_undefined;
  if (value != nullptr) napi_typeof(env_, value, &type);
  if (type != napi_string) {
    ThrowArgType(env_, name, "of type string", value);
    Fail();
    return std::string();
  }
  std::string s = Napi::String(env_, value).Utf8Value();
  if (s.find('\0') != std::string::npos) {
    ThrowArgValue(env_, name, "must be a string without null bytes");
    Fail();
  }
  return s;
}

}  // namespace gd
