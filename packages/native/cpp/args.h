/*
 * Argument reading for the bindings: Node-API values to C types with Node's validation errors.
 * Paths are copied once into a small inline buffer (heap only for long ones) that is
 * NUL-terminated for the syscall, so the hot *at/xattr calls allocate nothing for ordinary names.
 * A reader stops at the first bad argument: later reads are no-ops and ok() is false, so a binding
 * reads all its arguments and checks once.
 */
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace gd {

// A NUL-terminated copy of a string or Buffer argument.
class PathArg {
 public:
  PathArg() { small_[0] = '\0'; }
  PathArg(const PathArg&) = delete;
  PathArg& operator=(const PathArg&) = delete;
  PathArg(PathArg&& other) noexcept { MoveFrom(other); }
  PathArg& operator=(PathArg&& other) noexcept {
    if (this != &other) MoveFrom(other);
    return *this;
  }

  const char* c_str() const { return big_ ? big_.get() : small_; }
  size_t size() const { return len_; }
  bool isNull() const { return null_; }
  // For nullable arguments (mount's source and fstype): nullptr when JS passed null/undefined.
  const char* c_str_or_null() const { return null_ ? nullptr : c_str(); }

  // Fills from a JS string or Buffer/Uint8Array; false if `value` is neither.
  bool Read(napi_env env, napi_value value);
  void SetNull() { null_ = true; len_ = 0; big_.reset(); small_[0] = '\0'; }

 private:
  static constexpr size_t kInline = 512;
  void MoveFrom(PathArg& other) {
    len_ = other.len_;
    null_ = other.null_;
    big_ = std::move(other.big_);
    if (!big_) std::memcpy(small_, other.small_, len_ + 1);
  }
  char* Reserve(size_t len);

  size_t len_ = 0;
  bool null_ = false;
  std::unique_ptr<char[]> big_;
  char small_[kInline];
};

// Bytes of a Buffer / TypedArray argument, borrowed (valid during the synchronous call only).
struct BytesArg {
  const uint8_t* data = nullptr;
  size_t length = 0;
};

class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info), env_(info.Env()) {}

  bool ok() const { return ok_; }
  Napi::Env env() const { return env_; }
  size_t Length() const { return info_.Length(); }
  napi_value At(size_t i) const { return i < info_.Length() ? static_cast<napi_value>(info_[i]) : nullptr; }
  bool IsNullish(size_t i) const;

  // An integer number in [min, max]; `name` is used in the error message.
  int64_t Integer(size_t i, const char* name, int64_t min, int64_t max);
  int64_t OptInteger(size_t i, const char* name, int64_t min, int64_t max, int64_t fallback) {
    return IsNullish(i) ? fallback : Integer(i, name, min, max);
  }
  int32_t Int32(size_t i, const char* name) { return static_cast<int32_t>(Integer(i, name, INT32_MIN, INT32_MAX)); }
  uint32_t Uint32(size_t i, const char* name) { return static_cast<uint32_t>(Integer(i, name, 0, UINT32_MAX)); }
  // A file descriptor, or AT_FDCWD (-100) where the call takes a directory fd.
  int Fd(size_t i, const char* name) { return Int32(i, name); }
  uint32_t OptUint32(size_t i, const char* name, uint32_t fallback) {
    return static_cast<uint32_t>(OptInteger(i, name, 0, UINT32_MAX, fallback));
  }
  // A 32-bit flag word: JS bit operations yield signed int32 (FS_XFLAG.HASATTR | x < 0), so
  // both the signed and the unsigned reading are accepted.
  uint32_t Flags32(size_t i, const char* name) {
    return static_cast<uint32_t>(static_cast<int64_t>(Integer(i, name, INT32_MIN, UINT32_MAX)) & 0xffffffffLL);
  }
  uint32_t OptFlags32(size_t i, const char* name, uint32_t fallback) {
    return IsNullish(i) ? fallback : Flags32(i, name);
  }

  void Path(size_t i, const char* name, PathArg& out);
  void NullablePath(size_t i, const char* name, PathArg& out);
  void Bytes(size_t i, const char* name, BytesArg& out);
  // A JS string copied into a std::string (for rarely called functions).
  std::string String(size_t i, const char* name);

 private:
  bool Fail() { ok_ = false; return false; }

  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  bool ok_ = true;
};

}  // namespace gd

namespace gd {
// Constants are exported as plain numbers whatever their C type (enum, int, unsigned long).
template <typename T>
inline void SetConst(Napi::Object target, const char* name, T value) {
  target.Set(name, Napi::Number::New(target.Env(), static_cast<double>(value)));
}
}  // namespace gd
